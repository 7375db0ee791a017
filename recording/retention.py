"""Recordings over time: spools a crash left behind are finished, old recordings deleted.

At start-up, a WAV in the spool that no live writer holds (`wav.is_locked`) was
left by a process that died mid-call: its header is made to match what
was written, it is kept (uploaded, with S3), and its call's record gets its
duration. With `RECORDING_RETENTION_DAYS`, recordings older than that are
deleted every hour (and their records say so); Twilio keeps its own as the
account's settings say.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from loguru import logger

from recording.store import LocalStore
from recording.wav import is_locked, repair
from records.store import CallStore

SWEEP_EVERY_SECS = 3600.0
SOURCE = "local"


async def recover(store: LocalStore, records: CallStore) -> int:
    """Finish and keep every spool nobody writes any more; how many there were."""
    if not store.spool.is_dir():
        return 0
    orphans = [p for p in sorted(store.spool.glob("*.wav")) if not is_locked(p)]
    kept = 0
    for path in orphans:
        with logger.contextualize(call_sid=path.stem):
            try:
                seconds = await asyncio.to_thread(repair, path)
                location = await store.keep(path)
                await records.set_recording(path.stem, SOURCE, location, round(seconds, 3))
            except Exception as e:
                logger.error(f"Recording: could not recover {path.name}: {e}")
                continue
        kept += 1
    return kept


async def delete_old(store: LocalStore, records: CallStore, days: int) -> list[str]:
    """Delete recordings older than `days`; the call SIDs whose recording went."""
    gone = await store.delete_before(datetime.now(UTC) - timedelta(days=days))
    await records.forget_recordings(gone, SOURCE)
    if gone:
        logger.info(f"Recordings older than {days} days deleted: {len(gone)}")
    return gone


async def keep_tidy(store: LocalStore, records: CallStore, days: int | None) -> None:
    """Recover spools once, then delete old recordings every hour; runs until cancelled."""
    recovered = await recover(store, records)
    if recovered:
        logger.info(f"Recordings left by an earlier process recovered: {recovered}")
    while days is not None:
        try:
            await delete_old(store, records, days)
        except Exception as e:
            logger.error(f"Recording retention sweep failed: {e}")
        await asyncio.sleep(SWEEP_EVERY_SECS)
