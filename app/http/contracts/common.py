"""What every resource's contract shares: request bodies and query parameters parsed and
checked once, pages and cursors, errors, health. Every parsing failure is a
``ValidationError`` naming the field.

The shapes of the contracts (TypedDicts) are the API's own description: the parsers take
their field names from them, the serialisers their keys, and ``http.openapi`` turns them into
JSON Schema. A type names a value's JSON form (a UUID or datetime is a string in that
format). Request bodies are closed: the parsers refuse a field they do not name.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypeVar,
    get_origin,
    get_type_hints,
)

from pydantic import ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from app.core.errors import ValidationError
from app.core.events import plain
from app.core.parsing import loads, natural, storable
from app.core.queries import PAGE_DEFAULT, PAGE_MAX
from app.store.audit import Page

# The shapes below are the API's own description: the parsers take their field names from
# them, the serialisers their keys, and app/openapi.py turns them into JSON Schema. A type
# names a value's JSON form (a UUID or datetime is a string in that format). Request bodies
# are closed: the parsers refuse a field they do not name.
CLOSED = ConfigDict(extra="forbid")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        raise ValidationError(
            "body", "is not valid JSON (NaN and Infinity are not JSON), or is nested too deeply"
        ) from None
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for name, value in body.items():
        refuse_unstorable(name, value)
    return body


def refuse_unstorable(field: str, value: Any) -> None:
    """Refuses text anywhere in ``value`` (keys too) that PostgreSQL cannot hold though
    JSON can escape it (``db.storable``); walks without recursion, however deep."""
    pending = [field, value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not storable(item):
                raise ValidationError(field, "holds NUL or an unpaired surrogate, not kept")
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item


def refuse_unknown(body: Mapping[str, Any], shape: type[Any]) -> None:
    """Refuses a field that ``shape`` (a TypedDict of a request body) does not name."""
    known = shape.__annotations__
    for name in body:
        if name == "ClientToken":  # an ICE parameter, but icehook's to set
            raise ValidationError("ClientToken", "is set by icehook (from the job's id)")
        if name not in known:
            raise ValidationError(name, f"is not a field here; known: {', '.join(sorted(known))}")


def resource(shape: type[Any], row: Mapping[Any, Any]) -> dict[str, Any]:
    """The keys of ``shape`` (a TypedDict), from ``row``, in their JSON form."""
    return {name: plain(row[name]) for name in shape.__annotations__}


class PageParameters(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX, description="items per page (default 50)")]
    cursor: Annotated[str, Field(description="the next_cursor of the previous page")]


def refuse_unknown_filters(params: Mapping[str, str], filters: type[Any], path: str) -> None:
    """Refuses a parameter that ``filters`` (a TypedDict of query parameters) does not name,
    and a value that PostgreSQL cannot hold."""
    for name, value in params.items():
        if name not in filters.__annotations__:
            raise ValidationError(name, f"is not a filter of {path}")
        refuse_unstorable(name, value)


Choice = TypeVar("Choice", bound=enum.StrEnum)


def choice(params: Mapping[str, str], name: str, choices: type[Choice]) -> Choice | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in set(choices):
        raise ValidationError(name, f"must be one of {', '.join(choices)}")
    return choices(value)


def uuid_of(params: Mapping[str, str], name: str) -> uuid.UUID | None:
    if not params.get(name):
        return None
    try:
        return uuid.UUID(params[name])
    except ValueError:
        raise ValidationError(name, "is not an id (a UUID)") from None


def time_of(params: Mapping[str, Any], name: str) -> datetime | None:
    if not params.get(name):
        return None
    if not isinstance(params[name], str):
        raise ValidationError(name, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(params[name])
    except ValueError:
        raise ValidationError(name, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValidationError(name, "must carry a time zone, e.g. Z or +08:00")
    if not _in_range(moment):
        raise ValidationError(name, "is out of range")
    return moment


def _in_range(moment: datetime) -> bool:
    """Whether ``moment`` exists in UTC (the database's form): 0001-01-01T00:00+01:00 does
    not."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def limit_of(raw: str | None) -> int:
    if raw is None:
        return PAGE_DEFAULT
    limit = natural(raw, PAGE_MAX)
    if limit is None or limit < 1:
        raise ValidationError("limit", f"must be a whole number from 1 to {PAGE_MAX}")
    return limit


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not _in_range(moment):
            raise ValueError
        return moment, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None


def encode_id_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id|{last_id}".encode()).decode()


def decode_id_cursor(raw: str) -> int:
    try:
        tag, value = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        last_id = natural(value)
        if tag != "id" or last_id is None:
            raise ValueError
        return last_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None


def required_keys(shape: type[Any]) -> list[str]:
    """The keys ``shape`` (a TypedDict) requires. (``__required_keys__`` cannot tell while
    annotations are strings, as in this module.)"""
    hints = get_type_hints(shape, include_extras=True)
    return [
        name
        for name, hint in hints.items()
        if get_origin(hint) is Required or (shape.__total__ and get_origin(hint) is not NotRequired)
    ]


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    schema: NotRequired[Annotated[str, Field(description="the migration revision")]]
    reason: NotRequired[str]


def page_resource(
    found: Page,
    resource: Callable[[Mapping[Any, Any]], dict[str, Any]],
    cursor_of: Callable[[Mapping[Any, Any]], str],
) -> dict[str, Any]:
    """A page of a list as the API answers it: its items, and the cursor to the next page
    (None on the last)."""
    return {
        "items": [resource(row) for row in found.rows],
        "next_cursor": cursor_of(found.rows[-1]) if found.more else None,
    }
