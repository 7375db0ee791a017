"""The console's page pieces on their own: a call's timeline, the SVG charts, and a call page
for a record that holds a recording and delivered events (fields other features add)."""

from __future__ import annotations

import re
from typing import Any

from console import charts
from console.pages import NAV, templates
from console.timeline import timeline

RECORD: dict[str, Any] = {
    "call_sid": "CA" + "1" * 32,
    "provider": "twilio",
    "direction": "inbound",
    "from": "+15550001111",
    "to": "+15550002222",
    "parameters": {"assistant": "billing"},
    "started_at": "2026-11-29T10:00:00Z",
    "answered_at": "2026-11-29T10:00:01Z",
    "ended_at": "2026-11-29T10:01:00Z",
    "end_reason": "bot_ended",
    "status": "completed",
    "answered_by": None,
    "duration": 59,
    "turns": [
        {"seq": 1, "role": "assistant", "text": "Hello!", "at": "2026-11-29T10:00:02Z"},
        {"seq": 2, "role": "user", "text": "Put me through", "at": "2026-11-29T10:00:05Z"},
        {"seq": 3, "role": "tool", "text": 'transfer({"to": "sales"}) → ok',
         "at": "2026-11-29T10:00:08Z"},
        {"seq": 4, "role": "assistant", "text": "Connecting you", "at": "2026-11-29T10:00:09Z",
         "reply_ms": 640},
    ],
    "recording": {"url": "/calls/CA111/recording", "duration": 58.5},
    "events": [
        {"type": "call.started", "state": "delivered", "attempts": 1,
         "delivered_at": "2026-11-29T10:00:02Z"},
        {"type": "call.transferred", "state": "pending", "attempts": 2,
         "created_at": "2026-11-29T10:00:10Z", "data": {"to": "sales"},
         "last_error": "HTTP 503"},
    ],
}  # fmt: skip


def test_a_timeline_runs_from_start_to_end_with_the_transfer_in_its_place() -> None:
    entries = timeline(RECORD)
    assert [(e.kind, e.who) for e in entries] == [
        ("start", "Started"),
        ("answer", "Answered"),
        ("turn", "Bot"),
        ("turn", "Caller"),
        ("turn", "Tool call"),
        ("turn", "Bot"),
        ("transfer", "Transferred"),
        ("end", "Ended"),
    ]
    assert entries[2].offset == 1.0  # seconds into the recording, from the answer
    assert entries[5].reply_ms == 640
    assert entries[6].text == "to: sales"
    assert entries[7].text == "the bot ended the call"


def test_a_call_page_plays_its_recording_and_lists_its_events() -> None:
    page = templates.env.get_template("call.html").render(
        nav=NAV,
        page="calls",
        csrf="token",
        logged_in=True,
        record=RECORD,
        entries=timeline(RECORD),
        duration=59.0,
        assistant="billing",
        recording=RECORD["recording"],
        events=RECORD["events"],
        raw="{}",
    )
    assert '<audio id="recording" controls preload="metadata" src="/calls/CA111/recording">' in page
    assert page.count('class="link seek"') == 4  # each turn can be played from
    rows = re.findall(r"<tr><td>(call\.[a-z]+)</td><td>([a-z]+)</td>", page)
    assert rows == [("call.started", "delivered"), ("call.transferred", "pending")]
    assert "HTTP 503" in page
    assert "billing" in page


def test_charts_escape_their_labels() -> None:
    svg = charts.bars([("<b>machine</b>", 3), ("human", 5)], "Answered & ended")
    assert "<b>" not in svg and "&lt;b&gt;machine&lt;/b&gt;" in svg
    assert 'aria-label="Answered &amp; ended"' in svg
    assert svg.index("human") < svg.index("machine")  # largest first
    columns = charts.columns([0, 2, 1], ["00:00", "01:00", "02:00"], "Calls per hour")
    assert columns.count('class="bar"') == 3
    assert 'class="bar full"' in charts.gauge(4, 4, "Capacity")
