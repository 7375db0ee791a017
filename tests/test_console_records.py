"""What the console reads from the records, on SQLite and PostgreSQL alike: the transcript
search, the calls in progress with their last words, a period's figures, reply latencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from records import dashboard
from records.models import TurnRole
from records.recorder import CallRecording
from records.store import CallStore
from records.writes import Writes
from telephony.call_info import CallInfo

NOW = datetime.now(UTC).replace(microsecond=0)


def call(n: int) -> CallInfo:
    return CallInfo(provider="twilio", call_sid=f"CA{n:032x}", stream_sid=f"MZ{n:032x}")


async def test_calls_are_found_by_what_was_said_taken_literally(store: CallStore) -> None:
    said = {
        1: "The purple Elephant is dancing.",
        2: "I am 100% sure.",
        3: "My user name is snake_case.",
        4: "A back\\slash and 1000 things.",
    }
    for n, text in said.items():
        await store.start_call(call(n), at=NOW)
        await store.add_turn(call(n).call_sid, 1, TurnRole.USER, text, NOW)
        await store.add_turn(call(n).call_sid, 2, TurnRole.ASSISTANT, f"I heard: {text}", NOW)

    async def found(text: str) -> list[int]:
        page = await store.list_calls(text=text)
        return sorted(int(c.sid[2:], 16) for c in page.calls)

    assert await found("ELEPHANT") == [1]  # any case
    assert await found("100%") == [2]  # % is a percent sign, not "anything"
    assert await found("e_c") == [3]  # _ is an underscore, not "any one character"
    assert await found("k\\s") == [4]
    assert await found("giraffe") == []
    both = await store.list_calls(text="I heard", limit=2)
    assert both.total == 4 and len(both.calls) == 2  # one row a call, not a turn


async def test_live_calls_carry_their_last_words_and_leave_when_they_end(
    store: CallStore,
) -> None:
    await store.start_call(call(1), at=NOW - timedelta(minutes=2))
    await store.add_turn(call(1).call_sid, 1, TurnRole.ASSISTANT, "Hello!", NOW)
    await store.add_turn(call(1).call_sid, 2, TurnRole.USER, "Is my order late?", NOW)
    await store.start_call(call(2), at=NOW - timedelta(minutes=1))
    await store.start_call(call(3), at=NOW - timedelta(minutes=3))
    await store.end_call(call(3).call_sid, "caller_hung_up", at=NOW)
    # Never closed by the replica that ran it, long ago: not live.
    await store.start_call(call(4), at=NOW - dashboard.LIVE_WITHIN - timedelta(minutes=1))
    await store.note_call(call(5).call_sid, status="ringing", at=NOW)  # not answered yet

    live = await dashboard.live_calls(store)
    assert [c.sid for c in live] == [call(2).call_sid, call(1).call_sid]  # newest first
    assert (live[1].last_role, live[1].last_text) == ("user", "Is my order late?")
    assert (live[0].last_role, live[0].last_text) == (None, None)


async def test_a_periods_figures(store: CallStore) -> None:
    hour = NOW.replace(minute=0, second=0)  # calls a minute past it: this hour, or the last
    latencies = [300, 500, 700, 900, 2000]
    for n, reply_ms in enumerate(latencies):
        started = hour - timedelta(hours=n % 2, minutes=-1)
        await store.start_call(call(n), at=started)
        await store.add_turn(call(n).call_sid, 1, TurnRole.ASSISTANT, "Hi", started)
        await store.add_turn(call(n).call_sid, 2, TurnRole.USER, "Hello", started)
        await store.add_turn(call(n).call_sid, 3, TurnRole.ASSISTANT, "Yes", started, reply_ms)
        await store.end_call(
            call(n).call_sid, "bot_ended" if n else "error", started + timedelta(seconds=30)
        )
    await store.note_call("CA-rejected", at=hour)
    await store.end_call("CA-rejected", "rejected", at=hour)

    figures = await dashboard.figures(store, hours=3, now=NOW)
    assert figures.calls == 6
    assert figures.per_hour == [0, 2, 4]  # oldest hour first; this hour holds the rejected call
    assert figures.answered == {"answered": 5, "rejected (busy)": 1}
    assert figures.ended == {"bot_ended": 4, "error": 1, "rejected": 1}
    assert figures.latencies_ms == latencies  # the greetings have none
    assert (figures.latency_percentile(50), figures.latency_percentile(95)) == (700, 2000)
    assert figures.durations == [30.0] * 5
    assert (await dashboard.figures(store, hours=1, now=NOW)).calls == 4


async def test_a_reply_latency_goes_with_the_bot_turn_that_follows_it(store: CallStore) -> None:
    recording = CallRecording(store, call(1), Writes(), transcripts=True)
    recording.add_turn(TurnRole.ASSISTANT, "Hello!")  # the greeting answers nobody
    recording.add_turn(TurnRole.USER, "Hi there.")
    recording.add_reply_latency(0.6425)
    recording.add_turn(TurnRole.ASSISTANT, "I heard: Hi there.")
    recording.add_turn(TurnRole.DTMF, "5")
    await recording.end("caller_hung_up")

    record = await store.get_call(call(1).call_sid)
    assert record is not None
    assert [(t.role, t.reply_ms) for t in record.turns] == [
        ("assistant", None),
        ("user", None),
        ("assistant", 642),
        ("dtmf", None),
    ]
