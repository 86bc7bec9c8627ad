"""``IceClient``: the six ICE calls icehook makes, signed, retried and rate limited.

Requests are RPC style (``POST /`` with ``Action`` in ``x-acs-action`` for V3, in the query
for V2), with every parameter in the query string except ``Timeline``, which goes in a
form body, as the official SDK does. Every failure becomes an ``IceError``; "no such job"
is ``IceJobNotFound``.

Retries: a failure that proves ICE did nothing (``Throttling*``, a refused connection) is
retried for every call. A failure that leaves the outcome unknown (a timeout, a dropped
connection, ``InternalError``, ``ServiceUnavailable``, any 5xx) is retried only for reads.
A submit is never repeated here: what ICE does with a repeated ``ClientToken`` is not
documented (the original job, an error, or a second job: docs/ice.md), so the caller
first looks for the job ICE may have made (``flows.submit``). Other 4xx answers are never
retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx
from opentelemetry.trace import Span, Tracer

from app import outbound
from app.core.answers import Answer, BatchJob, MediaProducingJob, Page, SubmittedJob, text_field
from app.core.errors import IceError, IceJobNotFound
from app.core.parsing import loads, natural
from app.core.policies import MAX_RETRY_WAIT_SECONDS, backoff, retryable
from app.core.statuses import JobKind
from app.core.submissions import FORM_PARAMETERS, oversized
from app.ice import signing
from app.ice.credentials import Credential, Credentials, credentials_for
from app.settings import Settings
from app.telemetry import metrics, tracing

logger = logging.getLogger(__name__)

API_VERSION = "2020-11-09"
LIST_SPAN = timedelta(days=29)  # ICE refuses List windows longer than 30 days
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # of one ICE answer; a longer one is not read

Sleep = Callable[[float], Awaitable[None]]
SUBMIT_ACTIONS = frozenset({"SubmitMediaProducingJob", "SubmitSceneBatchEditingJob"})
SPAN_ATTRIBUTES = {"rpc.system": "alibaba_cloud", "rpc.service": "ICE"}  # of every call's span


class Pace(Protocol):
    """Something that says when the next call may go."""

    async def wait(self) -> None: ...


class RateLimiter:
    """Spaces calls at most ``rate`` per second (one process; ICE counts per account)."""

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep: Sleep
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    async def wait(self) -> None:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


class IceClient:
    """ICE over one shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        submit_pace: Pace | None = None,
        read_pace: Pace | None = None,
        credentials: Credentials | None = None,
        tracer: Tracer = tracing.NO_TRACER,
    ) -> None:
        self._http = http
        self._tracer = tracer
        self._settings = settings
        self._endpoint = settings.ice_endpoint
        self._host = urlsplit(settings.ice_endpoint).netloc
        self._credentials = credentials or credentials_for(settings)
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        # ICE's limits are per account: with several processes, the caller passes paces
        # they share (flows.budget); alone, each process paces itself.
        self._submits = submit_pace or RateLimiter(
            settings.ice_submit_qps, clock=clock, sleep=sleep
        )
        self._reads = read_pace or RateLimiter(settings.ice_read_qps, clock=clock, sleep=sleep)

    # -- the six calls ------------------------------------------------------------------

    async def submit_media_producing_job(self, parameters: Mapping[str, str]) -> SubmittedJob:
        """``parameters`` are ICE's, as strings (JSON values already encoded). Never repeated
        after an unknown outcome (see the module's docstring)."""
        body = await self.call("SubmitMediaProducingJob", parameters, idempotent=False)
        return SubmittedJob(
            job_id=str(body["JobId"]),
            request_id=str(body.get("RequestId", "")),
            project_id=text_field(body, "ProjectId"),
            media_id=text_field(body, "MediaId"),
        )

    async def submit_scene_batch_editing_job(self, parameters: Mapping[str, str]) -> SubmittedJob:
        """Never repeated after an unknown outcome (it takes no ``ClientToken`` at all)."""
        body = await self.call("SubmitSceneBatchEditingJob", parameters, idempotent=False)
        return SubmittedJob(job_id=str(body["JobId"]), request_id=str(body.get("RequestId", "")))

    async def get_media_producing_job(self, job_id: str) -> MediaProducingJob:
        body = await self._get("GetMediaProducingJob", job_id)
        return MediaProducingJob.parse(body["MediaProducingJob"])

    async def get_batch_media_producing_job(self, job_id: str) -> BatchJob:
        body = await self._get("GetBatchMediaProducingJob", job_id)
        return BatchJob.parse(body["EditingBatchJob"])

    async def list_media_producing_jobs(
        self, filters: Mapping[str, str], next_token: str | None = None, max_results: int = 100
    ) -> Page[MediaProducingJob]:
        """One page; ``filters`` are ICE's (``StartTime``, ``EndTime``, ``Status``, ...)."""
        body = await self.call(
            "ListMediaProducingJobs", _page(filters, next_token, max_results), idempotent=True
        )
        items = body.get("MediaProducingJobList") or ()
        return Page(tuple(MediaProducingJob.parse(i) for i in items), body.get("NextToken") or None)

    async def list_batch_media_producing_jobs(
        self, filters: Mapping[str, str], next_token: str | None = None, max_results: int = 100
    ) -> Page[BatchJob]:
        body = await self.call(
            "ListBatchMediaProducingJobs", _page(filters, next_token, max_results), idempotent=True
        )
        items = body.get("EditingBatchJobList") or ()
        return Page(tuple(BatchJob.parse(i) for i in items), body.get("NextToken") or None)

    async def listed(
        self,
        kind: JobKind,
        start: datetime,
        end: datetime,
        *,
        before_each: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[Answer, None]:
        """Every job (or scene batch, by ``kind``) ICE lists as created from ``start`` to
        ``end``: in windows of at most ``LIST_SPAN`` (ICE refuses longer ones), each paged
        until ICE gives no ``NextToken`` or an empty page (docs/ice.md, Listing).
        ``before_each`` is awaited before every call (a budget)."""
        while start < end:
            window_end = min(end, start + LIST_SPAN)
            filters = {"StartTime": ice_time(start), "EndTime": ice_time(window_end)}
            token: str | None = None
            while True:
                if before_each is not None:
                    await before_each()
                page: Page[MediaProducingJob] | Page[BatchJob]
                if kind == JobKind.BATCH:
                    page = await self.list_batch_media_producing_jobs(filters, token)
                else:
                    page = await self.list_media_producing_jobs(filters, token)
                for item in page.items:
                    yield item
                token = page.next_token
                if not token or not page.items:
                    break
            start = window_end

    async def _get(self, action: str, job_id: str) -> dict[str, Any]:
        try:
            return await self.call(action, {"JobId": job_id}, idempotent=True)
        except IceError as exc:
            # ICE answers JobNotFound (404) for an unknown id and InvalidParameter (400) for
            # a malformed one: both mean there is no such job.
            if exc.code in ("JobNotFound", "InvalidParameter"):
                raise IceJobNotFound(exc.status, exc.code, exc.message, exc.request_id) from None
            raise

    # -- transport ---------------------------------------------------------------------

    async def call(
        self, action: str, parameters: Mapping[str, str], *, idempotent: bool
    ) -> dict[str, Any]:
        """Call ``action``, retrying what is safe to retry (see the module docstring), in a
        span that shows each attempt's request and each retry."""
        with tracing.continuing(
            self._tracer, f"ICE {action}", attributes={**SPAN_ATTRIBUTES, "rpc.method": action}
        ) as span:
            answer = await self._call(action, parameters, idempotent, span)
            span.set_attribute("icehook.ice.request_id", str(answer.get("RequestId", "")))
            return answer

    async def _call(
        self, action: str, parameters: Mapping[str, str], idempotent: bool, span: Span
    ) -> dict[str, Any]:
        query = {k: v for k, v in parameters.items() if k not in FORM_PARAMETERS}
        form = {k: v for k, v in parameters.items() if k in FORM_PARAMETERS}
        attempts = self._settings.ice_max_attempts
        pace = self._submits if action in SUBMIT_ACTIONS else self._reads
        for attempt in range(1, attempts + 1):
            await pace.wait()  # every attempt counts against ICE's limit
            try:
                answer = await self._send(action, query, form)
            except IceError as exc:
                metrics.ICE_CALLS.labels(action, exc.code).inc()
                span.set_attribute("icehook.ice.error_code", exc.code)
                if attempt == attempts or not retryable(exc, idempotent):
                    raise
                if exc.retry_after > MAX_RETRY_WAIT_SECONDS:
                    raise  # ICE asks for longer than a call may wait: the caller comes back
                wait = max(exc.retry_after, backoff(self._rng, attempt))
                metrics.ICE_RETRIES.labels(action, exc.code).inc()
                span.add_event("retry", {"icehook.ice.error_code": exc.code, "wait_seconds": wait})
                logger.info(
                    "%s: trying again in %.2f s (attempt %d of %d): %s",
                    *(action, wait, attempt + 1, attempts, exc),
                )
                await self._sleep(wait)
            else:
                metrics.ICE_CALLS.labels(action, "ok").inc()
                return answer
        raise AssertionError("unreachable")

    async def _send(
        self, action: str, query: Mapping[str, str], form: Mapping[str, str]
    ) -> dict[str, Any]:
        """One attempt: connecting, sending and reading ICE's whole answer within
        ``ICEHOOK_ICE_TIMEOUT_SECONDS`` (httpx's own timeouts bound each read, not all of
        them: an answer trickled a byte at a time would last for ever)."""
        if name := oversized(query):
            raise IceError(
                400, "icehook.RequestTooLarge", f"{name} makes the query string too long to send"
            )
        # Fetched for every attempt: temporary credentials are renewed as they expire.
        request = self._sign(action, query, form, await self._credentials.current())
        seconds = self._settings.ice_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                response = await self._http.send(request, stream=True)
                try:
                    body = await _read_capped(response, MAX_ANSWER_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise IceError(0, "NoAnswer", f"no complete answer within {seconds:g} s") from None
        except outbound.FAILURES as exc:
            if outbound.nothing_sent(exc):  # always safe to try again
                raise IceError(0, "ConnectionFailed", outbound.describe(exc)) from None
            # Sent, perhaps received: the outcome is unknown.
            raise IceError(0, "NoAnswer", outbound.describe(exc)) from None
        except Exception as exc:  # what the client itself refused: never retried
            raise IceError(0, "ClientError", f"{type(exc).__name__}: {exc}") from None
        return _answer(response, body)

    def _sign(
        self,
        action: str,
        query: Mapping[str, str],
        form: Mapping[str, str],
        credential: Credential,
    ) -> httpx.Request:
        now = datetime.now(UTC)
        nonce = uuid.uuid4().hex
        body = urlencode(form).encode() if form else b""
        content_type = "application/x-www-form-urlencoded" if form else None
        token = credential.security_token
        if self._settings.ice_signature_version == "v2":
            params = {
                **signing.v2_params(
                    action=action,
                    version=API_VERSION,
                    access_key_id=credential.access_key_id,
                    now=now,
                    nonce=nonce,
                    security_token=token,
                ),
                **query,
            }
            signature = signing.sign_v2(
                {**params, **form}, method="POST", access_key_secret=credential.access_key_secret
            )
            headers = {"host": self._host, "accept": "application/json"}
            if content_type:
                headers["content-type"] = content_type
            query = {**params, "Signature": signature}
        else:
            headers = signing.v3_headers(
                host=self._host,
                action=action,
                version=API_VERSION,
                body=body,
                now=now,
                nonce=nonce,
                content_type=content_type,
                security_token=token,
                access_key_id=credential.access_key_id if token else None,
            )
            headers["accept"] = "application/json"
            headers["authorization"] = signing.sign_v3(
                method="POST",
                path="/",
                query=query,
                headers=headers,
                body=body,
                access_key_id=credential.access_key_id,
                access_key_secret=credential.access_key_secret,
            )
        return self._http.build_request(
            "POST",
            self._endpoint + "/",
            params=query,
            content=body,
            headers=headers,
            timeout=self._settings.ice_timeout_seconds,
        )


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body of ``response``; None when it is longer than ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(response: httpx.Response, content: bytes | None) -> dict[str, Any]:
    """ICE's JSON answer (``content``, None if it was too long), or the ``IceError`` it
    carries."""
    try:
        body = loads(content) if content is not None else None
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise IceError(
            response.status_code,
            "InvalidResponse",
            f"ICE answered {response.status_code} with a body that is not a JSON object"
            + (f" of at most {MAX_ANSWER_BYTES} bytes" if content is None else ""),
        )
    if response.status_code >= 400:
        raise IceError(
            response.status_code,
            str(body.get("Code") or body.get("code") or f"HTTP{response.status_code}"),
            str(body.get("Message") or body.get("message") or ""),
            str(body.get("RequestId") or body.get("requestId") or ""),
            retry_after=_retry_after(response),
        )
    return body


def _retry_after(response: httpx.Response) -> float:
    """``x-acs-retry-after`` in seconds (ICE sends milliseconds, as the SDK reads it)."""
    milliseconds = natural(response.headers.get("x-acs-retry-after", ""))
    return milliseconds / 1000 if milliseconds is not None else 0.0


def _page(filters: Mapping[str, str], next_token: str | None, max_results: int) -> dict[str, str]:
    page = {**filters, "MaxResults": str(max_results)}
    if next_token:
        page["NextToken"] = next_token
    return page


def ice_time(moment: datetime) -> str:
    """``moment`` as ICE's List filters take it (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
