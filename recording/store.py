"""Where recordings are kept: a local folder, or S3-compatible object storage.

Either way a call's WAV is written to `RECORDINGS_DIR/.spool/` as the call goes.
When the call ends the finished file moves to `RECORDINGS_DIR`, or, with
`RECORDINGS_URL=s3://bucket/prefix`, is uploaded and the local copy removed. A
spool left by a crash is finished at the next start-up (`recording.retention`).

A recording's location, as the call's record keeps it, is the file's name in
`RECORDINGS_DIR` (`CA….wav`) or its object's URL (`s3://bucket/prefix/CA….wav`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from settings import Settings

# Call SIDs become file names and keys: nothing else may.
SAFE_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
READ_CHUNK = 64 * 1024
SPOOL = ".spool"


def file_name(call_sid: str) -> str:
    """The recording's file name for a call.

    Raises:
        ValueError: The SID is not safe in a file name.
    """
    if not SAFE_SID.fullmatch(call_sid):
        raise ValueError(f"call SID {call_sid[:70]!r} cannot name a file")
    return f"{call_sid}.wav"


class LocalStore:
    """Recordings kept as files in `RECORDINGS_DIR`; every call's spool is in `spool`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.spool = directory / SPOOL

    async def keep(self, path: Path) -> str:
        """Keep the finished recording at `path` (in `spool`); its location."""
        await asyncio.to_thread(path.replace, self.directory / path.name)
        return path.name

    def path(self, location: str) -> Path | None:
        """The file of a local location (kept, or still being written), if it exists."""
        if location.startswith("s3://") or location != Path(location).name:
            return None
        for folder in (self.directory, self.spool):
            if (folder / location).is_file():
                return folder / location
        return None

    async def delete_before(self, cutoff: datetime) -> list[str]:
        """Delete recordings last written before `cutoff`; the call SIDs they were of."""
        from recording.wav import is_locked

        def sweep() -> list[str]:
            gone = []
            for path in self.directory.glob("*.wav"):
                old = path.stat().st_mtime < cutoff.timestamp()
                if old and not is_locked(path):
                    path.unlink(missing_ok=True)
                    gone.append(path.stem)
            return gone

        return await asyncio.to_thread(sweep)


class S3Store(LocalStore):
    """Recordings spooled in `RECORDINGS_DIR` as calls go, kept in an S3 bucket once finished.

    boto3 is synchronous: every request runs in a worker thread.
    """

    def __init__(self, settings: Settings) -> None:
        """Prepare the client for `RECORDINGS_URL` (no request is made yet)."""
        import boto3

        super().__init__(settings.recordings_dir)
        assert settings.recordings_url is not None
        self.bucket, _, prefix = settings.recordings_url.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/")
        secret = settings.aws_secret_access_key
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=str(settings.s3_endpoint_url) if settings.s3_endpoint_url else None,
            region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
        )

    def key(self, name: str) -> str:
        """The object key of a recording's file name."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def location(self, key: str) -> str:
        """The `s3://` URL of an object key."""
        return f"s3://{self.bucket}/{key}"

    def key_of(self, location: str) -> str | None:
        """The key of a location in this bucket, else None."""
        head = f"s3://{self.bucket}/"
        return location.removeprefix(head) if location.startswith(head) else None

    async def keep(self, path: Path) -> str:
        """Upload the file (multipart when large), then remove the spool."""
        key = self.key(path.name)
        await asyncio.to_thread(
            self.client.upload_file, str(path), self.bucket, key, {"ContentType": "audio/wav"}
        )
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return self.location(key)

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes `first` to `last` (inclusive) of the object, in chunks."""
        answer = await asyncio.to_thread(
            self.client.get_object, Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}"
        )
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete_before(self, cutoff: datetime) -> list[str]:
        spooled = await super().delete_before(cutoff)

        def sweep() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
            )
            old = [
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["Key"].endswith(".wav") and item["LastModified"] < cutoff
            ]
            for at in range(0, len(old), 1000):  # S3 deletes at most 1,000 keys a request
                batch = [{"Key": key} for key in old[at : at + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            return [key.rsplit("/", 1)[-1].removesuffix(".wav") for key in old]

        return spooled + await asyncio.to_thread(sweep)


def store_for(settings: Settings) -> LocalStore:
    """The store `RECORDINGS_URL` names: S3, or else the local folder."""
    if settings.recordings_url:
        return S3Store(settings)
    return LocalStore(settings.recordings_dir)
