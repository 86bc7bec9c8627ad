"""What the console's pages read from a request: its forms, the pages it may return to,
times typed into it, and the flags of its cookies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request

from app.core.errors import BadRequest
from app.http.routes.common import read_body

FORM_MAX = 16 * 1024


async def read_form(request: Request) -> dict[str, list[str]]:
    """An HTML form's fields (``application/x-www-form-urlencoded``, at most ``FORM_MAX``
    bytes), each with every value given."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise BadRequest("send the console's form (application/x-www-form-urlencoded)")
    body = await read_body(request, FORM_MAX)
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form is not well formed") from None
    found: dict[str, list[str]] = {}
    for name, value in fields:
        found.setdefault(name, []).append(value)
    return found


def one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[-1].strip() if values else None


def utc(value: str | None) -> str:
    """A time from a form's ``datetime-local`` field, which has no zone: the console's
    times are UTC. Anything else is passed on for the API's own check to judge."""
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return value or ""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def is_console_path(target: str) -> bool:
    """Whether ``target`` is a page of this console (never another site: no scheme, no
    host, no ``//``, no backslash)."""
    return target.startswith("/console/") and "\\" not in target and "//" not in target


def local_target(request: Request, name: str) -> str:
    target = request.query_params.get(name, "")
    return target if is_console_path(target) else ""


def next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "done")]
    return f"{request.url.path}?{urlencode([*params, ('cursor', cursor)])}"


def cookie_flags(request: Request) -> dict[str, Any]:
    """A console cookie's flags: never readable by script, never sent from another site,
    only over HTTPS when the console is reached over HTTPS."""
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}


def when(value: Any) -> str:
    """A time as the console shows it: UTC, to the second."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
