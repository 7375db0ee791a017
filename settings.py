"""Configuration, read from the environment and `.env`, validated at start-up.

Every setting is documented in `.env.example`. Secrets are `SecretStr`, so they
never appear in a log line or a repr.
"""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ops.cpus import available_cpus
from recording.settings import RecordingMode, RecordingSettings, empty_is_none
from tools.signing import SigningSecret


class STTChoice(StrEnum):
    WHISPER = "whisper"
    DEEPGRAM = "deepgram"


class LLMChoice(StrEnum):
    ECHO = "echo"
    OPENAI = "openai"


class TTSChoice(StrEnum):
    PIPER = "piper"
    CARTESIA = "cartesia"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly assistant on a phone call. Your words are spoken aloud, "
    "so answer in one or two short sentences, with no lists, markdown or emoji. "
    "When the caller wants to end the call, say goodbye and call the end_call tool."
)
DEFAULT_GREETING = "Hello! How can I help you today?"
TWILIO_API_HOST = "https://api.twilio.com"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/switchboard.db"
# A dial-out destination prefix: "+" and 1 to 15 digits.
DIALOUT_PREFIX = re.compile(r"\+[0-9]{1,15}")
MIN_DIALOUT_KEY_LENGTH = 16
# Calls one process holds when MAX_CALLS is unset, from the benchmark
# (bench/results/latest.json, one core of the machine the README names). With
# cloud services: half the calls one core held, where the p95 reply overhead
# stays under 60 ms (one event loop: more cores do not help one process). With
# Whisper or Piper in the process: what the offline profile held per core, for
# each core, since the models run in threads.
CLOUD_MAX_CALLS = 26
OFFLINE_CALLS_PER_CORE = 1


