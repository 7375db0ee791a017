"""`EventSender`: delivers the outbox's events to the operator's webhook, durably.

One sender runs in each replica, on tasks of its own, never in a call's
pipeline. It wakes when this replica writes events, and polls every second
for the rest (retries, other replicas' events, events left by a crash). Each
event is POSTed signed (Standard Webhooks; the `webhook-id` is the same on
every attempt, for the receiver's deduplication) and is:

    delivered   on a 2xx
    retried     on a timeout, no connection, 408, 429 or 5xx: after 1 s, 2 s, 4 s, …
                (at most an hour apart), for `RETRY_FOR` (over 24 h), then given up
    retried     a few times on another 4xx, then given up (`CLIENT_ERROR_ATTEMPTS`)
    given up    with every other pending event to its URL on 410 Gone, and events
                to that URL are dropped until the server restarts

Delivery is at least once: an event whose delivery was cut short by a crash
is sent again once its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import DBAPIError

from records.models import Event
from records.outbox import Outbox
from settings import Settings
from tools.guard import http_session, literal_host_refusal
from tools.signing import Signer

BATCH = 20
POLL_SECS = 1.0
DELIVERY_TIMEOUT = 10.0
LEASE_SECS = DELIVERY_TIMEOUT + 20.0
FIRST_RETRY_SECS = 1.0
MAX_RETRY_SECS = 3600.0
RETRY_FOR = timedelta(hours=25)
CLIENT_ERROR_ATTEMPTS = 5
RETRIED_STATUSES = frozenset({408, 425, 429})
KEEP_DELIVERED = timedelta(days=7)
PENDING_REFRESH_SECS = 5.0
FLUSH_SECS = 3.0


def backoff(attempts: int) -> float:
    """Seconds before the next try, after `attempts` failed ones (from 1): doubling, jittered."""
    pause = min(FIRST_RETRY_SECS * 2 ** (attempts - 1), MAX_RETRY_SECS)
    return float(pause * random.uniform(0.9, 1.1))


class EventMetrics:
    """`switchboard_events_pending` and `switchboard_event_deliveries_total{outcome}`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "switchboard_events_pending",
            "Events in the outbox waiting for delivery",
            registry=registry,
        )
        self.deliveries = Counter(
            "switchboard_event_deliveries",
            "Event delivery attempts by outcome: delivered, retry, gave_up, gone",
            ["outcome"],
            registry=registry,
        )


class EventSender:
    """Delivers outbox events to their webhooks, in the background."""

    def __init__(self, outbox: Outbox, settings: Settings, metrics: EventMetrics) -> None:
        """Deliver from `outbox`, signing with `WEBHOOK_SECRET`."""
        self._outbox = outbox
        self._metrics = metrics
        self._trusted = str(settings.events_url) if settings.events_url else None
        self._allow_private = settings.tools_allow_private
        secret = settings.webhook_secret
        self._signer = Signer(secret.get_secret_value()) if secret is not None else None
        self._wakeup = asyncio.Event()
        self._gone: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._pending_at = 0.0
        self._purged_at = 0.0

    def wake(self) -> None:
        """Events were written: look now."""
        self._wakeup.set()

    def start(self) -> None:
        """Start delivering in the background."""
        self._task = asyncio.create_task(self._run(), name="event-sender")

    async def stop(self) -> None:
        """Stop; what is due now gets a last, short chance to go out."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            async with asyncio.timeout(FLUSH_SECS):
                await self.deliver_due()
        except (TimeoutError, DBAPIError, OSError):
            pass  # left in the outbox for the next start
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                if await self.deliver_due() == BATCH:
                    continue  # more are due
                await self._housekeeping()
            except (DBAPIError, OSError) as e:
                logger.warning(f"Events: the outbox is out of reach: {e}")
            except Exception:
                logger.exception("Events: the sender failed; it goes on")
            # asyncio.timeout, not wait_for: no task of its own for each poll.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECS):
                    await self._wakeup.wait()

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._pending_at >= PENDING_REFRESH_SECS:
            self._pending_at = now
            self._metrics.pending.set(await self._outbox.pending())
        if now - self._purged_at >= 3600:
            self._purged_at = now
            await self._outbox.purge(KEEP_DELIVERED)

    async def deliver_due(self) -> int:
        """Deliver the events due now (one batch); how many were taken."""
        events = await self._outbox.claim(BATCH, LEASE_SECS)
        if events:
            await asyncio.gather(*(self._deliver(event) for event in events))
        return len(events)

    def _session(self, url: str) -> aiohttp.ClientSession:
        # EVENTS_URL is the operator's own setting; an assistant's URL gets the SSRF guard.
        guarded = url != self._trusted and not self._allow_private
        session = self._sessions.get(guarded)
        if session is None:
            session = self._sessions[guarded] = http_session(allow_private=not guarded)
        return session

    async def _deliver(self, event: Event) -> None:
        if event.url in self._gone:
            await self._outbox.give_up(event, "the receiver said it is gone (410)")
            self._metrics.deliveries.labels(outcome="gone").inc()
            return
        if self._signer is None:
            await self._outbox.retry(event, MAX_RETRY_SECS, "no WEBHOOK_SECRET to sign with")
            return
        guarded = event.url != self._trusted and not self._allow_private
        if guarded and (refusal := literal_host_refusal(event.url)):
            await self._outbox.give_up(event, f"{refusal} (TOOLS_ALLOW_PRIVATE is off)")
            self._metrics.deliveries.labels(outcome="gave_up").inc()
            return
        status, error = await self._post(event)
        if status is not None and 200 <= status < 300:
            await self._outbox.delivered(event)
            self._metrics.deliveries.labels(outcome="delivered").inc()
        elif status == 410:
            self._gone.add(event.url)
            dropped = await self._outbox.give_up_on(event.url, "the receiver is gone (410)")
            logger.error(f"Events: {event.url} answered 410 Gone: {dropped} event(s) dropped")
            self._metrics.deliveries.labels(outcome="gone").inc()
        else:
            await self._failed(event, status, error or f"HTTP {status}")

    async def _post(self, event: Event) -> tuple[int | None, str | None]:
        assert self._signer is not None
        headers = self._signer.headers(event.event_id, event.payload)
        try:
            async with (
                asyncio.timeout(DELIVERY_TIMEOUT),
                self._session(event.url).post(
                    event.url, data=event.payload.encode(), headers=headers
                ) as response,
            ):
                await response.read()
                return response.status, None
        except TimeoutError:
            return None, f"no answer within {DELIVERY_TIMEOUT:g} s"
        except (aiohttp.ClientError, OSError) as e:
            return None, f"cannot connect: {e}"

    async def _failed(self, event: Event, status: int | None, error: str) -> None:
        attempts = event.attempts + 1
        permanent = status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES
        too_old = datetime.now(UTC) - event.created_at > RETRY_FOR
        if too_old or (permanent and attempts >= CLIENT_ERROR_ATTEMPTS):
            logger.error(f"Events: gave up on {event.type} {event.event_id} ({attempts}): {error}")
            await self._outbox.give_up(event, error)
            self._metrics.deliveries.labels(outcome="gave_up").inc()
            return
        await self._outbox.retry(event, backoff(attempts), error)
        self._metrics.deliveries.labels(outcome="retry").inc()
