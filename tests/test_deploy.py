"""What deploys Switchboard: Kubernetes' preStop hook on a real server, and grace periods.

`make lint` renders and validates the manifests (scripts/lint-deploy.sh); these
tests check what a schema cannot: that the hook drains the server and waits for
its calls, and that every grace period outlasts the drain it must cover.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ops.drain import GOODBYE_TIMEOUT_SECS, SHUTDOWN_TIMEOUT_SECS
from ops.prestop import DELAY_SECS
from simulator import SimulatedCall
from tests.ops_helpers import eventually, readiness
from tests.server_process import ROOT, ServerProcess

K8S_BASE = ROOT / "deploy" / "k8s" / "base"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
# What a grace period must cover after DRAIN_TIMEOUT: the preStop's wait, the
# goodbye to calls still up, uvicorn's shutdown.
AFTER_DRAIN = DELAY_SECS + GOODBYE_TIMEOUT_SECS + SHUTDOWN_TIMEOUT_SECS


def _prestop(server: ServerProcess) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "ops.prestop", "--pid", str(server.pid), "--delay", "1"]
    return subprocess.Popen([*command, "--url", server.url], cwd=ROOT)


async def test_the_prestop_hook_drains_the_pod_and_waits_for_its_calls(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, WORKERS="2", DRAIN_TIMEOUT="300") as server:
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await call.wait_for_bot_audio(timeout=60)
            hook = await asyncio.to_thread(_prestop, server)
            try:
                status, _ = await readiness(server.url)
                assert status == 200  # the delay: calls still come in
                await eventually(lambda: _draining(server.url), "the pod drains")
                await asyncio.sleep(2)
                assert hook.poll() is None, "the hook returned while a call was up"
                assert call.close_code is None, "the live call was cut"
            finally:
                await call.hang_up()
            assert await asyncio.to_thread(hook.wait, 30) == 0
        assert await asyncio.to_thread(server.wait, 30) == 0


async def _draining(url: str) -> bool:
    status, body = await readiness(url)
    return status == 503 and body["draining"] is True


def _drain_timeout() -> float:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    [settings] = kustomization["configMapGenerator"]
    literals = dict(item.split("=", 1) for item in settings["literals"])
    return float(literals["DRAIN_TIMEOUT"])


def test_the_pods_grace_period_covers_the_drain() -> None:
    deployment = yaml.safe_load((K8S_BASE / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= _drain_timeout() + AFTER_DRAIN
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["python", "-m", "ops.prestop"]


def go_duration_secs(text: str) -> float:
    """Seconds in a Go duration as Compose reads it ("300s45s" adds up to 345)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"not a Go duration: {text}"
    return sum(float(n) * units[u] for n, u in parts)


def test_composes_grace_period_follows_drain_timeout() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["switchboard-1"]
    written = service["stop_grace_period"]
    for drain_timeout in ("300", "1200"):
        interpolated = re.sub(r"\$\{DRAIN_TIMEOUT:-\d+\}", drain_timeout, written)
        assert go_duration_secs(interpolated) >= float(drain_timeout) + AFTER_DRAIN
    assert service["environment"]["DRAIN_TIMEOUT"] == "${DRAIN_TIMEOUT:-300}"
