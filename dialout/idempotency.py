"""Placing a dial-out at most once: the attempt on record first, and its answer kept for its key.

    1. the provider's request is built (a bad request is refused: nothing is recorded)
    2. the attempt is recorded, `placing`, with its `Idempotency-Key`
         the database cannot be written    → 503, nothing placed
         the key was answered (24 h)       → that answer again, nothing placed
         the key is still being placed     → 409, nothing placed
         the key came with another request → 422
    3. the provider is asked
    4. the answer is recorded with the attempt: the call's SID and status; `unknown`
       after a timeout or a dropped connection (the call may exist, and the
       provider's status callbacks, whose URL names the attempt, will tell);
       `failed` for a refusal. A refusal that says "try again later" (unreachable,
       rate-limited) frees the key instead, so the retry places the call.
    5. a database error in 4 is retried in the background: a placed call is still
       answered 201, never a 5xx that would make the caller place it again.

Concurrent requests with one key cannot both place: the key is unique in the
database, so the second one's record is refused and it is answered 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy.exc import DBAPIError

from dialout.placers import PreparedCall
from dialout.placing import CallNotPlaced
from dialout.request import DialoutAnswer, DialoutRequest
from ops.metrics import Metrics
from records.attempts import Attempt, AttemptStore
from records.models import NOT_PLACED, UNKNOWN, Call

# A write of an attempt's outcome that fails is tried again after these pauses (~4 min in all).
SETTLE_RETRY_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
IN_FLIGHT_RETRY_SECS = 1
RECORDS_DOWN_RETRY_SECS = 10

StatusUrl = Callable[[str], str]


@dataclass(frozen=True)
class Answer:
    """An answer to `POST /dialout`, as given and as kept for its `Idempotency-Key`."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        """The HTTP response."""
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)

    def kept(self) -> dict[str, Any]:
        """What the record keeps."""
        return {"status": self.status, "body": self.body, "headers": self.headers}

    @classmethod
    def of(cls, kept: dict[str, Any]) -> Answer:
        """The answer a record kept."""
        return cls(int(kept["status"]), dict(kept["body"]), dict(kept.get("headers") or {}))


def request_hash(body: DialoutRequest) -> str:
    """A hash of what a request asks for, to tell a key reused for another request."""
    canonical = json.dumps(body.model_dump(by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class OncePlacer:
    """Places dial-outs at most once per `Idempotency-Key`, each on record before it is placed."""

    def __init__(self, attempts: AttemptStore, metrics: Metrics) -> None:
        """Record attempts in `attempts`; count the results in `metrics`."""
        self._attempts = attempts
        self._metrics = metrics
        self._retries: set[asyncio.Task[None]] = set()

    async def place(
        self,
        provider: str,
        body: DialoutRequest,
        call: PreparedCall,
        attempt: Attempt,
        status_url: StatusUrl,
    ) -> JSONResponse:
        """Record the attempt, place the call, record the outcome; the answer to give.

        Args:
            provider: Who places the call.
            body: The request.
            call: The provider's request, built for `attempt`.
            attempt: The attempt, with its key.
            status_url: The path of a call's record, for a SID or an attempt id.
        """
        try:
            earlier = await self._attempts.begin(attempt)
        except (DBAPIError, OSError) as e:
            logger.error(
                f"Dial-out not placed: the call records cannot be written ({type(e).__name__})"
            )
            return Answer(
                503,
                {"detail": "The call records cannot be written: no call was placed"},
                {"Retry-After": str(RECORDS_DOWN_RETRY_SECS)},
            ).response()
        if earlier is not None:
            return self._again(earlier, attempt, status_url).response()
        try:
            placed = await call.send()
        except CallNotPlaced as e:
            return (await self._not_placed(provider, e, attempt, status_url)).response()
        self._metrics.dialout_placed(provider)
        logger.info(f"Dial-out placed: call {placed.call_sid} ({placed.status})")
        url = status_url(placed.call_sid)
        answer = Answer(
            201,
            DialoutAnswer(
                call_sid=placed.call_sid,
                status=placed.status,
                to=body.to,
                from_=placed.from_number,
                status_url=url,
            ).model_dump(by_alias=True),
            {"Location": url},
        )
        await self._patiently(
            attempt.attempt_id,
            lambda: self._attempts.settle(
                attempt.attempt_id,
                status=placed.status,
                answer=answer.kept(),
                call_sid=placed.call_sid,
            ),
        )
        return answer.response()

    async def _not_placed(
        self, provider: str, e: CallNotPlaced, attempt: Attempt, status_url: StatusUrl
    ) -> Answer:
        self._metrics.dialout_failed(provider, e.twilio_code or e.fields.get("exotel_status"))
        body: dict[str, Any] = {"detail": e.detail, **e.fields}
        headers = {} if e.retry_after is None else {"Retry-After": str(e.retry_after)}
        attempt_id = attempt.attempt_id
        if e.maybe_placed:
            body |= {"attempt_id": attempt_id, "status_url": status_url(attempt_id)}
            answer = Answer(e.status, body, headers)
            logger.warning(f"Dial-out {attempt_id}: the call may exist; on record as unknown")
            await self._patiently(
                attempt_id,
                lambda: self._attempts.settle(attempt_id, status=UNKNOWN, answer=answer.kept()),
            )
            return answer
        answer = Answer(e.status, body, headers)
        if e.retry_after is not None:  # nothing placed, and trying again may work: free the key
            await self._patiently(attempt_id, lambda: self._attempts.release(attempt_id))
        else:
            await self._patiently(
                attempt_id,
                lambda: self._attempts.settle(
                    attempt_id, status="failed", answer=answer.kept(), end_reason=NOT_PLACED
                ),
            )
        return answer

    def _again(self, earlier: Call, attempt: Attempt, status_url: StatusUrl) -> Answer:
        if earlier.request_hash != attempt.request_hash:
            return Answer(
                422,
                {"detail": "This Idempotency-Key was used for another request in the last 24 h"},
            )
        if earlier.answer is not None:
            logger.info(f"Dial-out {earlier.attempt_id} answered again for its Idempotency-Key")
            return Answer.of(earlier.answer)
        return Answer(
            409,
            {
                "detail": "A request with this Idempotency-Key is being placed",
                "status_url": status_url(earlier.attempt_id or earlier.sid),
            },
            {"Retry-After": str(IN_FLIGHT_RETRY_SECS)},
        )

    async def _patiently(self, attempt_id: str, write: Callable[[], Awaitable[None]]) -> None:
        """Write now; if the database fails, keep trying in the background and return."""
        try:
            await write()
        except (DBAPIError, OSError) as e:
            logger.error(
                f"Dial-out {attempt_id}: its record could not be updated ({type(e).__name__}); "
                "trying again in the background"
            )
            task = asyncio.create_task(self._retry(attempt_id, write))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _retry(self, attempt_id: str, write: Callable[[], Awaitable[None]]) -> None:
        last = ""
        for pause in SETTLE_RETRY_PAUSES:
            await asyncio.sleep(pause)
            try:
                await write()
            except (DBAPIError, OSError) as e:
                last = type(e).__name__
                continue
            logger.info(f"Dial-out {attempt_id}: its record is updated")
            return
        logger.error(f"Dial-out {attempt_id}: its record could not be updated ({last}): given up")
