"""An OTLP/HTTP trace receiver on 127.0.0.1: what an OpenTelemetry collector answers on 4318.

It takes `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf
(gzip-compressed or not), decodes it with opentelemetry-proto, keeps every span,
and answers with an `ExportTraceServiceResponse`, as a collector does. It
refuses what a collector refuses: another path (404), another method (405),
another content type (415), a body that does not decode or holds a span a
collector would reject (ids of the wrong length or all zeros, no name, an end
before its start: 400), and, when it is given headers to require (a vendor's
API key), a request without them (401). `fail_next` makes it answer as an
overloaded collector does.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.loopback import LoopbackServer

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it (ids in hex, as trace viewers show them)."""

    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _invalid(export: ExportTraceServiceRequest) -> str | None:
    """Why a collector would reject a span of `export`, or None."""
    for resource_spans in export.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    return f"span {span.name!r}: invalid trace id"
                if len(span.span_id) != 8 or not any(span.span_id):
                    return f"span {span.name!r}: invalid span id"
                if span.parent_span_id and len(span.parent_span_id) != 8:
                    return f"span {span.name!r}: invalid parent span id"
                if not span.name:
                    return "a span without a name"
                if span.end_time_unix_nano < span.start_time_unix_nano:
                    return f"span {span.name!r} ends before it starts"
    return None


class OTLPReceiver(LoopbackServer):
    """Receives traces; `spans` holds every span received so far.

    Attributes:
        url: The endpoint to configure (`OTEL_EXPORTER_OTLP_ENDPOINT`).
        refused: The requests it refused, as (status, reason).
    """

    name = "otlp-receiver"

    def __init__(self, required_headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self._required = required_headers or {}
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.refused: list[tuple[int, str]] = []
        self.requests = 0
        self._failures: list[tuple[int, dict[str, str]]] = []

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next export with `status` (e.g. 503 and a `Retry-After`), keeping nothing."""
        self._failures.append((status, headers or {}))

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refused.append((status, reason))
        return web.Response(status=status, text=reason)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/v1/traces":
            return self._refuse(404, f"no such path: {request.path}")
        if request.method != "POST":
            return self._refuse(405, "POST only")
        self.requests += 1
        if self._failures:
            status, headers = self._failures.pop(0)
            return web.Response(status=status, headers=headers, text="try again later")
        for name, expected in self._required.items():
            if request.headers.get(name) != expected:
                return self._refuse(401, f"missing or wrong {name} header")
        if request.content_type != PROTOBUF:
            return self._refuse(415, f"unsupported content type {request.content_type}")
        body = await request.read()
        try:
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            export = ExportTraceServiceRequest.FromString(body)
        except (OSError, DecodeError) as e:
            return self._refuse(400, f"undecodable body: {e}")
        if problem := _invalid(export):
            return self._refuse(400, problem)
        received = [
            ReceivedSpan(
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                name=span.name,
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
                attributes={a.key: _value(a.value) for a in span.attributes},
                resource={a.key: _value(a.value) for a in resource_spans.resource.attributes},
            )
            for resource_spans in export.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self._spans.extend(received)
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)
