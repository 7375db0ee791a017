"""Helpers for the operations tests: scraping `/metrics`, waiting for server state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conversation import QUIET as QUIET  # the operations tests wait out the bot with it

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(base_url: str) -> Samples:
    """`GET /metrics`, parsed by prometheus-client: value by (sample name, labels)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/metrics")
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (nothing counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def readiness(base_url: str) -> tuple[int, dict[str, Any]]:
    """`GET /readyz`: status code and JSON body."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/readyz")
    return response.status_code, response.json()


async def eventually(
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout: float = 30,  # noqa: ASYNC109
) -> None:
    """Wait until `check()` is true; fail the test with `what` if it never is."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
