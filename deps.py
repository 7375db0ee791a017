"""Every FastAPI dependency of the app, typed once: `SettingsDep`, `AdmissionDep`, ….

Each reads what `server.create_app` put on `app.state`, through `HTTPConnection`,
so one alias serves HTTP routes and websockets alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from assistants.registry import Assistants
from calls.relay import CallRelay
from console.session import COOKIE, Session, read_session, require_csrf, require_session
from dialout.idempotency import OncePlacer
from dialout.placers import Placer
from dialout.status import CallStatusStore
from latency.traces import Traces
from ops.admission import Admission, require_capacity
from ops.handshakes import Handshakes
from ops.metrics import Metrics
from recording.recorder import Recordings
from records.attempts import AttemptStore
from records.recorder import Recorder
from settings import Settings
from tools.http import ToolClient
from voice import VoiceStack

T = TypeVar("T")


def _from_state(name: str, kind: type[T]) -> Callable[[HTTPConnection], T]:
    """A dependency that reads `app.state.<name>`, a `kind` set by `server.create_app`."""

    def get(connection: HTTPConnection) -> T:
        value: T = getattr(connection.app.state, name)
        return value

    get.__name__ = f"get_{name}"
    return get


# The validated settings the app was built with.
SettingsDep = Annotated[Settings, Depends(_from_state("settings", Settings))]
# The process's voice stack, loaded at start-up.
VoiceDep = Annotated[VoiceStack, Depends(_from_state("voice", VoiceStack))]
# Admission control and the live calls.
AdmissionDep = Annotated[Admission, Depends(_from_state("admission", Admission))]
MetricsDep = Annotated[Metrics, Depends(_from_state("metrics", Metrics))]
# The media streams still handshaking, against MAX_HANDSHAKING.
HandshakesDep = Annotated[Handshakes, Depends(_from_state("handshakes", Handshakes))]
# Calls' OpenTelemetry traces (off without OTEL_EXPORTER_OTLP_ENDPOINT).
TracesDep = Annotated[Traces, Depends(_from_state("traces", Traces))]
# Call records and transcripts.
RecordsDep = Annotated[Recorder, Depends(_from_state("records", Recorder))]
# Dial-out attempts on record, for the stream tokens that name one.
AttemptsDep = Annotated[AttemptStore, Depends(_from_state("attempts", AttemptStore))]
# Call recordings made by this server (RECORDING=local) and where they are kept.
RecordingsDep = Annotated[Recordings, Depends(_from_state("recordings", Recordings))]
# The latest status of placed calls.
CallStatusDep = Annotated[CallStatusStore, Depends(_from_state("call_status", CallStatusStore))]
# One dial-out placer per provider, by name.
PlacersDep = Annotated[dict[str, Placer], Depends(_from_state("placers", dict))]
# Places each dial-out at most once per Idempotency-Key, on record before it is placed.
OncePlacerDep = Annotated[OncePlacer, Depends(_from_state("once", OncePlacer))]
# The assistants in force (reloaded when their file changes).
AssistantsDep = Annotated[Assistants, Depends(_from_state("assistants", Assistants))]
# The HTTP client for assistants' tools.
ToolClientDep = Annotated[ToolClient, Depends(_from_state("tool_client", ToolClient))]


def _relay(connection: HTTPConnection) -> CallRelay | None:
    relay: CallRelay | None = getattr(connection.app.state, "relay", None)
    return relay


# In-call actions for calls other processes hold (PostgreSQL only); None on SQLite.
RelayDep = Annotated[CallRelay | None, Depends(_relay)]


def _capacity(admission: AdmissionDep) -> None:
    require_capacity(admission)


# For a route that would start a call: `_capacity: CapacityDep` (after its auth).
CapacityDep = Annotated[None, Depends(_capacity)]

bearer = HTTPBearer(auto_error=False, description="DIALOUT_API_KEY")


def require_api_key(
    settings: SettingsDep,
    connection: HTTPConnection,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <DIALOUT_API_KEY>`.

    The HTTP API (dial-out, call records) is off while no key is configured.
    Reads (GET, HEAD) also pass with a console session, so the console's pages
    can link the records and play recordings; its cookie is SameSite=Strict.

    Raises:
        HTTPException: 401 when the API is off, or the key is missing or wrong.
    """
    challenge = {"WWW-Authenticate": "Bearer"}
    key = settings.dialout_api_key
    if key is None:
        raise HTTPException(
            401, "The API is off: the server has no DIALOUT_API_KEY", headers=challenge
        )
    reading = connection.scope.get("method") in ("GET", "HEAD")
    if credentials is None and reading and read_session(settings, connection.cookies.get(COOKIE)):
        return
    expected = key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise HTTPException(401, "Missing or wrong API key (Authorization: Bearer …)", challenge)


ApiKeyDep = Annotated[None, Depends(require_api_key)]

# The console's logged-in session; without one, pages go to the login page.
ConsoleSessionDep = Annotated[Session, Depends(require_session)]
# The console's session, for a POST that must carry its CSRF token (403 without).
CsrfDep = Annotated[Session, Depends(require_csrf)]


def refusal(description: str) -> dict[str, Any]:
    """An answer in FastAPI's `{"detail": …}` shape, as the OpenAPI description lists it."""
    detail = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": detail}}}


# What a route behind the API key answers instead, for the OpenAPI description.
KEY_REFUSED: dict[int | str, dict[str, Any]] = {
    401: refusal("Missing or wrong API key, or the API is off (no DIALOUT_API_KEY)")
}
