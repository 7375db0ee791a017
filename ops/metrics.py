"""Prometheus metrics, served at `GET /metrics`.

Each app has its own `CollectorRegistry` (not prometheus-client's global one),
so a test can run several servers in one process. No metric is labelled with a
call SID: one time series per call would grow without bound.

Under the supervisor (`WORKERS` > 1) prometheus-client runs in its multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, set by `ops/workers.py`): every worker writes
its figures to files there, and `/metrics`, whichever worker answers it, adds
up all of them, so the gauges are the machine's totals.

    switchboard_active_calls                      calls with a running bot
    switchboard_capacity_calls                    calls the server takes at most (MAX_CALLS)
    switchboard_calls_total                       by direction and outcome (end reason, rejected)
    switchboard_call_duration_seconds             from media stream accept to hang-up
    switchboard_webhook_requests_total            by outcome (connected, rejected, bad signature)
    switchboard_signature_failures_total          by endpoint (webhook, media_stream)
    switchboard_stream_refusals_total             streams refused before admission, by reason
    switchboard_dialout_results_total             by provider, outcome and Twilio error code
    switchboard_first_bot_audio_seconds           from media stream accept to the bot's first audio
    switchboard_response_latency_seconds          caller stops speaking → first bot audio, per turn
    switchboard_reply_stage_seconds               caller stops speaking → each stage of the reply
    switchboard_record_write_failures_total       call record writes given up on
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from pipecat.frames.frames import BotStartedSpeakingFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.values import MutexValue, ValueClass

from latency.stages import Reply, ReplyStages, Stage

REJECTED = "rejected"
NO_ERROR_CODE = "none"
UNKNOWN_ERROR_CODE = "unknown"
# Only these values become labels; anything else a stream or a provider says is counted
# as `unknown` or `other`, so a forged stream cannot create time series at will.
DIRECTIONS = frozenset({"inbound", "outbound"})
PROVIDERS = frozenset({"twilio", "exotel"})
ENDPOINTS = frozenset({"webhook", "media_stream"})
UNKNOWN, OTHER = "unknown", "other"
# Twilio's error codes that dial-out answers or commonly meets; Exotel's are HTTP statuses.
TWILIO_ERROR_CODES = frozenset(
    {20003, 20404, 20429, 20500, 21205, 21210, 21211, 21212, 21214, 21215, 21217}
)
HTTP_ERROR_STATUSES = range(400, 600)

LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# Finer than LATENCY_BUCKETS: the early stages (VAD's stop, the turn's end) are tenths.
STAGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class WebhookOutcome(StrEnum):
    """What the voice webhook answered."""

    CONNECTED = "connected"
    REJECTED = "rejected"
    INVALID_SIGNATURE = "invalid_signature"


class StreamRefusal(StrEnum):
    """Why a media stream was refused before it became a call (credentials aside)."""

    TOO_MANY_HANDSHAKES = "too_many_handshakes"
    HANDSHAKE = "handshake"  # no usable `start` in time
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"  # another call's, or parameters changed
    TOKEN_EXPIRED = "token_expired"
    ATTEMPT_MISMATCH = "attempt_mismatch"  # a dial-out token on another call
    ATTEMPT_UNKNOWN = "attempt_unknown"  # a dial-out token whose attempt has no call on record


class Metrics:
    """The server's metrics, in a registry of its own."""

    def __init__(self, live_calls: Callable[[], int], capacity: int) -> None:
        """Create the metrics.

        Args:
            live_calls: Reads how many calls have a running bot, for the active calls
                gauge (read again at each `calls_changed`).
            capacity: Calls this process takes at most (`MAX_CALLS`).
        """
        self.registry = CollectorRegistry()
        r = self.registry
        self._live_calls = live_calls
        # "livesum": a worker that exited stops counting (ops/workers.py marks it dead).
        self.active_calls = Gauge(
            "switchboard_active_calls",
            "Calls with a running bot",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.capacity = Gauge(
            "switchboard_capacity_calls",
            "Calls the server takes at most (MAX_CALLS, summed over its worker processes)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.capacity.set(capacity)
        self.calls = Counter(
            "switchboard_calls",
            "Calls by direction and outcome: how the call ended, or rejected",
            ["direction", "outcome"],
            registry=r,
        )
        self.call_duration = Histogram(
            "switchboard_call_duration_seconds",
            "Call length, from media stream accept to hang-up",
            ["direction"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.webhook_requests = Counter(
            "switchboard_webhook_requests",
            "Voice webhook requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.signature_failures = Counter(
            "switchboard_signature_failures",
            "Requests refused for a bad X-Twilio-Signature, by endpoint",
            ["endpoint"],
            registry=r,
        )
        self.stream_refusals = Counter(
            "switchboard_stream_refusals",
            "Media streams refused before admission, by reason (bad credentials aside)",
            ["reason"],
            registry=r,
        )
        self.dialout_results = Counter(
            "switchboard_dialout_results",
            "Dial-out requests by provider, outcome and the provider's error code",
            ["provider", "outcome", "error_code"],
            registry=r,
        )
        self.first_bot_audio = Histogram(
            "switchboard_first_bot_audio_seconds",
            "Time from media stream accept to the bot's first audio (outbound calls wait for "
            "the callee to speak first)",
            ["direction"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.response_latency = Histogram(
            "switchboard_response_latency_seconds",
            "Time from the caller's end of speech to the bot's first audio, per turn",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reply_stages = Histogram(
            "switchboard_reply_stage_seconds",
            "Time from the caller's end of speech to each stage of the bot's reply, per turn "
            "(vad_stop, stt_final, turn_end, llm_first_token, tts_first_audio, first_packet)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self._stage_series = {stage: self.reply_stages.labels(stage=stage) for stage in Stage}
        self.record_write_failures = Counter(
            "switchboard_record_write_failures_total",
            "Call record writes given up on (after retries, when the error may pass)",
            registry=r,
        )

    def record_write_failed(self, writes: int = 1) -> None:
        """Count call record writes that never reached the database."""
        self.record_write_failures.inc(writes)

    def calls_changed(self, *_: object) -> None:
        """Read the live calls again (an admission listener: on each call's start and end)."""
        self.active_calls.set(self._live_calls())

    def webhook(self, outcome: WebhookOutcome) -> None:
        """Count a voice webhook request (a bad signature also counts as a signature failure)."""
        self.webhook_requests.labels(outcome=outcome).inc()
        if outcome is WebhookOutcome.INVALID_SIGNATURE:
            self.signature_failed("webhook")
        if outcome is WebhookOutcome.REJECTED:
            self.call_rejected("inbound")

    def signature_failed(self, endpoint: str) -> None:
        """Count a request refused for its `X-Twilio-Signature` at `endpoint`."""
        self.signature_failures.labels(endpoint=_known(endpoint, ENDPOINTS, OTHER)).inc()

    def stream_refused(self, reason: StreamRefusal) -> None:
        """Count a media stream refused before it became a call."""
        self.stream_refusals.labels(reason=reason).inc()

    def call_rejected(self, direction: str) -> None:
        """Count a call turned away at capacity or while draining."""
        self.calls.labels(direction=_direction(direction), outcome=REJECTED).inc()

    def call_ended(self, direction: str, outcome: str, seconds: float) -> None:
        """Count a call that ran, by how it ended (a `bot.EndReason`), and its length."""
        self.calls.labels(direction=_direction(direction), outcome=outcome).inc()
        self.call_duration.labels(direction=_direction(direction)).observe(seconds)

    def dialout_placed(self, provider: str) -> None:
        """Count a dial-out that the provider (`twilio`, `exotel`) accepted."""
        self.dialout_results.labels(
            provider=_known(provider, PROVIDERS, OTHER), outcome="placed", error_code=NO_ERROR_CODE
        ).inc()

    def dialout_failed(self, provider: str, error_code: object) -> None:
        """Count a dial-out that failed, by the provider's error code.

        Args:
            provider: `twilio` or `exotel`.
            error_code: Twilio's error code (e.g. 21211, invalid number; 21215,
                geo permissions), Exotel's HTTP status, or None when there was
                none (the provider unreachable): counted as `unknown`; a code outside
                the known ones as `other`.
        """
        provider = _known(provider, PROVIDERS, OTHER)
        self.dialout_results.labels(
            provider=provider, outcome="failed", error_code=_error_code(provider, error_code)
        ).inc()

    def watch(
        self,
        worker: PipelineWorker,
        direction: str,
        accepted_at: float,
        on_reply: Callable[[float], None] | None = None,
        on_stages: Callable[[Reply], None] | None = None,
    ) -> None:
        """Time a call's first bot audio and its reply to each turn, stage by stage.

        Args:
            worker: The call's pipeline worker, before it runs.
            direction: `inbound` or `outbound`.
            accepted_at: `time.monotonic()` when its media stream was accepted.
            on_reply: Also told each turn's reply latency (e.g. the call's record).
            on_stages: Also told each reply's stages (e.g. the call's trace).
        """
        first_audio = self.first_bot_audio.labels(direction=_direction(direction))
        worker.add_observer(FirstBotAudioObserver(accepted_at, first_audio.observe))

        def replied(reply: Reply) -> None:
            self.response_latency.observe(reply.latency)
            for stage, seconds in reply.stages.items():
                self._stage_series[stage].observe(seconds)
            if on_reply is not None:
                on_reply(reply.latency)
            if on_stages is not None:
                on_stages(reply)

        worker.add_observer(ReplyStages(replied))

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (all workers' summed in multiprocess mode)."""
        if not multiprocess():
            return generate_latest(self.registry)
        machine = CollectorRegistry()
        MultiProcessCollector(machine)
        return generate_latest(machine)


def multiprocess() -> bool:
    """Whether prometheus-client keeps its values in files shared by the worker processes."""
    # Chosen once, when prometheus-client is imported, from PROMETHEUS_MULTIPROC_DIR.
    return ValueClass is not MutexValue


def _known(value: str, known: frozenset[str], otherwise: str) -> str:
    return value if value in known else otherwise


def _direction(direction: str) -> str:
    return _known(direction, DIRECTIONS, UNKNOWN)


def _error_code(provider: str, code: object) -> str:
    if code is None:
        return UNKNOWN_ERROR_CODE
    known = TWILIO_ERROR_CODES if provider == "twilio" else HTTP_ERROR_STATUSES
    return str(code) if isinstance(code, int) and code in known else OTHER


class FirstBotAudioObserver(BaseObserver):
    """Reports once how long after `since` the bot first started speaking."""

    def __init__(self, since: float, report: Callable[[float], None]) -> None:
        """Report `time.monotonic() - since` at the first `BotStartedSpeakingFrame`."""
        super().__init__(observe_every_push=False)
        self._since = since
        self._report: Callable[[float], None] | None = report

    async def on_push_frame(self, data: FramePushed) -> None:
        """Watch for the bot's first speech."""
        if (
            self._report is not None
            and data.direction == FrameDirection.DOWNSTREAM
            and isinstance(data.frame, BotStartedSpeakingFrame)
        ):
            self._report(time.monotonic() - self._since)
            self._report = None
