"""`Recordings`: the server's recordings (`RECORDING=local`), one `Tape` per call.

A tape listens on the call's serializer (`StereoTap`), and once a second a task
of its own mixes what it heard and appends it to the call's WAV in a worker
thread: the audio path only appends to a list, and never waits for a disk.
When the call ends the WAV is finished and kept (`RecordingStore.keep`: at
once on disk, or uploaded to S3 in the background), and the call's record
says where it is and how long it is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from loguru import logger
from pipecat.serializers.base_serializer import FrameSerializer

from recording.store import LocalStore, file_name, store_for
from recording.tap import Batch, StereoTap, TappedSerializer
from recording.twilio import start_recording
from recording.wav import WavWriter
from records.store import CallStore
from records.writes import Writes
from settings import Settings
from telephony.call_info import CallInfo

FLUSH_SECS = 1.0
SOURCE = "local"


class Tape:
    """One call's recording, written as the call goes."""

    def __init__(self, call: CallInfo, path: Path, writer: WavWriter) -> None:
        """Record `call` into `writer` (use `Recordings.start`)."""
        self.call_sid = call.call_sid
        self.path = path
        self.tap = StereoTap(call.sample_rate)
        self._writer = writer
        self._closed = False
        self.seconds: float | None = None  # once closed
        self._flusher = asyncio.create_task(
            self._flush_every_second(), name=f"tape-{call.call_sid}"
        )

    def serializer(self, inner: FrameSerializer) -> FrameSerializer:
        """The call's serializer, with this tape listening to the wire."""
        return TappedSerializer(inner, self.tap)

    async def close(self) -> None:
        """The call ended: write the rest and finish the WAV (`seconds` says how long it is)."""
        if self._closed:
            return
        self._closed = True
        self._flusher.cancel()
        await asyncio.gather(self._flusher, return_exceptions=True)
        batch = self.tap.take()
        try:
            await asyncio.to_thread(self._write, batch, True)
            await asyncio.to_thread(self._writer.close)
        except OSError as e:
            logger.error(f"Recording: could not finish {self.path.name}: {e}")
            return
        self.seconds = self._writer.seconds

    async def _flush_every_second(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(FLUSH_SECS)
            batch = self.tap.take()
            try:
                await asyncio.to_thread(self._write, batch, False)
                failing = False
            except OSError as e:
                if not failing:  # once, not every second of a full disk
                    logger.error(f"Recording: could not write {self.path.name}: {e}")
                failing = True

    def _write(self, batch: Batch, final: bool) -> None:
        self._writer.write(self.tap.mix(batch, final=final))


class Recordings:
    """The recordings this server makes, and where they are kept."""

    def __init__(self, settings: Settings, records: CallStore) -> None:
        """Record calls when `RECORDING=local`, into the store `RECORDINGS_URL` names."""
        self.store: LocalStore = store_for(settings)
        self._records = records
        self._writes = Writes()

    async def start(self, call: CallInfo) -> Tape | None:
        """Start recording a call whose stream just started; None if it cannot be.

        The caller notes the tape's file on the call's record (`Tape.path.name`),
        in order with the call's other writes.
        """
        try:
            path = self.store.spool / file_name(call.call_sid)
            writer = await asyncio.to_thread(WavWriter, path, call.sample_rate)
        except (OSError, ValueError) as e:
            logger.error(f"Recording: the call cannot be recorded: {e}")
            return None
        return Tape(call, path, writer)

    def keep(self, tape: Tape) -> None:
        """Keep a closed tape's WAV, in the background (an upload to S3 takes a while).

        Call it once the call's record is ended, so this write comes after its others.
        """
        if tape.seconds is not None:
            seconds = tape.seconds
            self._writes.fire(tape.call_sid, lambda: self._keep(tape.call_sid, tape.path, seconds))

    async def _keep(self, call_sid: str, path: Path, seconds: float) -> None:
        with logger.contextualize(call_sid=call_sid):
            try:
                location = await self.store.keep(path)
            except Exception as e:
                logger.error(f"Recording: could not keep {path.name} ({e}); it stays in {path}")
                return
            await self._records.set_recording(call_sid, SOURCE, location, round(seconds, 3))
            logger.info(f"Recording kept: {location} ({seconds:.1f} s)")

    def ask_twilio(self, settings: Settings, call: CallInfo, base: str) -> None:
        """RECORDING=twilio: have Twilio record a call that just started, in the background.

        A call this server placed was asked to record at its creation.
        """
        if settings.records(call.provider) and not call.outbound:
            self._writes.fire(call.call_sid, lambda: start_recording(settings, call.call_sid, base))

    async def close(self) -> None:
        """Wait (a while) for uploads and record writes still going."""
        await self._writes.close(60)
