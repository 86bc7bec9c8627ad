"""A subscription signed with ed25519 (Standard Webhooks ``v1a``), end to end over real
sockets: its receiver verifies every webhook with the public key the API shows, never
with a shared secret; a rotation's overlap carries both keys' signatures; and its secret key
never leaves icehook, through the API, the command line or the console."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from app.store.tables import subscriptions
from app.webhooks.signing import public_key
from tests.e2e.test_webhooks import events_by_job, finished, recorded_events
from tests.helpers.processes import run_icehook
from tests.helpers.receiver import Delivery, Receiver, receiver
from tests.helpers.servers import http_client
from tests.helpers.stack import API_KEY, Stack, stack
from tests.helpers.waiting import eventually


async def v1a_subscription(s: Stack, r: Receiver) -> dict[str, Any]:
    answer = await s.api.post(
        "/v1/subscriptions",
        json={"url": r.url, "event_types": ["job.*"], "signature_scheme": "v1a"},
    )
    assert answer.status_code == 201, answer.text
    assert "whsk_" not in answer.text
    created = answer.json()
    assert "secret" not in created
    assert created["signature_scheme"] == "v1a"
    assert created["public_key"].startswith("whpk_")
    r.public_keys.append(created["public_key"])
    return created  # type: ignore[no-any-return]


async def shown(s: Stack, subscription_id: str) -> dict[str, Any]:
    """The subscription as read and as listed, neither holding a secret key."""
    one, listed = (
        await s.api.get(f"/v1/subscriptions/{subscription_id}"),
        await s.api.get("/v1/subscriptions"),
    )
    assert (one.status_code, listed.status_code) == (200, 200)
    assert "whsk_" not in one.text
    assert "whsk_" not in listed.text
    (item,) = [item for item in listed.json()["items"] if item["id"] == subscription_id]
    assert item == one.json()
    return one.json()  # type: ignore[no-any-return]


def signatures(d: Delivery) -> list[str]:
    return d.headers["webhook-signature"].split(" ")


async def delivered(r: Receiver, count: int) -> bool:
    return len(r.delivered()) >= count


async def test_a_v1a_subscription_verifies_with_its_public_keys_across_a_rotation(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        created = await v1a_subscription(s, r)
        old_key = created["public_key"]
        assert (await shown(s, created["id"]))["public_key"] == old_key
        (stored,) = await s.rows(sa.select(subscriptions.c.secret))
        assert stored["secret"].startswith("whsk_")
        assert public_key(stored["secret"]) == old_key, "the key shown is the stored key's"

        first = await s.submit(ProjectId="p-1")
        await eventually(lambda: finished(s, first))
        first_events = len((await recorded_events(s, first))[first["id"]])
        await eventually(lambda: delivered(r, first_events))

        rotated = await s.api.post(f"/v1/subscriptions/{created['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        assert "whsk_" not in rotated.text
        assert "secret" not in rotated.json()
        assert rotated.json()["previous_secret_valid_until"]
        new_key = rotated.json()["public_key"]
        assert new_key.startswith("whpk_")
        assert new_key != old_key
        assert (await shown(s, created["id"]))["public_key"] == new_key
        r.public_keys.append(new_key)

        second = await s.submit(ProjectId="p-2")
        await eventually(lambda: finished(s, second))
        expected = await recorded_events(s, first, second)
        await eventually(lambda: delivered(r, sum(map(len, expected.values()))))
        assert events_by_job(r) == expected
        assert all(d.answered == 200 for d in r.requests), "every webhook verified"
        # No HMAC signature at all: a receiver holding no secret verifies all of them.
        assert r.secrets == []
        assert all(entry.startswith("v1a,") for d in r.requests for entry in signatures(d))

        def of(job: dict[str, Any]) -> list[Delivery]:
            return [d for d in r.requests if json.loads(d.body)["data"]["id"] == job["id"]]

        assert all(len(signatures(d)) == 1 for d in of(first))
        assert all(d.verified_with == (old_key,) for d in of(first))
        # During the overlap both keys sign: a receiver with either public key accepts.
        assert all(len(signatures(d)) == 2 for d in of(second))
        assert all(d.verified_with == (old_key, new_key) for d in of(second))


async def test_the_scheme_is_chosen_once_and_a_v1_subscription_shows_no_public_key(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=60) as s:
        for scheme in ("v2", "V1A", None, 1):
            body = {"url": r.url, "event_types": ["*"], "signature_scheme": scheme}
            answer = await s.api.post("/v1/subscriptions", json=body)
            assert answer.status_code == 422, (scheme, answer.text)
            assert answer.json()["error"]["field"] == "signature_scheme"
        created = await v1a_subscription(s, r)
        url = f"/v1/subscriptions/{created['id']}"
        changed = await s.api.patch(url, json={"signature_scheme": "v1"})
        assert changed.status_code == 422, changed.text
        assert changed.json()["error"]["field"] == "signature_scheme"
        assert (await shown(s, created["id"]))["signature_scheme"] == "v1a"
        plain = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        assert plain.status_code == 201, plain.text
        assert plain.json()["secret"].startswith("whsec_")
        assert (plain.json()["signature_scheme"], plain.json()["public_key"]) == ("v1", None)
        rotated = await s.api.post(f"/v1/subscriptions/{plain.json()['id']}/rotate-secret")
        assert rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["public_key"] is None


async def test_the_command_line_makes_a_v1a_subscription_and_shows_only_its_public_key(
    database_url: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "ICEHOOK_DATABASE_URL": database_url}
    env["ICEHOOK_ALLOWED_WEBHOOK_NETS"] = "127.0.0.0/8"
    create = ("subscriptions", "create", "--url", "http://127.0.0.1:9/hook")
    code, out, err = await run_icehook(*create, "--signature-scheme", "v1a", "--json", env=env)
    assert code == 0, err
    assert "whsk_" not in out + err
    made = json.loads(out)
    assert "secret" not in made
    assert (made["signature_scheme"], made["public_key"][:5]) == ("v1a", "whpk_")
    code, out, err = await run_icehook(*create, "--signature-scheme", "v1a", env=env)
    assert code == 0, err
    assert "whsk_" not in out + err
    assert "public key (v1a, ed25519): whpk_" in out
    code, out, err = await run_icehook("subscriptions", "list", "--json", env=env)
    assert code == 0, err
    assert "whsk_" not in out
    assert {item["signature_scheme"] for item in json.loads(out)["items"]} == {"v1a"}
    code, _, err = await run_icehook(*create, "--signature-scheme", "v2", env=env)
    assert code == 2, err


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return found.group(1)


async def test_the_console_shows_a_v1a_subscriptions_public_key_never_its_secret_key(
    database_url: str,
) -> None:
    async with (
        receiver() as r,
        stack(database_url, job_seconds=60) as s,
        http_client(base_url=str(s.api.base_url)) as console,
    ):
        created = await v1a_subscription(s, r)
        login = await console.get("/console/login")
        token = hidden(login.text, "login_token")
        signed_in = await console.post(
            "/console/login", data={"api_key": API_KEY, "login_token": token}
        )
        assert signed_in.status_code == 303
        page = await console.get("/console/subscriptions")
        assert created["public_key"] in page.text
        assert "whsk_" not in page.text
        rotated = await console.post(
            f"/console/subscriptions/{created['id']}/rotate",
            data={"csrf": hidden(page.text, "csrf")},
        )
        assert rotated.status_code == 200, rotated.text
        new_key = (await shown(s, created["id"]))["public_key"]
        assert new_key != created["public_key"]
        assert new_key in rotated.text
        assert "whsk_" not in rotated.text
        assert "whsec_" not in rotated.text
