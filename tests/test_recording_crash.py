"""Recordings over time: a crash keeps what was said and the next start keeps the file;
recordings past their retention are deleted."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recording.store import S3Store
from recording.wav import WavWriter
from simulator import SimulatedCall
from tests.conftest import OWN_URL, MakeServer, offline_settings
from tests.conversation import hear_greeting
from tests.recording_helpers import API_KEY, Recording, get, recording_when_kept
from tests.records_helpers import reading
from tests.s3_server import S3Account
from tests.server_process import ServerProcess
from tests.test_recording import recording_server


async def test_a_crash_keeps_what_was_said_and_the_next_start_uploads_it(
    tmp_path: Path, s3: S3Account
) -> None:
    folder = tmp_path / "recordings"
    settings = {
        "recording": "local",
        "recordings_dir": str(folder),
        "database_url": f"sqlite:///{tmp_path / 'switchboard.db'}",
        "dialout_api_key": API_KEY,
        "public_url": OWN_URL,
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "unused-token",
        "twilio_validate_signatures": "false",
        "recording_notice": "",
        **s3.settings(prefix=tmp_path.name),
    }
    server = ServerProcess(tmp_path, **settings).start()
    try:
        call = SimulatedCall(server.url)
        opened = time.monotonic()
        await call.dial()
        await hear_greeting(call)
        await call.silence(1.0)
        lived = time.monotonic() - opened
        server.kill()  # no chance to finish anything
        await call.hang_up()
    finally:
        server.stop()

    # What the dead server left on its disk is a WAV that plays: the greeting, and the
    # call up to its last write (once a second, a quarter second behind the clock).
    spool = folder / ".spool" / f"{call.call_sid}.wav"
    with wave.open(str(spool)) as left_behind:
        assert left_behind.getnchannels() == 2
        kept_secs = left_behind.getnframes() / left_behind.getframerate()
        wav = Recording.parse(spool.read_bytes())
    assert lived - 1.6 < kept_secs <= lived, (kept_secs, lived)
    assert wav.audible(wav.bot, 0, kept_secs)

    with ServerProcess(tmp_path, **settings) as restarted:
        record = await recording_when_kept(restarted.url, call.call_sid)
        status, _, body = await get(f"{restarted.url}{record['recording']['url']}")
    assert status == 200
    assert abs(record["recording"]["duration"] - Recording.parse(body).seconds) < 0.01
    assert record["recording"]["duration"] >= kept_secs - 0.01  # the record rounds to 10 ms
    key = f"{tmp_path.name}/{call.call_sid}.wav"
    assert s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read() == body
    assert not spool.exists()


async def test_recordings_past_their_retention_are_deleted(
    make_server: MakeServer, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    for sid in ("CAold", "CAnew"):
        WavWriter(folder / f"{sid}.wav", 8000).close()
    three_days_ago = time.time() - 3 * 86400
    os.utime(folder / "CAold.wav", (three_days_ago, three_days_ago))
    async with reading(f"sqlite:///{tmp_path / 'switchboard.db'}") as store:
        await store.migrate()
        for sid in ("CAold", "CAnew"):
            await store.set_recording(sid, "local", f"{sid}.wav", 0.0)

    server = recording_server(make_server, tmp_path, recording_retention_days=1)
    deadline = time.monotonic() + 20
    while (folder / "CAold.wav").exists() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert not (folder / "CAold.wav").exists()
    old = b""
    while time.monotonic() < deadline:  # its record is cleared just after the file goes
        _, _, old = await get(f"{server.url}/calls/CAold")
        if b'"recording":null' in old:
            break
        await asyncio.sleep(0.1)
    assert b'"recording":null' in old
    status, _, _ = await get(f"{server.url}/calls/CAold/recording")
    assert status == 404
    status, _, new = await get(f"{server.url}/calls/CAnew/recording")
    assert status == 200 and new[:4] == b"RIFF"


async def test_old_recordings_are_deleted_from_the_bucket(tmp_path: Path, s3: S3Account) -> None:
    store = S3Store(offline_settings(recordings_dir=tmp_path, **s3.settings(tmp_path.name)))
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key=f"{tmp_path.name}/CAgone.wav", Body=b"RIFF")
    client.put_object(Bucket=s3.bucket, Key=f"{tmp_path.name}/notes.txt", Body=b"keep")
    assert await store.delete_before(datetime.now(UTC) - timedelta(days=1)) == []
    assert await store.delete_before(datetime.now(UTC) + timedelta(days=1)) == ["CAgone"]
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{tmp_path.name}/")
    assert [item["Key"] for item in listed["Contents"]] == [f"{tmp_path.name}/notes.txt"]
