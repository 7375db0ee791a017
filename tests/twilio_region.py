"""Twilio's regional REST host, on loopback: what lets a test see the host a server talks to.

A server set with `TWILIO_REGION=ie1` and `TWILIO_EDGE=dublin` builds
`https://api.dublin.ie1.twilio.com/...` itself. For the test, that name must
lead to the fake Twilio, over TLS:

- `RegionalHost` serves HTTPS with a certificate for the name, from a CA made for
  the test (trustme), records the name each request was sent to (TLS SNI and
  `Host`), and passes the request on to the fake Twilio;
- the server process trusts that CA (`SSL_CERT_FILE`) and resolves the name to
  the front's address through `resolve_hook`: a `sitecustomize` on its
  `PYTHONPATH` that gives aiohttp a resolver with the name in it, as a hosts
  file would. Nothing else about the request changes.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any

import aiohttp
import trustme
from aiohttp import web

from tests.loopback import LoopbackServer

SITECUSTOMIZE = '''
"""Test-only: resolve the names in SWITCHBOARD_TEST_HOSTS (name=ip:port,...) for aiohttp."""
import os
import socket

_HOSTS = dict(i.split("=", 1) for i in os.environ.get("SWITCHBOARD_TEST_HOSTS", "").split(",") if i)
if _HOSTS:
    from aiohttp import connector, resolver

    class _HostsFile(resolver.ThreadedResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            if host not in _HOSTS:
                return await super().resolve(host, port, family)
            ip, _, to_port = _HOSTS[host].rpartition(":")
            return [{"hostname": host, "host": ip, "port": int(to_port),
                     "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]

    resolver.DefaultResolver = connector.DefaultResolver = _HostsFile
'''


def _note_server_name(ssl_object: Any, server_name: str | None, _context: Any) -> None:
    # The name the client asked for in its TLS hello (SNI), kept for the request handler.
    ssl_object.sent_server_name = server_name or ""


class RegionalHost(LoopbackServer):
    """HTTPS for `name` on a loopback port, passing every request on to `upstream`.

    Attributes:
        seen: (TLS server name, Host header, method, path) of each request, in order.
    """

    name = "regional-host"

    def __init__(self, host_name: str, upstream: str, workdir: Path) -> None:
        super().__init__()
        self.host_name = host_name
        self.upstream = upstream
        self.seen: list[tuple[str, str, str, str]] = []
        self._lock = threading.Lock()
        self._ca = trustme.CA()
        self.ca_file = workdir / "test-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(host_name).configure_cert(self._context)
        self._context.sni_callback = _note_server_name
        self.ssl_context = self._context

    def start(self) -> RegionalHost:
        super().start()
        self.port = int(self.base_url.rsplit(":", 1)[1])
        return self

    def server_environment(self, workdir: Path) -> dict[str, str]:
        """What a server process needs to reach this host by its name and trust it."""
        hooks = workdir / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
        return {
            "PYTHONPATH": str(hooks),
            "SSL_CERT_FILE": str(self.ca_file),
            "SWITCHBOARD_TEST_HOSTS": f"{self.host_name}=127.0.0.1:{self.port}",
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        server_name = getattr(ssl_object, "sent_server_name", "")
        with self._lock:
            self.seen.append((server_name, request.host, request.method, request.path))
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "range")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                f"{self.upstream}{request.path_qs}",
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            body = await answer.read()
            passed = {k: v for k, v in answer.headers.items() if k.lower() == "content-range"}
            return web.Response(
                body=body,
                status=answer.status,
                content_type=answer.content_type,
                headers=passed,
            )
