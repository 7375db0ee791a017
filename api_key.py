"""The bearer key that guards the HTTP API: dial-out and call records.

Every request needs `Authorization: Bearer <DIALOUT_API_KEY>`; with no key
configured the API is off and every request is refused.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="DIALOUT_API_KEY")


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <DIALOUT_API_KEY>`.

    Raises:
        HTTPException: 401 when the API is off, or the key is missing or wrong.
    """
    challenge = {"WWW-Authenticate": "Bearer"}
    key = request.app.state.settings.dialout_api_key
    if key is None:
        raise HTTPException(
            401, "The API is off: the server has no DIALOUT_API_KEY", headers=challenge
        )
    expected = key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise HTTPException(401, "Missing or wrong API key (Authorization: Bearer …)", challenge)


ApiKeyDep = Annotated[None, Depends(require_api_key)]
