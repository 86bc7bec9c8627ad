"""ICE's RPC protocol at ``/``: parse, verify, dispatch the six actions, answer as ICE does.

A call is decoded (query and form body as form-urlencoded, so ``+`` is a space, as the SDK
sends it), its V3 or V2 signature verified, its nonce refused if seen before, its Version and
Action checked; then come the injected faults and the SubmitMediaProducingJob rate limit, and
only then the action. Every answer is JSON with a ``RequestId``; every error has ICE's shape
``{RequestId, HostId, Code, Message, Recommend}`` (ice-api.md §7).

Where ICE's behaviour is not documented (see the UNCONFIRMED notes in ice-api.md) the choice
made here is one a correct client copes with either way; each such place says so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import random
import re
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.core.parsing import natural
from app.ice.signing import RequestSignatureError, VerifiedRequest, verify_request
from app.simulator.callbacks import CallbackDispatcher, batch_callback, job_callback
from app.simulator.settings import SimulatorSettings
from app.simulator.state import (
    BATCH_JOB_TYPE,
    BATCH_STATUSES,
    JOB_STATUSES,
    Batch,
    Clock,
    Job,
    JobSpec,
    Store,
    TokenMismatch,
    ice_time,
    parse_ice_time,
    parse_json_object,
)

logger = logging.getLogger(__name__)

API_VERSION = "2020-11-09"
SUBMIT_ACTIONS = frozenset({"SubmitMediaProducingJob", "SubmitSceneBatchEditingJob"})
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_FIELDS = 1000
# A V2 Timestamp verifies within 31 minutes either side of now (V3: 15), so a nonce must be
# remembered for a little over 62 minutes to refuse every replay of a request that verifies.
NONCE_TTL_SECONDS = 63 * 60.0
# Beyond this many remembered nonces the oldest are forgotten early: only a load far above
# ICE's own limits gets there, and memory stays bounded.
NONCE_LIMIT = 1_000_000
USER_DATA_MAX_BYTES = 512
CLIENT_TOKEN_MAX_CHARS = 64
MAX_LIST_SPAN_SECONDS = 30 * 24 * 3600
# Batch outputs name their files with {index}; numbering from 1 is our choice (undocumented).
INDEX_PLACEHOLDER = "{index}"
JOB_ID = re.compile(r"[0-9a-fA-F]{32}")
SOURCE_PARAMETERS = ("ProjectId", "Timeline", "TemplateId")  # exactly one per submit
SUBMIT_PARAMETERS = (
    "ProjectId",
    "Timeline",
    "TemplateId",
    "ClipsParam",
    "OutputMediaConfig",
    "OutputMediaTarget",
    "ProjectMetadata",
    "EditingProduceConfig",
    "MediaMetadata",
    "UserData",
    "Source",
)
OUTPUT_TARGETS = frozenset({"oss-object", "vod-media", "S3"})
SOURCES = frozenset({"OpenAPI", "AliyunConsole", "WebSDK"})
LIST_JOB_TYPES = frozenset({"LiveEditingJob", "EditingJob", "VETemplateJob"})
BATCH_JOB_TYPES = frozenset(
    {
        "Script",
        "Smart_Mix",
        "Sports_Highlights",
        "Screen_Media_Highlights",
        "Smart_Mix_Media_Select",
        "Smart_Mix_Timeline_Organize",
        "Screen_Media_Highlights_Media_Select",
        "Screen_Media_Highlights_Timeline_Organize",
        BATCH_JOB_TYPE,
    }
)
THROTTLED = "Request was denied due to user flow control."
INTERNAL = "The request processing has failed due to some unknown error, exception or failure."

Params = Mapping[str, str]
Answer = dict[str, object]
T = TypeVar("T", Job, Batch)


class IceFault(Exception):
    """An ICE error answer: HTTP status, Code and Message."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


def missing(name: str) -> IceFault:
    return IceFault(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied.",
    )


def invalid(name: str, why: str = "") -> IceFault:
    message = f'The specified parameter "{name}" is not valid.'
    return IceFault(400, "InvalidParameter", f"{message} {why}" if why else message)


def throttled(retry_after_ms: int) -> IceFault:
    # HTTP 400 as in Alibaba's generic table (ICE's own status is unconfirmed); a client must
    # decide by Code, not status. x-acs-retry-after is what the SDK reads (milliseconds, a
    # positive integer: Utils.get_throttling_time_left); sent only with throttling.
    return IceFault(400, "Throttling.User", THROTTLED, retry_after_ms=max(1, retry_after_ms))


