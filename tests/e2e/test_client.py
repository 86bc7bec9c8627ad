"""The generated typed client (clients/python, ``python clients/generate.py``) against a
live ``icehook serve --simulate``: a job submitted, followed to its end, and listed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from icehook_client import AuthenticatedClient
from icehook_client.api.jobs import create_job, get_job, list_jobs
from icehook_client.models import Job, JobPage, JobStatus, JobSubmission, JobTimeline

from tests.helpers.processes import serve_simulated

API_KEY = "client-test-api-key-0123"
ROOT = Path(__file__).resolve().parents[2]


async def test_the_generated_client_submits_follows_and_lists_a_job(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        serve_simulated(database_url, tmp_path, API_KEY, ICEHOOK_SIM_JOB_SECONDS="0.5") as (
            url,
            _,
        ),
        AuthenticatedClient(base_url=url, token=API_KEY) as client,
    ):
        submission = JobSubmission.from_dict(
            {"ProjectId": "client-p1", "OutputMediaConfig": {"MediaURL": "https://b/o.mp4"}}
        )
        made = await create_job.asyncio(client=client, body=submission)
        assert isinstance(made, Job), made
        assert made.project_id == "client-p1"
        async with asyncio.timeout(30):
            while True:
                job = await get_job.asyncio(str(made.id), client=client)
                assert isinstance(job, JobTimeline), job
                if job.status == JobStatus.SUCCEEDED:
                    break
                await asyncio.sleep(0.2)
        assert job.media_url
        assert job.events[-1].to_status == JobStatus.SUCCEEDED
        page = await list_jobs.asyncio(client=client, project_id="client-p1")
        assert isinstance(page, JobPage)
        assert [listed.id for listed in page.items] == [made.id]


def test_the_committed_client_is_current_with_the_api() -> None:
    """The same check as .ci/run: a change to the API without `python clients/generate.py`
    fails here, naming the files that differ."""
    checked = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, str(ROOT / "clients" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
