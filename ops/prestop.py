"""Kubernetes' preStop hook: stop getting calls, drain, and wait for the pod's calls to end.

    python -m ops.prestop          # deploy/k8s/base/deployment.yaml, lifecycle.preStop

1. Wait `--delay` seconds (5) while Kubernetes takes the terminating pod out of
   the Service and the Ingress stops sending it calls; calls that still arrive
   meanwhile are taken, not refused.
2. Send SIGTERM to the server (PID 1 in the container): it drains, as on any
   SIGTERM (ops/drain.py; with several workers, all of them).
3. Wait until the pod holds no call (`/readyz`, the machine's total), at most
   DRAIN_TIMEOUT plus the goodbye and the shutdown; then return.

The kubelet sends its own SIGTERM once the hook returns: the server has then
drained (a second signal finds no call to drop) or exited. Hence the pod's
`terminationGracePeriodSeconds` of DRAIN_TIMEOUT + 45 s: 5 s here, then the
drain, the goodbye (30 s) and the shutdown (10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from pydantic import ValidationError

from settings import Settings

DELAY_SECS = 5.0
# After DRAIN_TIMEOUT: the goodbye to calls still up, and uvicorn's shutdown (ops/drain.py).
AFTER_DRAIN_SECS = 40.0
POLL_SECS = 0.5


def calls_left(url: str) -> int | None:
    """The calls the server still holds while it drains; None once it no longer answers."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:  # 503 while draining, with the same body
        body = json.loads(e.read())
    except (OSError, ValueError):
        return None
    return int(body["calls"]) if body.get("draining") else -1


def main(argv: list[str] | None = None) -> int:
    """Run the hook; always 0 (a failed hook would only delay the pod's end)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=1, help="the server's process (1)")
    parser.add_argument("--delay", type=float, default=DELAY_SECS)
    parser.add_argument("--url", help="the server, by default http://127.0.0.1:PORT")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        port, drain_timeout = settings.port, settings.drain_timeout
    except ValidationError:
        port, drain_timeout = 8000, 300.0
    url = args.url or f"http://127.0.0.1:{port}"

    time.sleep(args.delay)
    try:
        os.kill(args.pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    print(f"prestop: draining; waiting for the calls to end ({url})", file=sys.stderr)
    deadline = time.monotonic() + drain_timeout + AFTER_DRAIN_SECS
    while time.monotonic() < deadline:
        left = calls_left(url)
        if left is None or left == 0:
            return 0
        time.sleep(POLL_SECS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
