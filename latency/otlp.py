"""Spans sent to an OpenTelemetry collector by OTLP/HTTP (protobuf), from the server's event loop.

Not OpenTelemetry's SDK: with `opentelemetry-sdk` installed, Pipecat's tracing
turns itself on at import and wraps `push_frame` of its STT and TTS services,
one more coroutine for every frame of the caller's audio, traced or not.
Switchboard's spans are few and known (`latency.traces`), so this module
builds them with the protocol's own messages (`opentelemetry-proto`) and posts
them as the OTLP specification says:

- to `{endpoint}/v1/traces`, `Content-Type: application/x-protobuf`, with
  the `OTEL_EXPORTER_OTLP_HEADERS`;
- in batches of at most `MAX_BATCH` spans, when a call ends (`flush`) and
  every `EVERY_SECS` otherwise;
- retrying 429, 502, 503, 504 and unreachable collectors with exponential
  backoff (or the `Retry-After` asked for), dropping a batch on any other
  answer; at most `MAX_QUEUED` spans wait, newer ones are dropped.

A failing collector is logged once, and its recovery once, not each batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from loguru import logger
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

PROTOBUF = "application/x-protobuf"
EVERY_SECS = 5.0  # OpenTelemetry's batch span processor's default schedule
MAX_BATCH = 128  # spans per request: each encodes in well under a millisecond
MAX_QUEUED = 2048  # OpenTelemetry's default queue size
TIMEOUT_SECS = 10.0  # per request, OpenTelemetry's default
RETRIES = 5
FIRST_BACKOFF_SECS = 1.0
RETRYABLE = frozenset({429, 502, 503, 504})
CLOSE_SECS = 5.0  # what stopping the server waits for the last spans at most
SCOPE = InstrumentationScope(name="switchboard")
Attributes = Mapping[str, str | bool | int | float]


def new_trace_id() -> bytes:
    """A random, valid (non-zero) 16-byte trace id."""
    return (random.getrandbits(128) or 1).to_bytes(16, "big")


def new_span_id() -> bytes:
    """A random, valid (non-zero) 8-byte span id."""
    return (random.getrandbits(64) or 1).to_bytes(8, "big")


@dataclass(frozen=True)
class SpanData:
    """One finished span, as the exporter takes it (ids as bytes, times in Unix ns)."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # b"" for a trace's root
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    server: bool = False  # the span of a request this server answered (a call), else internal
    error: bool = False


def _value(value: str | bool | int | float) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _attributes(attributes: Attributes) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in attributes.items()]


def _message(span: SpanData) -> Span:
    return Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=Span.SPAN_KIND_SERVER if span.server else Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=_attributes(span.attributes),
        status=Status(code=Status.STATUS_CODE_ERROR) if span.error else None,
    )


class OTLPExporter:
    """Posts spans to one collector in batches; `add` and `flush` never wait."""

    def __init__(self, url: str, headers: Mapping[str, str], resource: Attributes) -> None:
        """Export to `url` (the full `…/v1/traces`) with `headers`, as the `resource` described."""
        self._url = url
        self._headers = {**headers, "Content-Type": PROTOBUF}
        self._resource = Resource(attributes=_attributes(resource))
        self._queue: list[Span] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._failing = False
        self._dropping = False

    def add(self, span: SpanData) -> None:
        """Queue a finished span (its message is built now, a few microseconds)."""
        if len(self._queue) >= MAX_QUEUED:
            if not self._dropping:
                self._dropping = True
                logger.warning(f"Trace export is behind: dropping spans past {MAX_QUEUED}")
            return
        self._queue.append(_message(span))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def flush(self) -> None:
        """Send what is queued now, rather than at the next scheduled export."""
        self._wake.set()

    async def close(self) -> None:
        """Send what is still queued (for `CLOSE_SECS` at most), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECS):
                await self._send_queued(retry=False)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), EVERY_SECS)
            self._wake.clear()
            try:
                await self._send_queued(retry=True)
            except Exception:  # the exporter goes on; what could not be encoded is let go
                logger.exception("Trace export failed")
                self._queue.clear()

    async def _send_queued(self, *, retry: bool) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH]
            request = ExportTraceServiceRequest(
                resource_spans=[
                    ResourceSpans(
                        resource=self._resource, scope_spans=[ScopeSpans(scope=SCOPE, spans=batch)]
                    )
                ]
            )
            sent = await self._post(request.SerializeToString(), len(batch), retry=retry)
            # Taken off only now: a batch cut short by stopping is sent again by `close`.
            del self._queue[: len(batch)]
            if sent:
                self._dropping = False

    async def _post(self, body: bytes, spans: int, *, retry: bool) -> bool:
        """Post one batch; whether the collector took it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECS))
        backoff = FIRST_BACKOFF_SECS
        tries = RETRIES if retry else 1
        for attempt in range(tries):
            try:
                async with self._session.post(
                    self._url, data=body, headers=self._headers
                ) as answer:
                    if answer.status == 200:
                        if self._failing:
                            self._failing = False
                            logger.info("Trace export works again")
                        return True
                    problem = f"HTTP {answer.status}: {(await answer.text())[:200]}"
                    if answer.status not in RETRYABLE:
                        self._failed(f"{spans} spans refused by the collector ({problem})")
                        return False
                    wait = _retry_after(answer.headers.get("Retry-After"), backoff)
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = f"{type(e).__name__}: {e}"
                wait = backoff
            if attempt + 1 < tries:
                await asyncio.sleep(wait)
                backoff *= 2
        self._failed(f"{spans} spans not sent ({problem})")
        return False

    def _failed(self, what: str) -> None:
        if not self._failing:
            self._failing = True
            logger.warning(f"Trace export to {self._url} failed: {what}; spans are dropped")


def _retry_after(header: str | None, default: float) -> float:
    with contextlib.suppress(TypeError, ValueError):
        return min(max(float(header), 0.0), 60.0)  # type: ignore[arg-type]
    return default
