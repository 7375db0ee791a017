"""The tracing settings, mixed into `settings.Settings` (one class, read and validated there).

OpenTelemetry's own variable names, so a deployment that already sets them for
other services needs nothing new. Unset endpoint: no traces, and no tracer.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator

from config.recording import empty_is_none

# What the exporter speaks: OTLP over HTTP, protobuf-encoded (port 4318 by convention).
HTTP_PROTOBUF: Literal["http/protobuf"] = "http/protobuf"


def otlp_pairs(value: str) -> dict[str, str]:
    """Parse OpenTelemetry's `key=value,key2=value2` (values URL-encoded), as in its headers.

    Raises:
        ValueError: An entry without `=`, or with an empty key.
    """
    pairs: dict[str, str] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        key, equals, encoded = entry.partition("=")
        if not equals or not key.strip():
            raise ValueError("must be key=value pairs separated by commas")
        pairs[key.strip()] = unquote(encoded.strip())
    return pairs


class TracingSettings(BaseModel):
    """Traces of calls, sent by OTLP/HTTP to an OpenTelemetry collector, Jaeger or Tempo.

    Attributes:
        otel_exporter_otlp_endpoint: The collector's base URL (e.g.
            `http://collector:4318`); spans go to its `/v1/traces`. Unset: tracing off.
        otel_exporter_otlp_headers: Headers sent with each export (an API key), as
            OpenTelemetry writes them: `key=value,key2=value2`.
        otel_exporter_otlp_protocol: Only `http/protobuf`: said here so that a
            `grpc` left over from another service stops the server instead of
            exporting nowhere.
        otel_service_name: The traces' `service.name`.
        otel_resource_attributes: More of what describes this server in its
            traces, e.g. `deployment.environment=production`.
    """

    otel_exporter_otlp_endpoint: Annotated[AnyHttpUrl | None, empty_is_none] = None
    otel_exporter_otlp_headers: Annotated[SecretStr | None, empty_is_none] = None
    otel_exporter_otlp_protocol: Literal["http/protobuf"] = HTTP_PROTOBUF
    otel_service_name: str = Field("switchboard", min_length=1)
    otel_resource_attributes: Annotated[str | None, empty_is_none] = None

    @field_validator("otel_exporter_otlp_headers")
    @classmethod
    def _headers_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            otlp_pairs(value.get_secret_value())
        return value

    @field_validator("otel_resource_attributes")
    @classmethod
    def _attributes_parse(cls, value: str | None) -> str | None:
        if value is not None:
            otlp_pairs(value)
        return value

    @field_validator("otel_exporter_otlp_protocol", mode="before")
    @classmethod
    def _default_protocol(cls, value: object) -> object:
        return HTTP_PROTOBUF if value in ("", None) else value

    @property
    def otlp_export_headers(self) -> dict[str, str]:
        """The headers each export carries (parsed `OTEL_EXPORTER_OTLP_HEADERS`)."""
        headers = self.otel_exporter_otlp_headers
        return otlp_pairs(headers.get_secret_value()) if headers is not None else {}

    @property
    def otlp_resource_attributes(self) -> dict[str, str]:
        """The parsed `OTEL_RESOURCE_ATTRIBUTES`."""
        attributes = self.otel_resource_attributes
        return otlp_pairs(attributes) if attributes is not None else {}

    @property
    def otlp_traces_url(self) -> str | None:
        """Where spans are posted: the endpoint's `/v1/traces`, as OpenTelemetry's spec says."""
        if self.otel_exporter_otlp_endpoint is None:
            return None
        return str(self.otel_exporter_otlp_endpoint).rstrip("/") + "/v1/traces"
