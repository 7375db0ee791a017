"""The recording settings, mixed into `settings.Settings` (one class, read and validated there).

Their own module because `settings.py` is at its size limit; this imports
nothing of the project's, so `settings` may import it without a cycle.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, BeforeValidator, Field, SecretStr

DEFAULT_RECORDING_NOTICE = "This call may be recorded."
# s3://bucket or s3://bucket/prefix, with a bucket name as S3 allows it.
S3_URL = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


def _none_if_empty(value: object) -> object:
    # `.env.example` copies leave `KEY=` lines; an empty value means "not set".
    return None if value == "" else value


empty_is_none = BeforeValidator(_none_if_empty)


class RecordingMode(StrEnum):
    """Who records calls: nobody, this server (a stereo WAV), or Twilio."""

    OFF = "off"
    LOCAL = "local"
    TWILIO = "twilio"


class RecordingSettings(BaseModel):
    """Recording: what is recorded, where it is kept, for how long, and what callers are told.

    Attributes:
        recording: `off`, `local` (this server writes a stereo WAV) or `twilio`
            (Twilio records, dual-channel).
        recording_notice: Said before the greeting whenever a call is recorded; empty for none.
        recordings_dir: Where local recordings are written (the spool, with `recordings_url`).
        recordings_url: `s3://bucket/prefix`: keep local recordings in S3-compatible storage.
        s3_endpoint_url: The S3 API's URL for MinIO and other S3-compatible stores.
        aws_region: The bucket's region (signatures depend on it).
        aws_access_key_id: S3 credentials; unset, boto3 looks where it always does.
        aws_secret_access_key: The secret of that key.
        recording_retention_days: Delete recordings older than this; unset keeps them.
    """

    recording: RecordingMode = RecordingMode.OFF
    recording_notice: str = DEFAULT_RECORDING_NOTICE
    recordings_dir: Path = Path("data/recordings")
    recordings_url: Annotated[str | None, empty_is_none] = Field(None, pattern=S3_URL)
    s3_endpoint_url: Annotated[AnyHttpUrl | None, empty_is_none] = None
    aws_region: str = "us-east-1"
    aws_access_key_id: Annotated[str | None, empty_is_none] = None
    aws_secret_access_key: Annotated[SecretStr | None, empty_is_none] = None
    recording_retention_days: Annotated[int | None, empty_is_none] = Field(None, ge=1)

    def records(self, provider: str) -> bool:
        """Whether a call from `provider` is recorded (it then hears the notice first)."""
        if self.recording is RecordingMode.TWILIO:
            return provider == "twilio"  # Twilio records only its own calls
        return self.recording is RecordingMode.LOCAL