class Settings(BaseSettings, RecordingSettings):
    """Switchboard's settings. Field names are the environment variables, upper-cased.

    The recording settings (`RECORDING`, `RECORDINGS_DIR`, …) are `RecordingSettings`'.
    """

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

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: AnyHttpUrl = AnyHttpUrl(TWILIO_API_HOST)
    twilio_validate_signatures: bool = True
    # Every REST request then goes to api.{edge}.{region}.twilio.com (both or neither).
    twilio_region: Annotated[str | None, empty_is_none] = Field(None, pattern=r"^[a-z]{2}\d$")
    twilio_edge: Annotated[str | None, empty_is_none] = Field(None, pattern=r"^[a-z-]+$")

    stt: STTChoice | None = None
    llm: LLMChoice | None = None
    tts: TTSChoice | None = None
    deepgram_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: AnyHttpUrl | None = None
    openai_model: str = "gpt-4o-mini"
    cartesia_api_key: SecretStr | None = None
    cartesia_voice_id: str = "71a7ad14-091c-4e8e-a314-022ece01c121"

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    greeting: str = DEFAULT_GREETING
    # WAV prompts played by name: the `greeting_audio` parameter, POST /calls/{sid}/play.
    prompts_dir: Path = Path("prompts")

    @field_validator("system_prompt", "greeting", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        if value in ("", None):
            return DEFAULT_SYSTEM_PROMPT if info.field_name == "system_prompt" else DEFAULT_GREETING
        return value

    vad_stop_secs: float = Field(0.2, gt=0, le=3)
    # Caller audio per pipeline frame: 20 is each Twilio packet on its own; 40
    # halves the per-packet work of a call for ~10 ms more reply latency.
    audio_in_frame_ms: int = Field(40, ge=20, le=200)
    outbound_greeting_wait_secs: float = Field(3.0, ge=0, le=30)

    dialout_api_key: SecretStr | None = None
    dialout_allowed_prefixes: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Call records: SQLite under ./data unless DATABASE_URL names a PostgreSQL server.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    store_transcripts: bool = True

    # Exotel: who may open /ws as Exotel's Voicebot applet, and the REST API for dial-out.
    exotel_ws_username: str | None = None
    exotel_ws_password: SecretStr | None = None
    exotel_allowed_ips: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    exotel_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    exotel_api_key: str | None = None
    exotel_api_token: SecretStr | None = None
    exotel_account_sid: str | None = None
    exotel_caller_id: str | None = None
    exotel_api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.in.exotel.com")

    # Operations: admission control and graceful drain (see ops/admission.py, ops/drain.py).
    # Unset: what the benchmark measured for the voice services chosen (`call_capacity`).
    max_calls: int | None = Field(None, ge=1)
    drain_timeout: float = Field(300.0, ge=0)
    # Processes serving one port (ops/workers.py); unset: one per CPU available.
    workers: int | None = Field(None, ge=1, le=256)

    # Assistants, HTTP tools and event webhooks (assistants/, tools/, events/).
    assistants_file: Path | None = None
    events_url: AnyHttpUrl | None = None
    webhook_secret: SigningSecret | None = None
    tools_allow_private: bool = False

    @model_validator(mode="after")
    def _events_are_signed(self) -> Self:
        if self.events_url is not None and self.webhook_secret is None:
            raise ValueError("EVENTS_URL is set: WEBHOOK_SECRET must be set too, to sign events")
        return self

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in levels:
            raise ValueError(f"must be one of {', '.join(levels)}")
        return value.upper()

    @field_validator("dialout_allowed_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _async_database_url(cls, value: object) -> object:
        from records.database import async_database_url

        if value in ("", None):
            return DEFAULT_DATABASE_URL
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return async_database_url(str(value)) if isinstance(value, str) else value

    @field_validator("exotel_allowed_ips", "exotel_trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        # A bare address is a network of one: "203.0.113.7" means 203.0.113.7/32.
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("dialout_allowed_prefixes")
    @classmethod
    def _prefixes_are_numbers(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not DIALOUT_PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r} is not a number prefix like +1 or +4420")
        return value

    @model_validator(mode="after")
    def _dialout_is_safe(self) -> Self:
        key = self.dialout_api_key
        if key is None:
            return self
        if len(key.get_secret_value()) < MIN_DIALOUT_KEY_LENGTH:
            raise ValueError(
                f"DIALOUT_API_KEY must be at least {MIN_DIALOUT_KEY_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        if not (self.can_hang_up or self.can_dial_exotel):
            raise ValueError(
                "DIALOUT_API_KEY is set: dial-out also needs Twilio's TWILIO_ACCOUNT_SID "
                "and TWILIO_AUTH_TOKEN, or Exotel's EXOTEL_API_KEY, EXOTEL_API_TOKEN, "
                "EXOTEL_ACCOUNT_SID and EXOTEL_CALLER_ID"
            )
        return self

    @field_validator(
        "twilio_account_sid",
        "twilio_phone_number",
        "twilio_auth_token",
        "deepgram_api_key",
        "openai_api_key",
        "cartesia_api_key",
        "dialout_api_key",
        "exotel_ws_username",
        "exotel_ws_password",
        "exotel_api_key",
        "exotel_api_token",
        "exotel_account_sid",
        "exotel_caller_id",
        "public_url",
        "openai_base_url",
        "stt",
        "llm",
        "tts",
        "max_calls",
        "workers",
        "assistants_file",
        "events_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` copies leave `KEY=` lines; an empty value means "not set".
        return None if value == "" else value

    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid_shape(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("AC") and len(value) == 34):
            raise ValueError("must look like AC followed by 32 hex characters")
        return value

    @model_validator(mode="after")
    def _exotel_credentials_in_pairs(self) -> Self:
        if (self.exotel_ws_username is None) != (self.exotel_ws_password is None):
            raise ValueError("set both EXOTEL_WS_USERNAME and EXOTEL_WS_PASSWORD, or neither")
        return self

    @model_validator(mode="after")
    def _one_twilio_host(self) -> Self:
        if (self.twilio_region is None) != (self.twilio_edge is None):
            raise ValueError("set both TWILIO_REGION and TWILIO_EDGE (e.g. ie1, dublin) or neither")
        if self.twilio_region and str(self.twilio_api_base_url).rstrip("/") != TWILIO_API_HOST:
            raise ValueError("set TWILIO_REGION and TWILIO_EDGE, or TWILIO_API_BASE_URL: not both")
        if self.recording is RecordingMode.TWILIO and not self.can_hang_up:
            raise ValueError("RECORDING=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return self

    @model_validator(mode="after")
    def _choose_services(self) -> Self:
        if self.stt is None:
            self.stt = STTChoice.DEEPGRAM if self.deepgram_api_key else STTChoice.WHISPER
        if self.llm is None:
            self.llm = LLMChoice.OPENAI if self.openai_api_key else LLMChoice.ECHO
        if self.tts is None:
            self.tts = TTSChoice.CARTESIA if self.cartesia_api_key else TTSChoice.PIPER
        missing = [
            name
            for name, needed, key in (
                ("DEEPGRAM_API_KEY", self.stt is STTChoice.DEEPGRAM, self.deepgram_api_key),
                ("CARTESIA_API_KEY", self.tts is TTSChoice.CARTESIA, self.cartesia_api_key),
            )
            if needed and not key
        ]
        # An OpenAI-compatible local server (Ollama, vLLM) needs no key.
        if self.llm is LLMChoice.OPENAI and not (self.openai_api_key or self.openai_base_url):
            missing.append("OPENAI_API_KEY (or OPENAI_BASE_URL)")
        if missing:
            raise ValueError(f"the chosen voice services need {', '.join(missing)}")
        return self

    @property
    def validates_signatures(self) -> bool:
        """Whether Twilio's `X-Twilio-Signature` is checked on webhooks and the websocket."""
        return self.twilio_validate_signatures and self.twilio_auth_token is not None

    @property
    def can_hang_up(self) -> bool:
        """Whether the server holds the credentials to end calls through Twilio's REST API."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def exotel_authenticates(self) -> bool:
        """Whether Exotel streams on /ws need Basic credentials or an allowed address."""
        return self.exotel_ws_username is not None or bool(self.exotel_allowed_ips)

    @property
    def can_dial_exotel(self) -> bool:
        """Whether the server holds what Exotel's connect API needs to place calls."""
        return bool(
            self.exotel_api_key
            and self.exotel_api_token
            and self.exotel_account_sid
            and self.exotel_caller_id
        )

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
        if self.stt is STTChoice.WHISPER or self.tts is TTSChoice.PIPER:
            return max(1, OFFLINE_CALLS_PER_CORE * available_cpus() // self.worker_count)
        return CLOUD_MAX_CALLS
