"""Talk to the bot from the browser: the page that makes a call with the microphone.

GET /console/talk   the page; `talk.js` speaks Twilio's media-stream protocol over /ws
                    as provider `browser` (see telephony/browser.py), authenticated by
                    the console session, and shows the transcript as it is written
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.pages import render
from deps import AdmissionDep, ConsoleSessionDep, SettingsDep

router = APIRouter()


@router.get("/console/talk", include_in_schema=False)
async def talk_page(
    request: Request, session: ConsoleSessionDep, settings: SettingsDep, admission: AdmissionDep
) -> Response:
    """The page with the call button, and fields to try another greeting or prompt."""
    return render(
        request,
        "talk.html",
        session,
        page="talk",
        greeting=settings.greeting,
        refusal=admission.refusal,
    )
