"""Every private Pipecat name Switchboard relies on, and what breaks without it.

The modules of `voice.pipecat` subclass Pipecat classes and read, write,
override or call attributes and methods whose names start with `_`. Pipecat
may rename or drop those in any release, and most losses are silent: renaming
`FastAPIWebsocketTransport._input` switches the fast path off without an error;
renaming `SegmentedSTTService._handle_user_stopped_speaking` holds every turn
for seconds. `tests/test_pipecat_contract.py` checks each name below against
the installed Pipecat (that it exists, as the same kind, with the same
parameters, still assigned and still used where Pipecat used it), that
`requirements.txt` pins the version checked, and that `voice.pipecat` uses no
private Pipecat name missing here. An upgrade of `pipecat-ai` then fails a
test that names the piece and what users would notice, instead of a call.

This module imports only Pipecat and the standard library, so anything may
import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketTransport
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)

Kind = Literal["method", "async method", "attribute"]

FAST_INPUT = "fast path: caller audio pushed directly (TelephonyTransport)"
BLIND_OBSERVER = "fast path: observers blind to audio (blind_to_audio)"
VAD = "VAD: batched Silero (FastSileroVAD)"
TURNS = "turns: PatientSpeechTimeout"
SEGMENT_MARKS = "turns: Whisper's segment marks (SharedWhisperSTT)"
WHISPER = "offline Whisper: shared model (SharedWhisperSTT)"
PIPER = "offline Piper: shared voice (SharedPiperTTS)"


@dataclass(frozen=True)
class PrivateName:
    """One private name of a Pipecat class that Switchboard relies on.

    Attributes:
        owner: The Pipecat class that defines it (or a subclass we use it through).
        name: The attribute or method name, with its leading underscore.
        kind: "method" or "async method" (we override or call it), or
            "attribute" (we read or write it on an instance).
        parameters: A method's parameter names, `self` first; None for an attribute.
        piece: The piece of Switchboard that breaks without it.
        why: What callers notice when it breaks.
        set_in: For an attribute: the owner's method that assigns it.
        read_by: Methods of the owner that must still use it; without them a
            name that survives but is no longer consulted breaks silently.
    """

    owner: type
    name: str
    kind: Kind
    parameters: tuple[str, ...] | None
    piece: str
    why: str
    set_in: str = "__init__"
    read_by: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """`Owner.name`, as the test ids and failure messages say it."""
        return f"{self.owner.__name__}.{self.name}"


@dataclass(frozen=True)
class SkippedInit:
    """A Pipecat constructor Switchboard skips, setting its attributes itself.

    Attributes:
        owner: The class whose `__init__` is not run.
        assigns: Every attribute that `__init__` assigns; we assign the same.
        piece: The piece of Switchboard that breaks if it assigns more.
        why: What callers notice when it breaks.
    """

    owner: type
    assigns: tuple[str, ...]
    piece: str
    why: str


def _attribute(
    owner: type,
    name: str,
    piece: str,
    why: str,
    *,
    set_in: str = "__init__",
    read_by: tuple[str, ...] = (),
) -> PrivateName:
    """An instance attribute of `owner`, assigned in its method `set_in`."""
    return PrivateName(owner, name, "attribute", None, piece, why, set_in, read_by)


def _method(
    owner: type,
    name: str,
    parameters: tuple[str, ...],
    piece: str,
    why: str,
    *,
    read_by: tuple[str, ...] = (),
) -> PrivateName:
    """A method of `owner` we override or call."""
    return PrivateName(owner, name, "method", parameters, piece, why, read_by=read_by)


def _async_method(
    owner: type,
    name: str,
    parameters: tuple[str, ...],
    piece: str,
    why: str,
    *,
    read_by: tuple[str, ...] = (),
) -> PrivateName:
    """A coroutine method of `owner` we override or call."""
    return PrivateName(owner, name, "async method", parameters, piece, why, read_by=read_by)


_CALLS_FAIL = "every call fails as it starts"
_DEAF = "the caller's first packet raises and the call drops"
_VAD_DEAF = "VAD raises on the first audio: the bot never hears the caller"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # fastpath.py: TelephonyTransport swaps in its own input processor, _DirectInput.
    _attribute(
        FastAPIWebsocketTransport,
        "_input",
        FAST_INPUT,
        "the fast path is off, silently: each packet takes Pipecat's queue and task "
        "again, and a process holds fewer calls",
        read_by=("input",),
    ),
    _attribute(FastAPIWebsocketTransport, "_client", FAST_INPUT, _CALLS_FAIL),
    _attribute(FastAPIWebsocketTransport, "_params", FAST_INPUT, _CALLS_FAIL),
    _attribute(BaseTransport, "_input_name", FAST_INPUT, _CALLS_FAIL),
    _attribute(BaseInputTransport, "_params", FAST_INPUT, _DEAF, read_by=("push_audio_frame",)),
    _attribute(BaseInputTransport, "_paused", FAST_INPUT, _DEAF, read_by=("push_audio_frame",)),
    _method(
        BaseInputTransport,
        "_create_audio_task",
        ("self",),
        FAST_INPUT,
        "an idle audio task per call again; an `audio_in_filter` silently ignored",
        read_by=("set_transport_ready",),
    ),
    # fastpath.py: blind_to_audio swaps the worker's observer.
    _attribute(
        PipelineWorker,
        "_observer",
        BLIND_OBSERVER,
        f"{_CALLS_FAIL}, or observers queue all audio again: a third of a call's CPU",
        read_by=("_setup", "add_observer"),
    ),
    _attribute(
        WorkerObserver,
        "_observers",
        BLIND_OBSERVER,
        f"{_CALLS_FAIL}, or transcripts and latency metrics are lost",
        read_by=("setup", "add_observer"),
    ),
    # vad.py: FastSileroVAD runs Pipecat's state machine on Pipecat's fields.
    _attribute(VADAnalyzer, "_params", VAD, _VAD_DEAF),
    _attribute(VADAnalyzer, "_vad_buffer", VAD, _VAD_DEAF),
    _attribute(VADAnalyzer, "_prev_volume", VAD, _VAD_DEAF),
    _attribute(VADAnalyzer, "_smoothing_factor", VAD, _VAD_DEAF),
    _attribute(VADAnalyzer, "_vad_frames_num_bytes", VAD, _VAD_DEAF, set_in="set_params"),
    _attribute(VADAnalyzer, "_vad_start_frames", VAD, _VAD_DEAF, set_in="set_params"),
    _attribute(VADAnalyzer, "_vad_stop_frames", VAD, _VAD_DEAF, set_in="set_params"),
    _attribute(VADAnalyzer, "_vad_starting_count", VAD, _VAD_DEAF, set_in="set_params"),
    _attribute(VADAnalyzer, "_vad_stopping_count", VAD, _VAD_DEAF, set_in="set_params"),
    _attribute(
        VADAnalyzer,
        "_vad_state",
        VAD,
        f"{_VAD_DEAF}; frame sizing and turn ends read it too",
        set_in="set_params",
    ),
    _method(
        VADAnalyzer,
        "_get_smoothed_volume",
        ("self", "audio"),
        VAD,
        "nothing at once (only FastSileroVAD calls it); a Pipecat caller would get our volume",
    ),
    # turns.py: PatientSpeechTimeout holds Pipecat's turn end while the caller may go on.
    _async_method(
        SpeechTimeoutUserTurnStopStrategy,
        "_maybe_trigger_user_turn_stopped",
        ("self",),
        TURNS,
        "turns end mid-sentence again: the bot answers half of what was said",
        read_by=("_user_speech_timeout_handler", "_stt_timeout_handler"),
    ),
    _async_method(
        SpeechTimeoutUserTurnStopStrategy,
        "_cancel_all_tasks",
        ("self",),
        TURNS,
        "a held turn end is not dropped when the caller goes on or hangs up",
        read_by=("cleanup", "_discard_pending_end_of_turn"),
    ),
    _attribute(
        SpeechTimeoutUserTurnStopStrategy,
        "_vad_user_speaking",
        TURNS,
        "ending a turn raises: the bot never answers",
        read_by=("_maybe_trigger_user_turn_stopped",),
    ),
    # offline.py: SharedWhisperSTT numbers segments by VAD stop, for PatientSpeechTimeout.
    _async_method(
        SegmentedSTTService,
        "_handle_user_stopped_speaking",
        ("self", "frame"),
        SEGMENT_MARKS,
        "stops go uncounted: every turn is held 3 s before the bot answers",
        read_by=("process_frame",),
    ),
    _attribute(
        SegmentedSTTService,
        "_segment_queue",
        SEGMENT_MARKS,
        "a VAD stop raises before its segment is queued: no transcript, no answer",
        read_by=("_handle_user_stopped_speaking",),
    ),
    # offline.py: SharedWhisperSTT and SharedPiperTTS run on models loaded once per process.
    _method(
        WhisperSTTService,
        "_load",
        ("self",),
        WHISPER,
        "each call loads (or downloads) Whisper as it starts, stalling every call's audio",
        read_by=("__init__",),
    ),
    _attribute(
        WhisperSTTService,
        "_model",
        WHISPER,
        "Whisper has no model: nothing is transcribed, the bot never answers",
        read_by=("run_stt",),
    ),
    # offline.py: SharedWhisperSTT decodes itself and reports transcripts as Pipecat does.
    _async_method(
        WhisperSTTService,
        "_handle_transcription",
        ("self", "transcript", "is_final", "language"),
        WHISPER,
        "the call's STT spans and transcript metrics go missing from traces",
        read_by=("run_stt",),
    ),
    _attribute(
        PiperTTSService,
        "_voice",
        PIPER,
        "the bot says nothing: Piper no longer finds the shared voice",
        read_by=("run_tts",),
    ),
)

SKIPPED_INITS: tuple[SkippedInit, ...] = (
    SkippedInit(
        PiperTTSService,
        ("_voice",),
        PIPER,
        "what else Pipecat's constructor sets is missing: the bot's first sentence fails",
    ),
)
