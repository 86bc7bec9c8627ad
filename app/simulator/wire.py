"""ICE's wire, as the simulator speaks it: its error answers, reading a call's parameters,
pages of lists, and the views of jobs and batches that Get and List answer with.

Where ICE's behaviour is not documented, the choice made here is one a correct client copes
with either way (docs/ice.md tells how sure each fact is).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from app.core.parsing import natural
from app.ice.verification import RequestSignatureError
from app.simulator.state import (
    BATCH_JOB_TYPE,
    Batch,
    Job,
    ice_time,
    parse_ice_time,
    parse_json_object,
)

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
    """ICE's submit limit: at most ``qps`` submits in any sliding one-second window. It also
    keeps the most submit calls that ever arrived within one second (``peak``), admitted
    or not, for ``GET /_sim/stats``."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque()
        self._arrivals: deque[float] = deque()
        self.peak = 0

    def admit(self, qps: float, now: float) -> float | None:
        """Count a submit at monotonic time ``now``; or, over the limit, the seconds to wait."""
        self._arrivals.append(now)
        while self._arrivals[0] <= now - 1.0:
            self._arrivals.popleft()
        self.peak = max(self.peak, len(self._arrivals))
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= max(1, math.floor(qps)):
            return self._recent[0] + 1.0 - now
        self._recent.append(now)
        return None


def decode_form(text: str, what: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise IceFault(
            400, "InvalidParameter", f"The request {what} is not valid form-urlencoded UTF-8."
        ) from None
    return dict(pairs)


async def read_body(request: Request) -> bytes:
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


def signature_fault(exc: RequestSignatureError) -> IceFault:
    detail = str(exc)
    if exc.reason == "unknown_key":
        # 404 as docs/ice.md (Jobs) and several Alibaba products document (others say 400).
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


def optional(params: Params, name: str) -> str | None:
    """A parameter's value; an empty one counts as absent, as the SDK leaves unused ones out."""
    value = params.get(name)
    return value if value else None


def json_object(params: Params, name: str) -> dict[str, object] | None:
    text = optional(params, name)
    if text is None:
        return None
    value = parse_json_object(text)
    if value is None:
        raise invalid(name, "It must be a JSON object.")
    return value


def user_data_of(params: Params) -> str | None:
    text = optional(params, "UserData")
    if text is None:
        return None
    if len(text.encode()) > USER_DATA_MAX_BYTES:
        raise invalid("UserData", f"It must be at most {USER_DATA_MAX_BYTES} bytes.")
    if parse_json_object(text) is None:
        raise invalid("UserData", "It must be a JSON object.")
    return text


def output_url(config: Mapping[str, object], name: str, index: int | None = None) -> str:
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


def max_results(params: Params) -> int:
    text = optional(params, "MaxResults")
    if text is None:
        return 10
    value = natural(text, 100)
    if value is None or value < 1:
        raise invalid("MaxResults", "It must be an integer from 1 to 100.")
    return value


def time_range(params: Params) -> tuple[float | None, float | None]:
    bounds: list[float | None] = []
    for name in ("StartTime", "EndTime"):
        text = optional(params, name)
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


def in_range(created: float, start: float | None, end: float | None) -> bool:
    second = math.floor(created)  # ICE's times have whole seconds
    return (start is None or second >= start) and (end is None or second <= end)


def one_of(params: Params, name: str, allowed: Iterable[str]) -> str | None:
    value = optional(params, name)
    if value is not None and value not in allowed:
        raise invalid(name, f"Valid values: {', '.join(sorted(allowed))}.")
    return value


def page_token(kind: str, descending: bool, seq: int) -> str:
    raw = f"{kind}|{'desc' if descending else 'asc'}|{seq}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def page_cursor(params: Params, kind: str, descending: bool) -> int | None:
    token = optional(params, "NextToken")
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


def page_of(items: Iterator[T], keep: Callable[[T], bool], size: int) -> tuple[list[T], bool]:
    """Up to ``size`` kept items, and whether more follow (so no token points at nothing)."""
    page: list[T] = []
    for item in items:
        if keep(item):
            if len(page) == size:
                return page, True
            page.append(item)
    return page, False


def job_view(job: Job, now: float, *, detail: bool) -> Answer:
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


def sub_job_view(job: Job, now: float) -> Answer:
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


def batch_view(batch: Batch, now: float, *, detail: bool) -> Answer:
    status = batch.status_at(now)
    # A batch failed as a whole carries its error whichever word ends it (batch_failure).
    code, message = batch.error() if status in ("Finished", "Failed") else ("", "")
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
        view["SubJobList"] = [sub_job_view(job, now) for job in batch.sub_jobs]
    return view


def reformatted(user_data: str) -> str:
    """``user_data`` as another JSON writer might give it back: keys in reverse order, other
    spacing (batch_listing ``reformatted``); text that is not a JSON object, unchanged."""
    try:
        value = json.loads(user_data)
    except ValueError:
        return user_data
    if not isinstance(value, dict):
        return user_data
    return json.dumps(dict(reversed(list(value.items()))), separators=(" , ", " : "))
