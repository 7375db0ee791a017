"""Place a call: the `POST /dialout` form, with the API's own validation and answers.

GET  /console/place   the form
POST /console/place   validated as `DialoutRequest`, placed by `dialout.routes.place_call`
                      itself, so every check and error is the API's
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from console.pages import render
from deps import (
    AdmissionDep,
    AssistantsDep,
    ConsoleSessionDep,
    CsrfDep,
    OncePlacerDep,
    PlacersDep,
    SettingsDep,
)
from dialout.request import DialoutRequest
from dialout.routes import place_call
from ops.admission import require_capacity

router = APIRouter()


def _parameters(text: str) -> dict[str, str]:
    """`name=value` lines as a dict; blank lines are skipped.

    Raises:
        ValueError: A line without `=`.
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"parameters, line {number}: write name=value")
        found[name.strip()] = value.strip()
    return found


def _errors(error: ValidationError) -> list[str]:
    """Pydantic's complaints as the API's 422 gives them: where, and what is wrong."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "request"
        lines.append(f"{where}: {item['msg']}")
    return lines


@router.get("/console/place", include_in_schema=False)
async def place_form(
    request: Request, session: ConsoleSessionDep, placers: PlacersDep, settings: SettingsDep
) -> Response:
    """The dial-out form."""
    return _form(request, session, placers, settings, {}, [], 200)


def _form(
    request: Request,
    session: Any,
    placers: dict[str, Any],
    settings: Any,
    values: dict[str, Any],
    errors: list[str],
    status: int,
) -> Response:
    return render(
        request,
        "place.html",
        session,
        page="place",
        status_code=status,
        providers=list(placers),
        values=values,
        errors=errors,
        default_from=settings.twilio_phone_number or settings.exotel_caller_id or "",
        allowed=", ".join(settings.dialout_allowed_prefixes),
    )


@router.post("/console/place", include_in_schema=False)
async def place(
    request: Request,
    session: CsrfDep,
    settings: SettingsDep,
    admission: AdmissionDep,
    placers: PlacersDep,
    assistants: AssistantsDep,
    once: OncePlacerDep,
    to: Annotated[str, Form(max_length=64)] = "",
    provider: Annotated[str, Form(max_length=32)] = "twilio",
    from_: Annotated[str, Form(alias="from", max_length=64)] = "",
    parameters: Annotated[str, Form(max_length=40_000)] = "",
    machine_detection: Annotated[str, Form(max_length=32)] = "",
    timeout: Annotated[str, Form(max_length=8)] = "",  # noqa: ASYNC109 (ring seconds)
    time_limit: Annotated[str, Form(max_length=8)] = "",
    record: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Place the call the form describes; on any error, the form again with the API's answer."""
    values = {
        "to": to,
        "provider": provider,
        "from": from_,
        "parameters": parameters,
        "machine_detection": machine_detection,
        "timeout": timeout,
        "time_limit": time_limit,
        "record": record,
    }
    body: dict[str, Any] = {"provider": provider, "to": to.strip()}
    optional = {
        "from": from_.strip(),
        "machine_detection": machine_detection,
        "timeout": timeout.strip(),
        "time_limit": time_limit.strip(),
    }
    body.update({name: value for name, value in optional.items() if value})
    if record:
        body["record"] = True
    try:
        body["parameters"] = _parameters(parameters)
        dialout = DialoutRequest.model_validate(body)
    except ValueError as e:  # pydantic's ValidationError is one
        errors = _errors(e) if isinstance(e, ValidationError) else [str(e)]
        return _form(request, session, placers, settings, values, errors, 422)
    try:
        require_capacity(admission)
    except HTTPException as e:
        return _form(request, session, placers, settings, values, [str(e.detail)], e.status_code)
    # The API's own route, called as a function: its auth and capacity checks are done above.
    answer = await place_call(
        body=dialout,
        request=request,
        _key=None,
        _capacity=None,
        settings=settings,
        placers=placers,
        assistants=assistants,
        once=once,
        idempotency_key=None,
    )
    result = json.loads(bytes(answer.body))
    if answer.status_code != 201:
        extra = [f"{k}: {v}" for k, v in result.items() if k != "detail"]
        detail = result.get("detail")
        errors = [str(detail), *extra] if detail else extra
        return _form(request, session, placers, settings, values, errors, answer.status_code)
    return RedirectResponse(f"/console/calls/{result['call_sid']}?placed=1", status_code=303)
