"""Several processes writing one SQLite file at once, as the workers of one machine do.

Each process migrates the new file at the same moment (the migration lock
makes them take turns) and then writes calls and turns as fast as it can; WAL
and the busy timeout make the writers wait for each other instead of failing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from records.store import CallStore
from tests.server_process import ROOT

WRITERS = 3
CALLS_EACH = 60

WRITER = """
import asyncio, os, sys, time
from datetime import UTC, datetime
from records.store import CallStore

async def main(url, name, calls, go):
    store = CallStore(url)
    while not os.path.exists(go):  # every writer starts at the same moment
        time.sleep(0.005)
    await store.migrate()
    for i in range(calls):
        sid = f"CA{name}{i:030d}"
        await store.note_call(sid, direction="inbound", from_number="+15550001111")
        await store.add_turn(sid, 1, "assistant", f"hello {i}", datetime.now(UTC))
        await store.add_turn(sid, 2, "user", f"bye {i}", datetime.now(UTC))
        await store.end_call(sid, "caller_hung_up")
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
"""


def _start_writers(url: str, go: Path) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"{n:02d}", str(CALLS_EACH), str(go)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for n in range(WRITERS)
    ]


async def test_processes_writing_one_sqlite_file_at_once_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'machine.db'}"
    go = tmp_path / "go"
    writers = _start_writers(url, go)
    await asyncio.sleep(3)  # their imports
    go.touch()
    for writer in writers:
        _, errors = await asyncio.to_thread(writer.communicate, timeout=120)
        assert writer.returncode == 0, errors.decode()[-2000:]

    store = CallStore(url)
    try:
        page = await store.list_calls(limit=500)
        assert page.total == WRITERS * CALLS_EACH
        for n in range(WRITERS):
            record = await store.get_call(f"CA{n:02d}{CALLS_EACH - 1:030d}")
            assert record is not None
            assert [turn.role for turn in record.turns] == ["assistant", "user"]
            assert (record.end_reason, record.status) == ("caller_hung_up", "completed")
    finally:
        await store.close()
