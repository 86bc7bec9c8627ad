"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real ``icehook serve --simulate``: what a person with a ``read`` key and one
with an ``admin`` key can see and do.

With ``ICEHOOK_CONSOLE_SCREENSHOTS=docs/console`` the screenshots in the docs are taken
again (else they go to the test's temporary directory). Without a ``chromium`` on the PATH
these tests are skipped, saying so, unless ``ICEHOOK_TEST_BROWSER=required`` (as in
``.ci/run``, which installs it), when they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, ViewportSize, async_playwright, expect

from tests.helpers.processes import serve_simulated
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.servers import http_client
from tests.helpers.waiting import eventually

ADMIN, READ = "admin-key-0123456789", "read-key-0123456789"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out/{jobid}.mp4"}
TIMELINE = {"VideoTracks": [{"VideoTrackClips": [{"MediaURL": "https://b.example/in.mp4"}]}]}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        missing = "no chromium on the PATH: apt-get install chromium"
        if os.environ.get("ICEHOOK_TEST_BROWSER") == "required":
            pytest.fail(missing)
        pytest.skip(missing)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("ICEHOOK_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    where.mkdir(parents=True, exist_ok=True)
    return where


class Site:
    """``icehook serve --simulate``, its API as admin, and two subscribers: one that takes
    every webhook and one that refuses them until told otherwise."""

    def __init__(self, url: str, api: httpx.AsyncClient, good: Receiver, bad: Receiver) -> None:
        self.url, self.api, self.good, self.bad = url, api, good, bad

    async def subscribe(self, hook: Receiver) -> dict[str, Any]:
        created = await self.api.post(
            "/v1/subscriptions", json={"url": hook.url, "event_types": ["*"]}
        )
        assert created.status_code == 201, created.text
        hook.secrets.append(created.json()["secret"])
        return dict(created.json())

    async def finished_job(self, subscribers: int = 2, **user_data: Any) -> dict[str, Any]:
        """A job that succeeded, whose webhooks (two for each of ``subscribers``) are
        settled: delivered or dead."""
        body = {"Timeline": TIMELINE, "OutputMediaConfig": OUTPUT, "UserData": user_data}
        submitted = await self.api.post("/v1/jobs", json=body)
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["id"]

        async def settled() -> bool:
            job = (await self.api.get(f"/v1/jobs/{job_id}")).json()
            return (
                job["status"] == "succeeded"
                and all(d["status"] != "pending" for d in job["deliveries"])
                and len(job["deliveries"]) == 2 * subscribers
            )

        await eventually(settled)
        return dict((await self.api.get(f"/v1/jobs/{job_id}")).json())


@pytest.fixture
async def site(database_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with (
        receiver() as good,
        receiver() as bad,
        serve_simulated(
            database_url,
            tmp_path,
            f"admin:{ADMIN},read:{READ}",
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
            ICEHOOK_DELIVERY_RETRY_SCHEDULE="0.2,0.2",
            ICEHOOK_SIM_JOB_SECONDS="1",
        ) as (url, _log),
        http_client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"}) as api,
    ):
        bad.status = 503
        s = Site(url, api, good, bad)
        await s.subscribe(good)
        await s.subscribe(bad)
        yield s


async def _signed_in(browser: Browser, site: Site, key: str, **options: Any) -> BrowserContext:
    context = await browser.new_context(viewport=LAPTOP, **options)
    page = await context.new_page()
    await page.goto(f"{site.url}/console/jobs")
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{site.url}/console/jobs")  # back where it was going
    await page.close()
    return context


async def test_a_reader_finds_a_job_by_its_ice_job_id_and_sees_its_story(
    browser: Browser, site: Site, shots: Path
) -> None:
    job = await site.finished_job(tenant="acme <b>corp</b>", order=42)
    context = await _signed_in(browser, site, READ)
    page = await context.new_page()
    await page.goto(f"{site.url}/console/")
    await expect(page.get_by_role("heading", name="Jobs by status")).to_be_visible()
    await page.screenshot(path=shots / "overview.png", full_page=True)

    await page.goto(f"{site.url}/console/jobs")
    await page.fill("input[name=q]", job["ice_job_id"])
    await page.press("input[name=q]", "Enter")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(job["ice_job_id"])
    await page.screenshot(path=shots / "jobs.png", full_page=True)
    await rows.first.get_by_role("link").click()

    await expect(page).to_have_url(f"{site.url}/console/jobs/{job['id']}")
    timeline = page.locator("svg.timeline")
    await expect(timeline).to_contain_text("submitted")
    await expect(timeline).to_contain_text("succeeded")
    await expect(timeline).to_contain_text("by callback")
    delivered = page.locator(".delivery", has=page.locator(".badge", has_text="delivered"))
    await expect(delivered.filter(has_text="job.succeeded")).to_contain_text(site.good.url)
    await expect(delivered.filter(has_text="job.succeeded").locator("table")).to_contain_text("200")
    # UserData came from outside: shown as text, never as markup.
    await expect(page.locator("dd pre")).to_contain_text("acme")
    assert await page.locator("dd pre b").count() == 0
    await page.screenshot(path=shots / "job.png", full_page=True)
    # Nothing a reader may not do is offered.
    assert await page.get_by_role("button", name="Retry").count() == 0
    assert await page.get_by_role("button", name="Confirm with ICE now").count() == 0
    await page.goto(f"{site.url}/console/subscriptions")
    assert await page.get_by_role("button", name="Create").count() == 0

    # A phone: the job page fits its width, its tables scroll inside themselves.
    phone = await browser.new_context(viewport=PHONE, storage_state=await context.storage_state())
    small = await phone.new_page()
    await small.goto(f"{site.url}/console/jobs/{job['id']}")
    await expect(small.locator("svg.timeline")).to_be_visible()
    overflow = await small.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await small.screenshot(path=shots / "job-phone.png", full_page=True)

    # A forged form, with the session's own CSRF token even, is refused.
    await page.goto(f"{site.url}/console/deliveries")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    dead = job["deliveries"][0]["id"]
    forged = await page.request.post(
        f"{site.url}/console/deliveries/{dead}/retry", form={"csrf": csrf or ""}
    )
    assert forged.status == 403
    created = await page.request.post(
        f"{site.url}/console/subscriptions",
        form={"csrf": csrf or "", "url": site.good.url, "event_types": "*"},
    )
    assert created.status == 403
    listed = (await site.api.get("/v1/subscriptions")).json()["items"]
    assert len(listed) == 2

    # Signing out ends the session: the pages send to the sign-in form again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{site.url}/console/login")
    await page.goto(f"{site.url}/console/jobs/{job['id']}")
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await phone.close()
    await context.close()


async def test_an_admin_retries_a_dead_delivery_and_creates_a_subscription(
    browser: Browser, site: Site, shots: Path
) -> None:
    job = await site.finished_job(tenant="acme")
    dead = [d for d in job["deliveries"] if d["status"] == "dead"]
    assert len(dead) == 2  # the refusing subscriber's two events
    context = await _signed_in(browser, site, ADMIN)
    page = await context.new_page()

    site.bad.status = 200  # the subscriber is back
    await page.goto(f"{site.url}/console/deliveries?status=dead")
    row = page.locator(f"#delivery-{dead[0]['id']}")
    await expect(row).to_contain_text("dead")
    await page.screenshot(path=shots / "deliveries.png", full_page=True)
    await row.get_by_role("button", name="Retry").click()
    await expect(page.get_by_role("status")).to_have_text("The delivery is due again.")

    async def delivered_again() -> bool:
        answer = await site.api.get(f"/v1/deliveries/{dead[0]['id']}")
        return bool(answer.json()["status"] == "delivered")

    await eventually(delivered_again, 30)
    assert dead[0]["event_id"] in {r.webhook_id for r in site.bad.requests if r.answered == 200}
    await page.goto(f"{site.url}/console/jobs/{job['id']}")
    await expect(page.locator(f"#delivery-{dead[0]['id']} .badge").first).to_have_text("delivered")

    # The other dead one: recovered with what else was not delivered since the job began.
    await page.goto(f"{site.url}/console/subscriptions")
    card = page.locator(f"#subscription-{dead[1]['subscription_id']}")
    recover = card.locator("form[action$='/recover']")
    await recover.locator("input[name=since]").fill(job["created_at"][:19])
    await recover.get_by_role("button", name="Recover").click()
    await expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^[1-9]\d* undelivered events queued again\.$")
    )

    async def recovered() -> bool:
        answer = await site.api.get(f"/v1/deliveries/{dead[1]['id']}")
        return bool(answer.json()["status"] == "delivered")

    await eventually(recovered, 30)

    async with receiver() as newcomer:
        await page.goto(f"{site.url}/console/subscriptions")
        await page.fill("#url", newcomer.url)
        await page.fill("#description", "added from the console")
        await page.get_by_role("button", name="Create").click()
        await expect(page.get_by_role("heading", name="Subscription created")).to_be_visible()
        secret = (await page.locator("#secret").text_content() or "").strip()
        assert secret.startswith("whsec_")
        await page.screenshot(path=shots / "subscription-created.png", full_page=True)
        # Shown once: the list, and the subscription's own resource, never show it.
        await page.goto(f"{site.url}/console/subscriptions")
        await expect(page.locator(".subscription")).to_have_count(3)
        assert secret not in await page.content()
        listed = (await site.api.get("/v1/subscriptions")).json()["items"]
        assert secret not in str(listed)
        # It signs with that secret: a new job's webhooks verify with it.
        newcomer.secrets.append(secret)
        await site.finished_job(3, tenant="later")

        async def verified() -> bool:
            return any(secret in r.verified_with for r in newcomer.requests)

        await eventually(verified, 30)
    await context.close()
