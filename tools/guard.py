"""The server-side request forgery guard: URLs from the assistants file reach public hosts only.

Whoever writes the assistants file chooses where this server sends requests.
Without a guard, a tool URL like `http://169.254.169.254/…` or
`http://localhost:5432/` would turn the bot into a probe of the server's own
network. Loopback, private, link-local, shared, multicast and reserved
addresses are refused unless `TOOLS_ALLOW_PRIVATE=true`:

- at start-up, for a URL whose host is such an address, or `localhost`;
- at each request, for a host name that resolves to one: the connection only
  ever goes to the addresses this resolver checked (no DNS rebinding).

    PrivateAddressRefused   a host that is, or resolves to, a non-public address
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class PrivateAddressRefused(OSError):
    """The URL's host is, or resolves to, an address this server may not call."""


def is_public_address(address: str) -> bool:
    """Whether `address` (an IP) is on the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_host_refusal(url: str) -> str | None:
    """Why `url` may not be called, when its host alone says so (an IP or `localhost`)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine"
    try:
        public = is_public_address(host)
    except ValueError:
        return None  # a host name: checked when it resolves
    return None if public else f"{host} is not a public address"


class PublicOnlyResolver(AbstractResolver):
    """Resolves host names, keeping only public addresses."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's public addresses.

        Raises:
            PrivateAddressRefused: It has none.
        """
        found = await self._resolver.resolve(host, port, family)
        public = [result for result in found if is_public_address(result["host"])]
        if not public:
            raise PrivateAddressRefused(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        """Release the resolver."""
        await self._resolver.close()


def http_session(*, allow_private: bool, timeout: float | None = None) -> ClientSession:
    """An HTTP client session; unless `allow_private`, one that reaches public hosts only.

    IP literals skip resolvers, so callers also check `literal_host_refusal` per URL.
    """
    connector = TCPConnector(
        resolver=None if allow_private else PublicOnlyResolver(), limit=100, ttl_dns_cache=60
    )
    return ClientSession(
        connector=connector,
        timeout=ClientTimeout(total=timeout),
        raise_for_status=False,
        auto_decompress=True,
    )
