"""An S3-compatible object store for tests: moto's server, in a process of its own on 127.0.0.1.

Object storage is a paid outside service, so tests use moto's. It is run with
authentication on: after the three unsigned requests that create an IAM user,
its key and its policy, every request must be signed with that key (a wrong
secret gets `SignatureDoesNotMatch`), as with S3 or MinIO.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import boto3

from tests.lifecycle import Service, came_up, stop_process
from tests.server_thread import free_port

REGION = "us-east-1"
# moto allows this many requests unsigned before it checks every signature.
SETUP_REQUESTS = 3


@dataclass(frozen=True)
class S3Account:
    """A bucket and the credentials that may use it."""

    endpoint: str
    bucket: str
    key_id: str
    secret: str

    def settings(self, prefix: str = "calls") -> dict[str, str]:
        """Switchboard's settings to keep recordings here, under `prefix`."""
        return {
            "recordings_url": f"s3://{self.bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint,
            "aws_region": REGION,
            "aws_access_key_id": self.key_id,
            "aws_secret_access_key": self.secret,
        }

    def client(self) -> Any:
        """A boto3 S3 client with these credentials, to look at what the server stored."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


class S3Server(Service):
    """`python -m moto.server` on a free loopback port, with signatures checked."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"moto-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not came_up(self._process, self._serving, within=60, poll=0.2):
            self.stop()
            raise RuntimeError(f"moto did not start:\n{self.log_path.read_text()[-2000:]}")
        return self

    def _serving(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False
        return True

    def account(self, bucket: str = "switchboard-recordings") -> S3Account:
        """An IAM user allowed everything on S3, and a bucket (the only unsigned requests)."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="switchboard")
        key = iam.create_access_key(UserName="switchboard")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="switchboard", PolicyName="s3", PolicyDocument=json.dumps(policy)
        )
        account = S3Account(self.endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
        account.client().create_bucket(Bucket=bucket)
        return account

    def stop(self) -> None:
        stop_process(self._process, signal.SIGTERM)
