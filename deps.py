"""Every FastAPI dependency of the app, typed once: `SettingsDep`, `AdmissionDep`, ….

Each reads what `server.create_app` put on `app.state`, through `HTTPConnection`,
so one alias serves HTTP routes and websockets alike.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from dialout.placers import Placer
from dialout.status import CallStatusStore
from ops.admission import Admission, require_capacity
from ops.metrics import Metrics
from records.recorder import Recorder
from settings import Settings
from voice import VoiceStack


def _state(connection: HTTPConnection) -> Any:
    return connection.app.state


def get_settings(connection: HTTPConnection) -> Settings:
    """The validated settings the app was built with."""
    settings: Settings = _state(connection).settings
    return settings


def get_voice(connection: HTTPConnection) -> VoiceStack:
    """The process's voice stack (loaded at start-up)."""
    voice: VoiceStack = _state(connection).voice
    return voice


def get_admission(connection: HTTPConnection) -> Admission:
    """Admission control and the live calls."""
    admission: Admission = _state(connection).admission
    return admission


def get_metrics(connection: HTTPConnection) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = _state(connection).metrics
    return metrics


def get_records(connection: HTTPConnection) -> Recorder:
    """Call records and transcripts."""
    records: Recorder = _state(connection).records
    return records


def get_call_status(connection: HTTPConnection) -> CallStatusStore:
    """The latest status of placed calls."""
    store: CallStatusStore = _state(connection).call_status
    return store


def get_placers(connection: HTTPConnection) -> dict[str, Placer]:
    """One dial-out placer per provider, by name."""
    placers: dict[str, Placer] = _state(connection).placers
    return placers


SettingsDep = Annotated[Settings, Depends(get_settings)]
VoiceDep = Annotated[VoiceStack, Depends(get_voice)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RecordsDep = Annotated[Recorder, Depends(get_records)]
CallStatusDep = Annotated[CallStatusStore, Depends(get_call_status)]
PlacersDep = Annotated[dict[str, Placer], Depends(get_placers)]


def _capacity(admission: AdmissionDep) -> None:
    require_capacity(admission)


# For a route that would start a call: `_capacity: CapacityDep` (after its auth).
CapacityDep = Annotated[None, Depends(_capacity)]

bearer = HTTPBearer(auto_error=False, description="DIALOUT_API_KEY")


def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <DIALOUT_API_KEY>`.

    The HTTP API (dial-out, call records) is off while no key is configured.

    Raises:
        HTTPException: 401 when the API is off, or the key is missing or wrong.
    """
    challenge = {"WWW-Authenticate": "Bearer"}
    key = settings.dialout_api_key
    if key is None:
        raise HTTPException(
            401, "The API is off: the server has no DIALOUT_API_KEY", headers=challenge
        )
    expected = key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise HTTPException(401, "Missing or wrong API key (Authorization: Bearer …)", challenge)


ApiKeyDep = Annotated[None, Depends(require_api_key)]


def refusal(description: str) -> dict[str, Any]:
    """An answer in FastAPI's `{"detail": …}` shape, as the OpenAPI description lists it."""
    detail = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": detail}}}


# What a route behind the API key answers instead, for the OpenAPI description.
KEY_REFUSED: dict[int | str, dict[str, Any]] = {
    401: refusal("Missing or wrong API key, or the API is off (no DIALOUT_API_KEY)")
}
