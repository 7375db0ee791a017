"""OpenTelemetry traces of calls, sent by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

One trace per call:

    call                  the media stream, from accept to hang-up (the root)
    └── turn              one per reply: the caller's end of speech → the reply's first packet
        ├── vad_stop      one per stage (`latency.stages`), each from the caller's
        ├── stt_final     end of speech to the stage: its length is the value the
        └── …             `switchboard_reply_stage_seconds` histogram observed

Spans carry the call SID, provider, direction, assistant and end reason, and the
phone numbers masked (`***1111`); never what was said. A reply's spans are made
when it starts playing, from the times the stage observer noted, so tracing
adds nothing per frame; while it is off, nothing at all (not even an import).

Each call's trace id and span ids are its own, and every span names its parent
itself: the call's root none, a turn its call's, a stage its turn's. Nothing
is read from an ambient (contextvars) context, which an asyncio task inherits
from whatever started it: Pipecat's own tracing falls back to it, and that is
how overlapping calls' spans came to nest in each other (pipecat#2202).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from latency.stages import Reply, Stage
from ops.logs import mask_phone_numbers

if TYPE_CHECKING:  # types only: deps imports this module, and telephony's package imports deps
    from latency.otlp import OTLPExporter
    from settings import Settings
    from telephony.call_info import CallInfo

ERROR_END = "error"


class CallTrace(Protocol):
    """What the media stream tells a call's trace."""

    def reply(self, reply: Reply) -> None:
        """Add a reply: a turn span and its stages."""

    def end(self, reason: str) -> None:
        """End the call's span: the call is over, for `reason`."""


class Traces:
    """The process's traces of calls: off without an endpoint, else exported to it."""

    def __init__(self, settings: Settings) -> None:
        """Set up the exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; nothing otherwise."""
        self._exporter: OTLPExporter | None = None
        url = settings.otlp_traces_url
        if url is None:
            return
        from latency.otlp import OTLPExporter

        resource = {
            **settings.otlp_resource_attributes,
            "service.name": settings.otel_service_name,
            "telemetry.sdk.name": "switchboard",
            "telemetry.sdk.language": "python",
        }
        self._exporter = OTLPExporter(url, settings.otlp_export_headers, resource)

    @property
    def enabled(self) -> bool:
        """Whether calls are traced."""
        return self._exporter is not None

    def start(self, call: CallInfo, accepted_at: float) -> CallTrace:
        """Start `call`'s trace, its root span from `accepted_at` (`time.monotonic()`)."""
        if self._exporter is None:
            return _NO_TRACE
        return _CallSpans(self._exporter, call, accepted_at)

    async def close(self) -> None:
        """Send the spans not yet sent, and stop exporting."""
        if self._exporter is not None:
            await self._exporter.close()


class _NoTrace:
    """A call's trace while tracing is off: nothing."""

    def reply(self, reply: Reply) -> None:
        """Nothing to add."""

    def end(self, reason: str) -> None:
        """Nothing to end."""


_NO_TRACE = _NoTrace()


class _CallSpans:
    """One call's spans: its root, and a turn with its stages per reply."""

    def __init__(self, exporter: OTLPExporter, call: CallInfo, accepted_at: float) -> None:
        from latency.otlp import new_span_id, new_trace_id

        self._exporter = exporter
        self._new_span_id = new_span_id
        self._trace_id = new_trace_id()
        self._span_id = new_span_id()
        self._started_ns = time.time_ns() - round((time.monotonic() - accepted_at) * 1e9)
        self._attributes: dict[str, str] = {
            "call.sid": call.call_sid,
            "call.provider": call.provider,
            "call.direction": call.direction,
            "call.from": mask_phone_numbers(call.from_number),
            "call.to": mask_phone_numbers(call.to_number),
        }
        if assistant := call.parameters.get("assistant"):
            self._attributes["call.assistant"] = assistant

    def reply(self, reply: Reply) -> None:
        """Add the reply's turn span, and a child span per stage."""
        from latency.otlp import SpanData

        turn_id = self._new_span_id()
        for stage, seconds in reply.stages.items():
            self._exporter.add(
                SpanData(
                    self._trace_id,
                    self._new_span_id(),
                    turn_id,
                    str(stage),
                    reply.speech_ended_ns,
                    reply.at_ns(stage),
                    {"stage.seconds": seconds},
                )
            )
        self._exporter.add(
            SpanData(
                self._trace_id,
                turn_id,
                self._span_id,
                "turn",
                reply.speech_ended_ns,
                reply.at_ns(Stage.FIRST_PACKET),
                {"turn.number": reply.number, "turn.reply_seconds": reply.latency},
            )
        )

    def end(self, reason: str) -> None:
        """End the call's span, with why the call ended, and send the call's spans now."""
        from latency.otlp import SpanData

        self._exporter.add(
            SpanData(
                self._trace_id,
                self._span_id,
                b"",
                "call",
                self._started_ns,
                time.time_ns(),
                {**self._attributes, "call.end_reason": reason},
                server=True,
                error=reason == ERROR_END,
            )
        )
        self._exporter.flush()
