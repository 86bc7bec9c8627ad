"""The operator commands (``icehook jobs|deliveries|subscriptions``) as a real process,
against the database a running icehook wrote: the same answers as the HTTP API."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers.processes import run_icehook
from tests.helpers.receiver import receiver
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import eventually


async def _settled(s: Stack, jobs: list[dict[str, Any]], deliveries: int) -> bool:
    statuses = [(await s.job(job["id"]))["status"] for job in jobs]
    listed = (await s.api.get("/v1/deliveries", params={"status": "delivered"})).json()["items"]
    return all(status == "succeeded" for status in statuses) and len(listed) == deliveries


async def test_operators_see_what_the_api_shows_and_act_on_it(
    database_url: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "ICEHOOK_DATABASE_URL": database_url}

    async def icehook(*args: str, more: dict[str, str] | None = None) -> tuple[int, str, str]:
        return await run_icehook(*args, env={**env, **(more or {})})

    async def as_json(*args: str) -> Any:
        code, out, err = await icehook(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        created = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        subscription = created.json()
        r.secrets.append(subscription["secret"])
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await eventually(lambda: _settled(s, jobs, deliveries=6))

        api_jobs = (await s.api.get("/v1/jobs")).json()
        assert await as_json("jobs", "list") == api_jobs
        page = await as_json("jobs", "list", "--limit", "2", "--project-id", "p-1")
        assert [job["project_id"] for job in page["items"]] == ["p-1"]
        code, out, err = await icehook("jobs", "list")
        assert code == 0, err
        header, *rows = out.splitlines()
        assert header.split() == [
            "id",
            "status",
            "ice_job_id",
            "project_id",
            "created_at",
            "updated_at",
        ]
        assert [row.split()[0] for row in rows] == [job["id"] for job in api_jobs["items"]]
        code, _, err = await icehook("jobs", "list", "--status", "lost")
        assert (code, err.startswith("icehook: --status: must be one of")) == (2, True), err

        job_id = jobs[0]["id"]
        assert await as_json("jobs", "show", job_id) == await s.job(job_id)
        assert await as_json("jobs", "show", jobs[0]["ice_job_id"]) == await s.job(job_id)
        code, out, err = await icehook("jobs", "show", job_id)
        assert code == 0, err
        for section in ("events (2)", "callbacks (1)", "deliveries (2)"):
            assert section in out
        assert (await icehook("jobs", "show", "no-such-job"))[:1] == (1,)

        api_deliveries = (await s.api.get("/v1/deliveries")).json()
        assert await as_json("deliveries", "list") == api_deliveries
        mine = await as_json("deliveries", "list", "--job-id", job_id)
        assert {d["job_id"] for d in mine["items"]} == {job_id}
        first = api_deliveries["items"][-1]
        retried = await as_json("deliveries", "retry", str(first["id"]))
        assert (retried["id"], retried["attempts"]) == (first["id"], 0)

        async def sent_again() -> bool:
            sent = [request for request in r.requests if request.webhook_id == first["event_id"]]
            return len(sent) >= 2

        await eventually(sent_again)
        assert (await icehook("deliveries", "retry", "999999"))[:1] == (1,)

        listed = await as_json("subscriptions", "list")
        assert [item["id"] for item in listed["items"]] == [subscription["id"]]
        code, _, err = await icehook("subscriptions", "create", "--url", "http://127.0.0.1:9/hook")
        assert code == 2, err
        assert err.startswith("icehook: --url: 127.0.0.1: 127.0.0.1 is a loopback address"), err
        allowed = {"ICEHOOK_ALLOWED_WEBHOOK_NETS": "127.0.0.0/8"}
        code, out, err = await icehook(
            "subscriptions",
            "create",
            "--url",
            "http://127.0.0.1:9/hook",
            "--event-types",
            "job.succeeded,batch.*",
            "--json",
            more=allowed,
        )
        assert code == 0, err
        made = json.loads(out)
        assert made["event_types"] == ["job.succeeded", "batch.*"]
        assert made["secret"].startswith("whsec_")
        assert (await s.api.get(f"/v1/subscriptions/{made['id']}")).status_code == 200
        assert (await icehook("subscriptions", "delete", made["id"]))[0] == 0
        assert (await s.api.get(f"/v1/subscriptions/{made['id']}")).status_code == 404
        assert (await icehook("subscriptions", "delete", made["id"]))[0] == 1
