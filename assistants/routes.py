"""GET /assistants: the assistants in force, behind the API key.

    GET /assistants   {"assistants": [{"name": "support", "numbers": [...], "tools": [...], …}]}

Tools are listed by name; their secrets never leave the server (only the name
of the environment variable holding one is in the file).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from deps import KEY_REFUSED, AssistantsDep, require_api_key

router = APIRouter(tags=["assistants"], dependencies=[Depends(require_api_key)])


@router.get("/assistants", responses=KEY_REFUSED)
async def list_assistants(assistants: AssistantsDep) -> dict[str, list[dict[str, Any]]]:
    """Every assistant, the default first."""
    return {"assistants": [assistant.public for assistant in assistants.all()]}
