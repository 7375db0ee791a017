"""Where each reply's time goes: the stage histogram of real calls, and their OpenTelemetry
traces as an OTLP receiver gets them, two calls at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from loguru import logger
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.utils.tracing.setup import is_tracing_available
from pydantic import ValidationError

from latency.breakdown import breakdown
from latency.otlp import OTLPExporter, SpanData, new_span_id, new_trace_id
from latency.stages import Stage
from settings import Settings
from simulator import SimulatedCall
from tests.conftest import MakeServer, offline_settings
from tests.conversation import hear_greeting, hear_reply, speak
from tests.ops_helpers import eventually
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan

ROOT = Path(__file__).resolve().parent.parent
OTLP_KEY = "Bearer otlp-test-key"
# The offline stack's VAD stop (VAD_STOP_SECS): the least the first stage can be.
VAD_STOP_SECS = 0.2


async def _metrics(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    return response.text


async def test_each_stage_of_a_reply_is_measured(make_server: MakeServer) -> None:
    server = make_server()
    speech = await speak("I would like a table for two tonight.")
    before = await _metrics(server.url)
    # Every stage is exported from the start, at zero, so dashboards have their series.
    for stage in Stage:
        assert f'switchboard_reply_stage_seconds_count{{stage="{stage}"}} 0.0' in before

    async with SimulatedCall(server.url) as call:
        await call.dial()
        await hear_greeting(call, timeout=30)
        await hear_reply(call, speech, timeout=30)
    after = await _metrics(server.url)

    stages = breakdown(before, after)
    # One reply, and every stage of it seen (the greeting answers no turn: not counted).
    assert set(stages) == set(Stage)
    assert all(stats.replies == 1 for stats in stages.values())
    at = {stage: stats.mean for stage, stats in stages.items()}
    assert VAD_STOP_SECS <= at[Stage.VAD_STOP] <= at[Stage.TURN_END]
    # The turn strategy waits for the transcript of the caller's words before it ends the turn.
    assert at[Stage.STT_FINAL] <= at[Stage.TURN_END]
    assert (
        at[Stage.TURN_END]
        <= at[Stage.LLM_FIRST_TOKEN]
        <= at[Stage.TTS_FIRST_AUDIO]
        <= at[Stage.FIRST_PACKET]
        < 30
    )
    # The reply latency metric is the last stage of the same reply.
    latency = _sample_value(after, "switchboard_response_latency_seconds_sum")
    assert latency == pytest.approx(at[Stage.FIRST_PACKET])
    # A single reply: its median and 95th percentile fall in the bucket that holds it.
    for stats in stages.values():
        assert stats.p50 <= stats.p95
        assert abs(stats.p95 - stats.mean) < max(0.5, stats.mean)


def _sample_value(text: str, sample: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(sample + " "))
    return float(line.split()[1])


async def test_two_calls_at_once_each_get_one_trace_of_their_own(make_server: MakeServer) -> None:
    lines = {
        "+15550001111": ["I would like a table for two tonight.", "Is there parking nearby?"],
        "+15550003333": ["Please send me the menu today.", "Do you have a garden?"],
    }
    voices = {number: [await speak(text) for text in said] for number, said in lines.items()}
    with OTLPReceiver(required_headers={"Authorization": OTLP_KEY}) as receiver:
        server = make_server(
            otel_exporter_otlp_endpoint=receiver.url,
            otel_exporter_otlp_headers="Authorization=Bearer%20otlp-test-key",
            otel_service_name="switchboard-test",
        )
        calls = {number: SimulatedCall(server.url, from_number=number) for number in lines}

        async def converse(number: str) -> None:
            async with calls[number] as call:
                await call.dial()
                await hear_greeting(call, timeout=30)
                for speech in voices[number]:
                    await hear_reply(call, speech, timeout=30)

        # Both calls' turns in flight at the same time: what nests spans across calls.
        await asyncio.gather(*(converse(number) for number in lines))
        sids = {number: call.call_sid for number, call in calls.items()}

        async def both_calls_exported() -> bool:
            roots = [s for s in receiver.spans if s.name == "call"]
            return {s.attributes.get("call.sid") for s in roots} == set(sids.values())

        await eventually(both_calls_exported, "both calls' spans reach the OTLP receiver")
        await asyncio.sleep(0.5)  # anything exported late would show up as a stray span
        spans = receiver.spans
        assert receiver.refused == []

    traces: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    # One trace per call, and nothing outside them.
    assert len(traces) == 2
    for number, sid in sids.items():
        [trace_id] = [
            tid for tid, members in traces.items() if _root(members).attributes["call.sid"] == sid
        ]
        members = traces[trace_id]
        root = _root(members)
        assert root.name == "call"
        assert root.resource["service.name"] == "switchboard-test"
        assert root.attributes["call.from"] == "***" + number[-4:]
        assert root.attributes["call.direction"] == "inbound"
        assert root.attributes["call.end_reason"] == "caller_hung_up"
        ids = {span.span_id for span in members}
        # Every parent is a span of the same trace: none crosses to the other call.
        assert all(span.parent_span_id in ids for span in members if span is not root)
        turns = sorted(
            (span for span in members if span.parent_span_id == root.span_id),
            key=lambda span: span.start_ns,
        )
        assert [span.name for span in turns] == ["turn", "turn"]
        assert [span.attributes["turn.number"] for span in turns] == [1, 2]
        for turn in turns:
            assert root.start_ns <= turn.start_ns < turn.end_ns <= root.end_ns
            stages = [span for span in members if span.parent_span_id == turn.span_id]
            assert sorted(span.name for span in stages) == sorted(Stage)
            for stage in stages:
                # Each from the caller's end of speech to the stage, as the histogram has it.
                assert stage.start_ns == turn.start_ns
                assert stage.end_ns <= turn.end_ns
                assert stage.attributes["stage.seconds"] == pytest.approx(
                    (stage.end_ns - stage.start_ns) / 1e9, abs=1e-6
                )
            first_packet = next(span for span in stages if span.name == Stage.FIRST_PACKET)
            assert first_packet.end_ns == turn.end_ns
        assert len(members) == 1 + 2 * (1 + len(Stage))

    # Phone numbers masked and nothing of what was said, anywhere in the spans.
    values = " ".join(str(v) for span in spans for v in span.attributes.values()).lower()
    assert "5550001111" not in values and "5550003333" not in values
    said = {word for said in lines.values() for text in said for word in text.lower().split()}
    assert not {word.strip(".?") for word in said if len(word) > 4} & set(values.split())


def _root(members: list[ReceivedSpan]) -> ReceivedSpan:
    [root] = [span for span in members if not span.parent_span_id]
    return root


def test_tracing_off_loads_no_tracer(tmp_path: Path) -> None:
    # Without an endpoint, building the app does not even import the exporter.
    code = (
        "import sys; from server import create_app; from settings import Settings; "
        "app = create_app(Settings(_env_file=None)); "
        "assert not app.state.traces.enabled; "
        "exporter = ('latency.otlp', 'opentelemetry.proto'); "
        "loaded = [m for m in sys.modules if m.startswith(exporter)]; "
        "assert not loaded, loaded"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


def test_pipecats_own_tracing_stays_off() -> None:
    # With OpenTelemetry's SDK installed, Pipecat wraps its services' `push_frame`
    # (every frame of the caller's audio through one more coroutine), traced or not.
    assert not is_tracing_available()
    assert not getattr(WhisperSTTService.push_frame, "__stt_tracing_push_frame_wrapped__", False)


async def test_the_exporter_retries_an_overloaded_collector_and_drops_a_refused_batch() -> None:
    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(message.record["message"]), level="INFO")
    with OTLPReceiver() as receiver:
        exporter = OTLPExporter(f"{receiver.url}/v1/traces", {}, {"service.name": "test"})
        receiver.fail_next(503, {"Retry-After": "0"})
        receiver.fail_next(429, {"Retry-After": "0"})
        exporter.add(_span("kept"))
        exporter.flush()
        await _until(lambda: receiver.requests == 3, "the span's export, tried three times")
        assert _names(receiver) == ["kept"]

        receiver.fail_next(400)
        exporter.add(_span("refused"))
        exporter.flush()
        await _until(lambda: receiver.requests == 4, "the refused export")
        await asyncio.sleep(0.2)  # a refused batch is not tried again
        receiver.fail_next(400)
        exporter.add(_span("refused too"))
        exporter.flush()
        await _until(lambda: receiver.requests == 5, "the second refused export")
        exporter.add(_span("after"))
        await exporter.close()  # sends what is left
        assert _names(receiver) == ["kept", "after"]
        assert receiver.refused == []
    logger.remove(sink)
    # A failing collector is said once, and so is its recovery, whatever the batches.
    said = [line for line in logged if line.startswith("Trace export")]
    assert len(said) == 2, said
    assert said[0].startswith(f"Trace export to {receiver.url}/v1/traces failed: 1 spans refused")
    assert said[1] == "Trace export works again"


def _span(name: str) -> SpanData:
    now = time.time_ns()
    return SpanData(new_trace_id(), new_span_id(), b"", name, now - 1000, now, {"n": 1})


def _names(receiver: OTLPReceiver) -> list[str]:
    return [span.name for span in receiver.spans]


async def _until(condition: Callable[[], bool], what: str) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, what, timeout=10)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("otel_exporter_otlp_protocol", "grpc"),
        ("otel_exporter_otlp_headers", "api-key"),
        ("otel_exporter_otlp_endpoint", "collector:4318"),
        ("otel_service_name", ""),
        ("otel_resource_attributes", "production"),
    ],
)
def test_a_bad_tracing_setting_stops_the_server_naming_it(setting: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        offline_settings(**{setting: value})
    assert setting in str(error.value)
    assert value not in str(error.value) or not value


def test_the_spans_go_to_the_endpoints_v1_traces() -> None:
    settings: Settings = offline_settings(
        otel_exporter_otlp_endpoint="https://otlp.example.com/otlp/",
        otel_exporter_otlp_headers="x-honeycomb-team=abc%3D%3D, x-dataset = calls",
    )
    assert settings.otlp_traces_url == "https://otlp.example.com/otlp/v1/traces"
    assert settings.otlp_export_headers == {"x-honeycomb-team": "abc==", "x-dataset": "calls"}
    attributes = offline_settings(otel_resource_attributes="deployment.environment=prod")
    assert attributes.otlp_resource_attributes == {"deployment.environment": "prod"}
    assert offline_settings(otel_exporter_otlp_endpoint="").otlp_traces_url is None
