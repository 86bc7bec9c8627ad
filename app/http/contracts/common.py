"""What every resource's contract shares: request bodies and query parameters validated
once, pages and cursors, errors, health.

The shapes of the contracts (TypedDicts) are the API's own description: pydantic validates
a request against its shape (``validated``), the serialisers take their keys from them, and
``http.openapi`` turns the same shapes into JSON Schema, so a limit is written once. A type
names a value's JSON form (a UUID or datetime is a string in that format). Request bodies
are closed and strict (``BODY``: no unknown field, no "true" for true); query parameters
are closed and read from text (``FILTERS``). Every failure is a ``ValidationError`` naming
the field.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    TypeVar,
)

import pydantic
from pydantic import BeforeValidator, ConfigDict, Field, PlainValidator, TypeAdapter
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from app.core.errors import ValidationError
from app.core.events import plain
from app.core.parsing import loads, natural, storable
from app.core.queries import PAGE_DEFAULT, PAGE_MAX
from app.store.audit import Page

BODY = ConfigDict(extra="forbid", strict=True)


FILTERS = ConfigDict(extra="forbid")


Shape = TypeVar("Shape")


def validated(shape: type[Shape], data: Mapping[str, Any]) -> Shape:
    """``data`` checked against ``shape`` (a TypedDict with ``BODY`` or ``FILTERS``) by
    pydantic, and converted as its types say; the first error as a ``ValidationError``."""
    try:
        return _adapter(shape).validate_python(data)
    except pydantic.ValidationError as exc:
        raise _field_error(shape, exc.errors(include_url=False, include_input=False)[0]) from None


def validated_filters(shape: type[Shape], params: Mapping[str, str]) -> Shape:
    """Query parameters checked against ``shape``; an empty one is as if not given (an HTML
    form sends its empty fields)."""
    given = {name: value for name, value in params.items() if value != ""}
    for name, value in given.items():
        refuse_unstorable(name, value)
    return validated(shape, given)


# Building an adapter compiles the shape's validator (milliseconds): once per shape.
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(shape: type[Shape]) -> TypeAdapter[Shape]:
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter


def _field_error(shape: type[Any], error: ErrorDetails) -> ValidationError:
    field = str(error["loc"][0]) if error["loc"] else "body"
    if error["type"] == "missing":
        return ValidationError(field, "is required")
    if error["type"] == "extra_forbidden" and len(error["loc"]) > 1:  # in a nested object
        inner = ".".join(str(part) for part in error["loc"])
        return ValidationError(field, f"{inner} is not a field here")
    if error["type"] == "extra_forbidden":
        what = "filter" if shape.__pydantic_config__ is FILTERS else "field"
        known = ", ".join(sorted(shape.__annotations__))
        return ValidationError(field, f"is not a {what} here; known: {known}")
    context = error.get("ctx", {})
    if error["type"] == "value_error":  # raised by one of the validators here, in our words
        return ValidationError(field, str(context.get("error", error["msg"])))
    if error["type"] in ("enum", "literal_error"):
        return ValidationError(field, f"must be one of {context.get('expected', '')}")
    message = error["msg"]
    return ValidationError(field, message[:1].lower() + message[1:])


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
    JSON can escape it (``core.parsing.storable``)."""
    if not all_storable(value):
        raise ValidationError(field, UNSTORABLE)


UNSTORABLE = "holds NUL or an unpaired surrogate, not kept"


def all_storable(value: Any) -> bool:
    """Whether PostgreSQL can hold every text in ``value``, keys too; walks without
    recursion, however deep."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not storable(item):
                return False
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return True


def resource(shape: type[Any], row: Mapping[Any, Any]) -> dict[str, Any]:
    """The keys of ``shape`` (a TypedDict), from ``row``, in their JSON form."""
    return {name: plain(row[name]) for name in shape.__annotations__}


def iso_time(value: Any) -> datetime:
    """An ISO 8601 time with a time zone, that exists in UTC (the database's form)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone, e.g. Z or +08:00")
    if not _in_range(moment):
        raise ValueError("is out of range")
    return moment


Time = Annotated[datetime, PlainValidator(iso_time, json_schema_input_type=datetime)]


def _in_range(moment: datetime) -> bool:
    """Whether ``moment`` exists in UTC: 0001-01-01T00:00+01:00 does not."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def _whole_number(value: Any) -> Any:
    """A query parameter's text as a number: ASCII digits only (``int()`` also reads other
    scripts' digits, signs and underscores)."""
    if not isinstance(value, str):
        return value
    number = natural(value)
    if number is None:
        raise ValueError("must be a whole number")
    return number


class PageParameters(TypedDict, total=False):
    limit: Annotated[
        int,
        Field(ge=1, le=PAGE_MAX, description=f"items per page (default {PAGE_DEFAULT})"),
        BeforeValidator(_whole_number),
    ]
    cursor: Annotated[str, Field(description="the next_cursor of the previous page")]


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