def error_body(fault: IceFault, request_id: str, host: str) -> Answer:
    return {
        "RequestId": request_id,
        "HostId": host,
        "Code": fault.code,
        "Message": fault.message,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={fault.code}&product=ICE&requestId={request_id}"
        ),
    }


def new_request_id() -> str:
    """RequestIds look like upper-case UUIDs, as ICE's do."""
    return str(uuid.uuid4()).upper()


class NonceCache:
    """Nonces already used, per AccessKeyId, forgotten after ``ttl`` seconds."""

    def __init__(self, ttl: float = NONCE_TTL_SECONDS, limit: int = NONCE_LIMIT) -> None:
        self._ttl = ttl
        self._limit = limit
        # Insertion order is expiry order (fixed ttl), so expired entries are always in front.
        # Keys are hashes, not the strings: a million entries stay small.
        self._expires: OrderedDict[int, float] = OrderedDict()

    def claim(self, access_key_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False if it was already used."""
        while self._expires:
            key, expiry = next(iter(self._expires.items()))
            if expiry > now:
                break
            del self._expires[key]
        key = hash((access_key_id, nonce))
        if key in self._expires:
            return False
        self._expires[key] = now + self._ttl
        if len(self._expires) > self._limit:
            self._expires.popitem(last=False)
        return True


class SubmitLimiter:
    """ICE's submit limit: at most ``qps`` submits in any sliding one-second window."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque()

    def admit(self, qps: float, now: float) -> float | None:
        """Count a submit at monotonic time ``now``; or, over the limit, the seconds to wait."""
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= max(1, math.floor(qps)):
            return self._recent[0] + 1.0 - now
        self._recent.append(now)
        return None


def _decode_form(text: str, what: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise IceFault(
            400, "InvalidParameter", f"The request {what} is not valid form-urlencoded UTF-8."
        ) from None
    return dict(pairs)


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise IceFault(
                400, "InvalidParameter", f"The request body is larger than {MAX_BODY_BYTES} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _signature_fault(exc: RequestSignatureError) -> IceFault:
    detail = str(exc)
    if exc.reason == "unknown_key":
        # 404 as the brief and several Alibaba products document (others say 400).
        return IceFault(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if exc.reason == "mismatch":
        return IceFault(
            403,
            "SignatureDoesNotMatch",
            f"Specified signature is not matched with our calculation: {detail}.",
        )
    if exc.reason == "expired":
        return IceFault(
            400,
            "InvalidTimeStamp.Expired",
            f"Specified time stamp or date value is expired: {detail}.",
        )
    if exc.reason == "missing":
        return IceFault(
            400,
            "MissingParameter",
            "The request is not signed as required: sign it with an Authorization header (V3) "
            f'or a "Signature" parameter (V2); {detail}.',
        )
    return IceFault(400, "InvalidParameter", f"The request signature is not valid: {detail}.")


def _optional(params: Params, name: str) -> str | None:
    """A parameter's value; an empty one counts as absent, as the SDK leaves unused ones out."""
    value = params.get(name)
    return value if value else None


def _json_object(params: Params, name: str) -> dict[str, object] | None:
    text = _optional(params, name)
    if text is None:
        return None
    value = parse_json_object(text)
    if value is None:
        raise invalid(name, "It must be a JSON object.")
    return value


def _user_data(params: Params) -> str | None:
    text = _optional(params, "UserData")
    if text is None:
        return None
    if len(text.encode()) > USER_DATA_MAX_BYTES:
        raise invalid("UserData", f"It must be at most {USER_DATA_MAX_BYTES} bytes.")
    if parse_json_object(text) is None:
        raise invalid("UserData", "It must be a JSON object.")
    return text


def _output_url(config: Mapping[str, object], name: str, index: int | None = None) -> str:
    """Where the output goes, from an OutputMediaConfig / OutputConfig object."""

    def place(text: str) -> str:
        return text.replace(INDEX_PLACEHOLDER, str(index)) if index is not None else text

    media_url = config.get("MediaURL")
    if media_url is not None:
        parts = urlsplit(media_url) if isinstance(media_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"{name}.MediaURL", "It must be an http(s) URL of an OSS object.")
        return place(str(media_url))
    location, file_name = config.get("StorageLocation"), config.get("FileName")
    if isinstance(location, str) and location and isinstance(file_name, str) and file_name:
        return f"https://{location}/{place(file_name)}"
    raise invalid(name, "It needs MediaURL, or StorageLocation and FileName.")


def _max_results(params: Params) -> int:
    text = _optional(params, "MaxResults")
    if text is None:
        return 10
    value = natural(text, 100)
    if value is None or value < 1:
        raise invalid("MaxResults", "It must be an integer from 1 to 100.")
    return value


def _time_range(params: Params) -> tuple[float | None, float | None]:
    bounds: list[float | None] = []
    for name in ("StartTime", "EndTime"):
        text = _optional(params, name)
        try:
            bounds.append(None if text is None else parse_ice_time(text))
        except ValueError:
            raise invalid(name, "It must be a UTC time like 2024-05-01T08:00:00Z.") from None
    start, end = bounds
    if start is not None and end is not None:
        if end < start:
            raise invalid("EndTime", "It must not be before StartTime.")
        if end - start > MAX_LIST_SPAN_SECONDS:
            raise invalid("EndTime", "StartTime and EndTime may be at most 30 days apart.")
    return start, end


def _in_range(created: float, start: float | None, end: float | None) -> bool:
    second = math.floor(created)  # ICE's times have whole seconds
    return (start is None or second >= start) and (end is None or second <= end)


def _one_of(params: Params, name: str, allowed: Iterable[str]) -> str | None:
    value = _optional(params, name)
    if value is not None and value not in allowed:
        raise invalid(name, f"Valid values: {', '.join(sorted(allowed))}.")
    return value


def _page_token(kind: str, descending: bool, seq: int) -> str:
    raw = f"{kind}|{'desc' if descending else 'asc'}|{seq}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _page_cursor(params: Params, kind: str, descending: bool) -> int | None:
    token = _optional(params, "NextToken")
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        token_kind, direction, seq = raw.split("|")
        if token_kind != kind or direction != ("desc" if descending else "asc"):
            raise ValueError(raw)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("NextToken", "Pass the NextToken of the previous page.") from None


def _page(items: Iterator[T], keep: Callable[[T], bool], size: int) -> tuple[list[T], bool]:
    """Up to ``size`` kept items, and whether more follow (so no token points at nothing)."""
    page: list[T] = []
    for item in items:
        if keep(item):
            if len(page) == size:
                return page, True
            page.append(item)
    return page, False


def _job_view(job: Job, now: float, *, detail: bool) -> Answer:
    status = job.status_at(now)
    view: Answer = {
        "JobId": job.job_id,
        "ProjectId": job.project_id,
        "MediaId": job.media_id,
        # The target URL is known from submission on, as ICE's own examples show it on a
        # Failed job: a client must go by Status, never by the presence of MediaURL.
        "MediaURL": job.media_url,
        "Status": status,
        "Code": job.code if status == "Failed" else "",
        "Message": job.message if status == "Failed" else "",
    }
    if detail:
        if job.vod_media_id is not None:
            view["VodMediaId"] = job.vod_media_id
        view["Progress"] = job.progress_at(now)
    if status == "Success":
        view["Duration"] = job.duration
    view["CreateTime"] = ice_time(job.created)
    view["ModifiedTime"] = ice_time(job.modified_at(now))
    if status in ("Success", "Failed"):
        view["CompleteTime"] = ice_time(job.done_at)
    if detail and job.timeline is not None:
        view["Timeline"] = job.timeline
    if job.template_id is not None:
        view["TemplateId"] = job.template_id
    if job.clips_param is not None:
        view["ClipsParam"] = job.clips_param
    if job.user_data is not None:
        view["UserData"] = job.user_data
    return view


def _sub_job_view(job: Job, now: float) -> Answer:
    status = job.status_at(now)
    view: Answer = {
        "JobId": job.job_id,
        "ProjectId": job.project_id,
        "MediaId": job.media_id,
        "MediaURL": job.media_url,
        # SubJobList documents Init|Processing|Success|Failed, no Queuing.
        "Status": "Init" if status == "Queuing" else status,
    }
    if status == "Success":
        view["Duration"] = job.duration
    if status == "Failed":
        view["ErrorCode"] = job.code
        view["ErrorMessage"] = job.message
    return view


def _batch_view(batch: Batch, now: float, *, detail: bool) -> Answer:
    status = batch.status_at(now)
    code, message = batch.error() if status == "Failed" else ("", "")
    view: Answer = {
        "JobId": batch.job_id,
        "JobType": BATCH_JOB_TYPE,
        "Status": status,
        "OutputConfig": batch.output_config,
    }
    if batch.user_data is not None:
        view["UserData"] = batch.user_data
    view["Extend"] = json.dumps({"ErrorCode": code, "ErrorMessage": message})
    if detail:
        view["ExtendInput"] = json.dumps({"ProjectIds": list(batch.project_ids)})
    view["CreateTime"] = ice_time(batch.created)
    view["ModifiedTime"] = ice_time(batch.modified_at(now))
    if status in ("Finished", "Failed"):
        view["CompleteTime"] = ice_time(batch.done_at)
    if detail:
        view["SubJobList"] = [_sub_job_view(job, now) for job in batch.sub_jobs]
    return view


class RpcService:
    """The ``/`` endpoint: one instance per simulator."""

    def __init__(
        self,
        *,
        settings: Callable[[], SimulatorSettings],
        store: Store,
        callbacks: CallbackDispatcher,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._settings = settings
        self._store = store
        self._callbacks = callbacks
        self._clock = clock
        self._rng = rng
        self._nonces = NonceCache()
        self._limiter = SubmitLimiter()
        # Action -> calls whose signature, nonce and version were accepted: what ICE received.
        self.calls: Counter[str] = Counter()
        self._actions: dict[str, Callable[[Params, SimulatorSettings], Answer]] = {
            "SubmitMediaProducingJob": self._submit_media_producing_job,
            "SubmitSceneBatchEditingJob": self._submit_scene_batch_editing_job,
            "GetMediaProducingJob": self._get_media_producing_job,
            "GetBatchMediaProducingJob": self._get_batch_media_producing_job,
            "ListMediaProducingJobs": self._list_media_producing_jobs,
            "ListBatchMediaProducingJobs": self._list_batch_media_producing_jobs,
        }

    async def endpoint(self, request: Request) -> Response:
        request_id = new_request_id()
        host = request.headers.get("host", "")  # ICE's HostId is the endpoint it was called at
        settings = self._settings()
        headers = {"x-acs-request-id": request_id}
        try:
            body: Answer = {"RequestId": request_id, **await self._answer(request, settings)}
            status = 200
        except IceFault as fault:
            body, status = error_body(fault, request_id, host), fault.status
            if fault.retry_after_ms is not None:
                headers["x-acs-retry-after"] = str(fault.retry_after_ms)
        except Exception:
            # A bug here must still look like ICE to the client: InternalError, logged.
            logger.exception("simulator failed on %s", request.url)
            body, status = (
                error_body(IceFault(500, "InternalError", INTERNAL), request_id, host),
                500,
            )
        if settings.api_latency_ms > 0:
            await asyncio.sleep(settings.api_latency_ms / 1000)
        return JSONResponse(body, status_code=status, headers=headers)

    async def _answer(self, request: Request, settings: SimulatorSettings) -> Answer:
        query = _decode_form(request.url.query, "query string")
        body = await _read_body(request)
        form: dict[str, str] = {}
        content_type = request.headers.get("content-type", "").lower()
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            try:
                form = _decode_form(body.decode(), "body")
            except UnicodeDecodeError:
                raise IceFault(400, "InvalidParameter", "The request body is not UTF-8.") from None
        verified = self._verify(request, query, form, body, settings)
        self.calls[verified.action] += 1
        handler = self._actions.get(verified.action)
        if handler is None:
            raise IceFault(
                404,
                "InvalidAction.NotFound",
                f"Specified api {verified.action!r} is not found, "
                "please check your url and method.",
            )
        self._inject_faults(verified.action, settings)
        return handler({**query, **form}, settings)

    def _verify(
        self,
        request: Request,
        query: Params,
        form: Params,
        body: bytes,
        settings: SimulatorSettings,
    ) -> VerifiedRequest:
        now = self._clock()
        try:
            verified = verify_request(
                method=request.method,
                path=request.url.path,
                query=query,
                form=form,
                headers=request.headers,
                body=body,
                secret_for=settings.access_keys.get,
                now=datetime.fromtimestamp(now, UTC),
            )
        except RequestSignatureError as exc:
            raise _signature_fault(exc) from None
        if not verified.nonce:
            raise missing("SignatureNonce")
        if not self._nonces.claim(verified.access_key_id, verified.nonce, now):
            raise IceFault(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        if verified.version != API_VERSION:
            raise IceFault(
                400, "NoSuchVersion", f"Specified api version {verified.version!r} is not valid."
            )
        return verified

    def _inject_faults(self, action: str, settings: SimulatorSettings) -> None:
        if self._rng.random() < settings.api_error_rate:
            if self._rng.random() < 0.5:
                raise throttled(1000)
            raise IceFault(500, "InternalError", INTERNAL)
        if action in SUBMIT_ACTIONS:
            wait = self._limiter.admit(settings.submit_qps, time.monotonic())
            if wait is not None:
                raise throttled(math.ceil(wait * 1000))

    # --- actions ------------------------------------------------------------------------------

    def _submit_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        sources = [name for name in SOURCE_PARAMETERS if _optional(params, name)]
        if not sources:
            raise missing("ProjectId, Timeline or TemplateId")
        if len(sources) > 1:
            raise invalid(
                sources[1],
                "Pass exactly one of ProjectId, Timeline and TemplateId, "
                f"not {' and '.join(sources)}.",
            )
        _json_object(params, "Timeline")
        if _optional(params, "TemplateId") and not _optional(params, "ClipsParam"):
            raise missing("ClipsParam")
        _json_object(params, "ClipsParam")
        output = _json_object(params, "OutputMediaConfig")
        if output is None:
            raise missing("OutputMediaConfig")
        target = _one_of(params, "OutputMediaTarget", OUTPUT_TARGETS)
        media_url = _output_url(output, "OutputMediaConfig")
        for name in ("ProjectMetadata", "EditingProduceConfig", "MediaMetadata"):
            _json_object(params, name)
        _one_of(params, "Source", SOURCES)
        user_data = _user_data(params)
        client_token = _optional(params, "ClientToken")
        if client_token is not None and (
            len(client_token) > CLIENT_TOKEN_MAX_CHARS
            or not client_token.isascii()
            or not client_token.isprintable()
        ):
            raise invalid(
                "ClientToken", f"It must be at most {CLIENT_TOKEN_MAX_CHARS} ASCII characters."
            )
        spec = JobSpec(
            project_id=_optional(params, "ProjectId"),
            timeline=_optional(params, "Timeline"),
            template_id=_optional(params, "TemplateId"),
            clips_param=_optional(params, "ClipsParam"),
            media_url=media_url,
            vod_output=target == "vod-media",
            user_data=user_data,
        )
        fingerprint = json.dumps(
            {name: params[name] for name in SUBMIT_PARAMETERS if _optional(params, name)},
            sort_keys=True,
        )
        try:
            job, created = self._store.submit_job(
                spec, settings, client_token=client_token, fingerprint=fingerprint
            )
        except TokenMismatch:
            # ICE does not document a reused ClientToken (ice-api.md §4, UNCONFIRMED); this code
            # is our invention, modelled on other Alibaba APIs. The same token with the same
            # parameters answers the original job instead.
            raise IceFault(
                400,
                "IdempotentParameterMismatch",
                "The specified ClientToken was already used with different request parameters.",
            ) from None
        if created:
            self._schedule_job(job, settings)
        answer: Answer = {"ProjectId": job.project_id, "JobId": job.job_id, "MediaId": job.media_id}
        if job.vod_media_id is not None:
            answer["VodMediaId"] = job.vod_media_id
        return answer

    def _submit_scene_batch_editing_job(
        self, params: Params, settings: SimulatorSettings
    ) -> Answer:
        raw_ids = _optional(params, "ProjectIds")
        if raw_ids is None:
            raise missing("ProjectIds")
        project_ids = [part.strip() for part in raw_ids.split(",")]
        if not all(project_ids):
            raise invalid("ProjectIds", "It must be project IDs separated by commas.")
        output_text = _optional(params, "OutputConfig")
        output = _json_object(params, "OutputConfig")
        if output is None or output_text is None:
            raise missing("OutputConfig")
        for unsupported in ("Count", "GeneratePreviewOnly"):
            if unsupported in output:
                raise invalid(f"OutputConfig.{unsupported}", "It is not supported for this job.")
        media_urls = [
            _output_url(output, "OutputConfig", index) for index in range(1, len(project_ids) + 1)
        ]
        user_data = _user_data(params)
        batch = self._store.submit_batch(
            project_ids,
            output_text,
            media_urls,
            vod_output="MediaURL" not in output,
            user_data=user_data,
            settings=settings,
        )
        for job in batch.sub_jobs:
            self._schedule_job(job, settings)
        # UNCONFIRMED whether scene batches and their sub-jobs call back (ice-api.md §1.5): we
        # send both, so a receiver must cope with sub-job events and one batch event.
        callback = batch_callback(batch, settings.user_id)
        if callback is not None:
            # A moment after the last sub-job, so the batch event comes after theirs unless a
            # configured delay reorders them.
            self._callbacks.schedule(batch.done_at + 0.05, callback)
        return {"JobId": batch.job_id}

    def _schedule_job(self, job: Job, settings: SimulatorSettings) -> None:
        callback = job_callback(job, settings.user_id)
        if callback is not None:
            self._callbacks.schedule(job.done_at, callback)

    def _job_id(self, params: Params) -> str:
        job_id = _optional(params, "JobId")
        if job_id is None:
            raise missing("JobId")
        if not JOB_ID.fullmatch(job_id):
            raise invalid("JobId")
        return job_id

    def _get_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        job = self._store.job(self._job_id(params))
        if job is None:
            raise IceFault(404, "JobNotFound", "The specified job not found")
        return {"MediaProducingJob": _job_view(job, self._clock(), detail=True)}

    def _get_batch_media_producing_job(self, params: Params, settings: SimulatorSettings) -> Answer:
        # ICE documents JobNotFound for GetMediaProducingJob only; the same answer here.
        batch = self._store.batch(self._job_id(params))
        if batch is None:
            raise IceFault(404, "JobNotFound", "The specified job not found")
        return {"EditingBatchJob": _batch_view(batch, self._clock(), detail=True)}

    def _list_media_producing_jobs(self, params: Params, settings: SimulatorSettings) -> Answer:
        start, end = _time_range(params)
        status = _one_of(params, "Status", JOB_STATUSES)
        job_type = _one_of(params, "JobType", LIST_JOB_TYPES)
        sort = _one_of(params, "SortBy", ("CreationTime:Asc", "CreationTime:Desc"))
        descending = sort != "CreationTime:Asc"
        size = _max_results(params)
        cursor = _page_cursor(params, "jobs", descending)
        project_id = _optional(params, "ProjectId")
        master_job_id = _optional(params, "MasterJobId")
        keyword = _optional(params, "Keyword")
        now = self._clock()

        def keep(job: Job) -> bool:
            return (
                _in_range(job.created, start, end)
                and (status is None or job.status_at(now) == status)
                and (job_type is None or job.job_type == job_type)
                and (project_id is None or job.project_id == project_id)
                and (master_job_id is None or job.master_job_id == master_job_id)
                and (keyword is None or keyword in job.job_id or keyword in job.project_id)
            )

        page, more = _page(self._store.jobs_after(cursor, descending), keep, size)
        answer: Answer = {"MediaProducingJobList": [_job_view(j, now, detail=False) for j in page]}
        if more:
            answer["NextToken"] = _page_token("jobs", descending, page[-1].seq)
        answer["MaxResults"] = str(size)  # a string in ICE's model
        return answer

    def _list_batch_media_producing_jobs(
        self, params: Params, settings: SimulatorSettings
    ) -> Answer:
        start, end = _time_range(params)
        status = _one_of(params, "Status", BATCH_STATUSES)
        job_type = _one_of(params, "JobType", BATCH_JOB_TYPES)
        descending = _one_of(params, "SortBy", ("asc", "desc")) != "asc"
        size = _max_results(params)
        cursor = _page_cursor(params, "batches", descending)
        job_id = _optional(params, "JobId")
        now = self._clock()

        def keep(batch: Batch) -> bool:
            return (
                _in_range(batch.created, start, end)
                and (status is None or batch.status_at(now) == status)
                and (job_type is None or job_type == BATCH_JOB_TYPE)
                and (job_id is None or batch.job_id == job_id)
            )

        page, more = _page(self._store.batches_after(cursor, descending), keep, size)
        answer: Answer = {"EditingBatchJobList": [_batch_view(b, now, detail=False) for b in page]}
        if more:
            answer["NextToken"] = _page_token("batches", descending, page[-1].seq)
        answer["MaxResults"] = size  # an integer in ICE's model, unlike the job list's
        return answer
