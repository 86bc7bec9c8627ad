"""The console over HTTP: signing in and out, the session cookie's flags, CSRF, what each
role may do, and the headers that keep its pages from being framed or scripted. (A real
browser drives it in tests/browser.)"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from app.core.access import ApiKey, Role
from app.settings import Settings
from app.store import tables
from app.wiring import create_app
from tests.helpers.history import rows
from tests.helpers.servers import http_client, serve

ADMIN, READ, METRICS = "admin-key-0123456789", "read-key-0123456789", "metrics-key-0123456789"


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    keys = (ApiKey(Role.ADMIN, ADMIN), ApiKey(Role.READ, READ), ApiKey(Role.METRICS, METRICS))
    app = create_app(dataclasses.replace(settings, api_keys=keys))
    async with serve(app) as url, http_client(base_url=url) as client:
        yield client


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    form = await client.get("/console/login", headers=headers)
    token = _hidden(form.text, "login_token")
    return await client.post(
        "/console/login", data={"api_key": key, "login_token": token}, headers=headers
    )


async def test_signing_in_sets_a_strict_http_only_session_cookie_that_holds_no_key(
    console: httpx.AsyncClient, database_url: str
) -> None:
    page = await console.get("/console/jobs")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Fjobs"
    signed_in = await _sign_in(console, READ)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/"
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("icehook_console=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=28800"} <= flags
    assert "secure" not in flags  # plain HTTP here: a Secure cookie would never come back
    value = cookie.split(";")[0].split("=", 1)[1]
    assert READ not in cookie
    assert READ not in signed_in.text
    # The cookie carries the role and a random token, signed; the database keeps the
    # token's hash, never the token, with the role.
    payload, stamp, signature = value.split(".")
    role, token = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert role == "read"
    kept = tables.console_sessions.c
    stored = await rows(database_url, sa.select(kept.token_hash, kept.role))
    assert [(row.token_hash, row.role) for row in stored] == [
        (hashlib.sha256(token.encode()).digest(), "read")
    ]
    # The same token under the admin role, without the signature's blessing: nobody.
    forged = base64.urlsafe_b64encode(json.dumps(["admin", token]).encode()).decode()
    console.cookies.set("icehook_console", f"{forged.rstrip('=')}.{stamp}.{signature}")
    assert (await console.get("/console/")).status_code == 303
    console.cookies.set("icehook_console", value)
    overview = await console.get("/console/")
    assert overview.status_code == 200
    assert "Jobs by status" in overview.text


async def test_over_https_the_cookie_is_secure(console: httpx.AsyncClient) -> None:
    # A proxy on this host that terminated TLS says so (uvicorn trusts 127.0.0.1). The
    # client speaks plain HTTP, so it keeps no Secure cookie: the test hands it back.
    https = {"x-forwarded-proto": "https"}
    form = await console.get("/console/login", headers=https)
    login_cookie = form.headers["set-cookie"]
    assert "secure" in login_cookie.lower()
    signed_in = await console.post(
        "/console/login",
        data={"api_key": READ, "login_token": _hidden(form.text, "login_token")},
        headers={**https, "cookie": login_cookie.split(";")[0]},
    )
    assert signed_in.status_code == 303
    session_cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("icehook_console=")
    )
    assert "secure" in session_cookie.lower()


@pytest.mark.parametrize(
    ("key", "status", "says"),
    [
        ("not-a-key-0123456789", 401, "not one of this service"),
        (METRICS, 403, "A metrics key cannot use the console"),
    ],
)
async def test_a_wrong_key_or_a_metrics_key_signs_nobody_in(
    console: httpx.AsyncClient, key: str, status: int, says: str
) -> None:
    answer = await _sign_in(console, key)
    assert answer.status_code == status
    assert says in answer.text
    assert "icehook_console=" not in answer.headers.get("set-cookie", "")


async def test_signing_in_needs_the_forms_own_token(console: httpx.AsyncClient) -> None:
    # Another site cannot sign a browser in with a key of its choosing: it has no token.
    forged = await console.post("/console/login", data={"api_key": ADMIN, "login_token": "x"})
    assert forged.status_code == 403
    assert "icehook_console=" not in forged.headers.get("set-cookie", "")


async def test_a_read_session_sees_no_button_and_a_forged_post_is_refused(
    console: httpx.AsyncClient,
) -> None:
    await _sign_in(console, READ)
    page = (await console.get("/console/subscriptions")).text
    csrf = _hidden(page, "csrf")  # the sign-out form's
    assert "New subscription" not in page
    assert "Rotate secret" not in page
    for path, data in (
        ("/console/subscriptions", {"url": "https://example.com/h", "event_types": "*"}),
        ("/console/deliveries/1/retry", {}),
        (f"/console/jobs/{uuid.uuid4()}/confirm", {}),
        (f"/console/subscriptions/{uuid.uuid4()}/disable", {}),
    ):
        refused = await console.post(path, data={**data, "csrf": csrf})
        assert refused.status_code == 403, path
        assert "this needs admin" in refused.text


async def test_an_admin_form_without_its_csrf_token_is_refused(
    console: httpx.AsyncClient,
) -> None:
    await _sign_in(console, ADMIN)
    page = (await console.get("/console/subscriptions")).text
    csrf = _hidden(page, "csrf")
    subscription = {"url": "https://127.0.0.1/hook", "event_types": "*"}
    for token in (None, "", csrf[:-1] + ("0" if csrf[-1] != "0" else "1")):
        data = subscription if token is None else {**subscription, "csrf": token}
        refused = await console.post("/console/subscriptions", data=data)
        assert refused.status_code == 403
        assert "stale" in refused.text
    # Not a form at all: refused before anything else.
    as_json = await console.post("/console/subscriptions", json={**subscription, "csrf": csrf})
    assert as_json.status_code == 400


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(
    console: httpx.AsyncClient,
) -> None:
    await _sign_in(console, ADMIN)
    copied = console.cookies["icehook_console"]
    csrf = _hidden((await console.get("/console/")).text, "csrf")
    signed_out = await console.post("/console/logout", data={"csrf": csrf})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/login"
    console.cookies.set("icehook_console", copied)
    again = await console.get("/console/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/console/login")


async def test_pages_are_never_framed_cached_or_scripted(console: httpx.AsyncClient) -> None:
    await _sign_in(console, READ)
    for path in ("/console/login", "/console/", "/console/jobs", "/console/jobs/static"):
        answer = await console.get(path)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "script-src" not in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text
    stylesheet = await console.get("/console/static/console.css")
    assert stylesheet.status_code == 200
    assert "no-store" not in stylesheet.headers.get("cache-control", "")


async def test_after_sign_in_the_console_goes_only_to_its_own_pages(
    console: httpx.AsyncClient,
) -> None:
    for target, expected in (
        ("/console/jobs?status=failed", "/console/jobs?status=failed"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/\\evil", "/console/"),
    ):
        form = await console.get("/console/login", params={"next": target})
        data = {"api_key": READ, "login_token": _hidden(form.text, "login_token"), "next": target}
        answer = await console.post("/console/login", data=data)
        assert answer.headers["location"] == expected, target


async def test_bad_filters_and_unknown_ids_are_pages_with_a_4xx(console: httpx.AsyncClient) -> None:
    await _sign_in(console, READ)
    for path, status in (
        ("/console/jobs?status=nope", 422),
        ("/console/jobs?created_after=yesterday", 422),
        ("/console/callbacks?outcome=x", 422),
        ("/console/deliveries?cursor=%%%", 422),
        (f"/console/jobs/{uuid.uuid4()}", 404),
        ("/console/jobs/%00", 404),
    ):
        answer = await console.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    # An admin's forms name their delivery or subscription in the path: anything else is
    # 404, never a 500 (a digit that is no number, like "²", included).
    await _sign_in(console, ADMIN)
    csrf = _hidden((await console.get("/console/")).text, "csrf")
    for path in ("/console/deliveries/%C2%B2/retry", "/console/subscriptions/x/enable"):
        answer = await console.post(path, data={"csrf": csrf})
        assert answer.status_code == 404, (path, answer.text)
