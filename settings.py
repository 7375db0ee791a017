"""Configuration, read from the environment and `.env`, validated at start-up.

One `Settings` class holds every setting. Those of one concept are declared
beside it and mixed in (`voice/settings.py`, `telephony/settings.py`,
`dialout/settings.py`, `recording/settings.py`, `assistants/settings.py`,
`config/transfer.py`, `config/control.py`); the
server's own, and the rules that span several concepts, are here. Every
setting is documented in `.env.example`. Secrets are `SecretStr`, so they
never appear in a log line or a repr.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.assistants import AssistantsSettings
from config.control import ControlSettings
from config.dialout import DialoutSettings
from config.recording import RecordingMode, RecordingSettings
from config.telephony import TelephonySettings
from config.tracing import TracingSettings
from config.transfer import TransferSettings
from config.voice import VoiceSettings
from ops.cpus import available_cpus


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/switchboard.db"
# Calls one process holds when MAX_CALLS is unset, from the benchmark
# (bench/results/latest.json, one core of the machine the README names). With
# cloud services: half the calls one core held, where the p95 reply overhead
# stays under 60 ms (one event loop: more cores do not help one process). With
# Whisper or Piper in the process: what the offline profile held per core, for
# each core, since the models run in threads.
CLOUD_MAX_CALLS = 26
OFFLINE_CALLS_PER_CORE = 1


class Settings(
    BaseSettings,
    VoiceSettings,
    TelephonySettings,
    DialoutSettings,
    RecordingSettings,
    AssistantsSettings,
    TracingSettings,
    TransferSettings,
    ControlSettings,
):
    """Switchboard's settings. Field names are the environment variables, upper-cased."""

    # hide_input_in_errors: a rejected secret must not be echoed into the start-up error.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    public_url: AnyHttpUrl | None = None
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    # Call records: SQLite under ./data unless DATABASE_URL names a PostgreSQL server.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    store_transcripts: bool = True

    # Operations: admission control and graceful drain (see ops/admission.py, ops/drain.py).
    # Unset: what the benchmark measured for the voice services chosen (`call_capacity`).
    max_calls: int | None = Field(None, ge=1)
    drain_timeout: float = Field(300.0, ge=0)
    # Sockets on /ws that have not yet sent a verified `start`; the next one is refused.
    max_handshaking: int = Field(64, ge=1)
    # Processes serving one port (ops/workers.py); unset: one per CPU available.
    workers: int | None = Field(None, ge=1, le=256)

    @field_validator(
        "public_url",
        "max_calls",
        "workers",
        "twilio_account_sid",
        "twilio_phone_number",
        "twilio_auth_token",
        "twilio_region",
        "twilio_edge",
        "exotel_ws_username",
        "exotel_ws_password",
        "exotel_api_key",
        "exotel_api_token",
        "exotel_account_sid",
        "exotel_caller_id",
        "stt",
        "llm",
        "tts",
        "deepgram_api_key",
        "openai_api_key",
        "openai_base_url",
        "cartesia_api_key",
        "dialout_api_key",
        "stream_secret",
        "assistants_file",
        "events_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` copies leave `KEY=` lines; an empty value means "not set".
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in levels:
            raise ValueError(f"must be one of {', '.join(levels)}")
        return value.upper()

    @field_validator("database_url", mode="before")
    @classmethod
    def _async_database_url(cls, value: object) -> object:
        from records.database import async_database_url

        if value in ("", None):
            return DEFAULT_DATABASE_URL
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return async_database_url(str(value)) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _dialout_has_a_public_url(self) -> Self:
        if self.dials_out and self.public_url is None:
            # Never the request's Host: a forged header would send the callee's audio elsewhere.
            raise ValueError(
                "DIALOUT_API_KEY and a provider's credentials are set: dial-out also needs "
                "PUBLIC_URL (e.g. https://bot.example.com), where the providers stream placed "
                "calls and send their status"
            )
        return self

    @property
    def dials_out(self) -> bool:
        """Whether `POST /dialout` can place calls: the API key and a provider's credentials.

        The key alone opens the rest of the API and the console (an offline server
        with no provider); dial-out then answers 503, saying what it needs.
        """
        return self.dialout_api_key is not None and (self.can_hang_up or self.can_dial_exotel)

    @model_validator(mode="after")
    def _twilio_records_with_credentials(self) -> Self:
        if self.recording is RecordingMode.TWILIO and not self.can_hang_up:
            raise ValueError("RECORDING=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return self

    @model_validator(mode="after")
    def _transfers_can_be_placed(self) -> Self:
        if self.transfer_targets and self.can_hang_up and self.public_url is None:
            # The dial's outcome comes back to a URL: never one built from a request's Host.
            raise ValueError(
                "TRANSFER_TARGETS is set: Twilio transfers also need PUBLIC_URL, where Twilio "
                "brings the caller back when nobody answers"
            )
        for name, number in self.transfer_targets.items():
            if not self.may_call(number):
                raise ValueError(
                    f"TRANSFER_TARGETS: {name} ({number}) is outside DIALOUT_ALLOWED_PREFIXES"
                )
        return self

    def may_call(self, number: str) -> bool:
        """Whether `DIALOUT_ALLOWED_PREFIXES` lets calls (and transfers) go to `number`."""
        prefixes = self.dialout_allowed_prefixes
        return not prefixes or any(number.startswith(prefix) for prefix in prefixes)

    @property
    def worker_count(self) -> int:
        """Processes serving the port: `WORKERS`, else one per CPU this process may use."""
        return self.workers if self.workers is not None else available_cpus()

    @property
    def call_capacity(self) -> int:
        """Calls one process holds: `MAX_CALLS`, else the measured figure for the services.

        Whisper and Piper run in threads on every core, so with them in the
        process the machine's share per core is split among the workers.
        """
        if self.max_calls is not None:
            return self.max_calls
        if self.runs_models:
            return max(1, OFFLINE_CALLS_PER_CORE * available_cpus() // self.worker_count)
        return CLOUD_MAX_CALLS
