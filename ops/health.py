"""Liveness and readiness, for a load balancer or an orchestrator (served by `ops.routes`).

    GET /healthz   liveness: 200 while the process serves at all; never fails
                   because of load or drain (restarting a busy server drops its calls)
    GET /readyz    readiness: 503 while draining, at capacity, or when the
                   configuration is broken; the JSON body says why. With several
                   workers on the machine, "at capacity" means every worker is
                   (ops/machine.py), and the body lists them

Readiness is a list of named checks on `app.state.readiness`; a module with
something that must work (a database) adds its own with `add_readiness_check`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI

from ops.admission import Admission, Refusal
from settings import Settings

# A check answers None when all is well, else what is wrong, in a few words.
ReadinessCheck = Callable[[FastAPI], Awaitable[str | None]]


def configuration_problems(settings: Settings) -> list[str]:
    """What in `settings` passed validation yet cannot work, for the providers configured.

    A caller id may come with each request, and the API key without a provider
    is an offline server's console: neither is a problem here.
    """
    problems = []
    if settings.dials_out and settings.public_url is None:
        problems.append("dial-out is enabled but PUBLIC_URL is not set")
    exotel_refused = settings.validates_signatures and not settings.exotel_authenticates
    if settings.dials_out and settings.can_dial_exotel and exotel_refused:
        problems.append(
            "Exotel dial-out is enabled but /ws would refuse its streams: set "
            "EXOTEL_WS_USERNAME and EXOTEL_WS_PASSWORD (or EXOTEL_ALLOWED_IPS)"
        )
    return problems


async def _admission(app: FastAPI) -> str | None:
    admission: Admission = app.state.admission
    refusal = admission.machine_refusal
    if refusal is Refusal.AT_CAPACITY and admission.machine is not None:
        return "at capacity (every worker)"
    if refusal is Refusal.AT_CAPACITY:
        return f"at capacity ({admission.live} of {admission.max_calls} calls)"
    return None if refusal is None else str(refusal)


async def _configuration(app: FastAPI) -> str | None:
    problems = configuration_problems(app.state.settings)
    return "; ".join(problems) or None


async def _voice(app: FastAPI) -> str | None:
    return None if getattr(app.state, "voice", None) is not None else "voice models not loaded"


DEFAULT_CHECKS: dict[str, ReadinessCheck] = {
    "admission": _admission,
    "configuration": _configuration,
    "voice": _voice,
}


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """Make `/readyz` fail whenever `check` reports a problem.

    Args:
        app: The server.
        name: The check's name in `/readyz`'s body.
        check: Answers None when ready, else the reason it is not. It should be quick.
    """
    app.state.readiness[name] = check


def install(app: FastAPI) -> None:
    """Give `app` the default readiness checks."""
    app.state.readiness = dict(DEFAULT_CHECKS)


async def _run(check: ReadinessCheck, app: FastAPI) -> str | None:
    try:
        return await check(app)
    except Exception as e:  # a broken check means not ready, never a 500
        return f"check failed: {type(e).__name__}"


async def readiness(app: FastAPI) -> tuple[bool, dict[str, Any]]:
    """Whether to send this process new calls, and the body that says why not."""
    checks: dict[str, ReadinessCheck] = app.state.readiness
    failing = {name: reason for name, check in checks.items() if (reason := await _run(check, app))}
    admission: Admission = app.state.admission
    body: dict[str, Any] = {
        "status": "unavailable" if failing else "ready",
        "calls": admission.live,
        "max_calls": admission.max_calls,
        "draining": admission.draining,
    }
    if admission.machine is not None:  # the machine's totals, and each worker
        states = admission.machine.states()
        body["calls"] = sum(state.calls for state in states)
        body["max_calls"] = sum(state.max_calls for state in states)
        body["workers"] = [asdict(state) for state in states]
    if failing:
        body["reasons"] = failing
    return not failing, body
