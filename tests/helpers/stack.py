"""A running icehook (API and worker) and ICE simulator in this process, on real sockets.

``stack(database_url, **simulator_behaviour)`` yields a ``Stack`` with HTTP clients for
icehook's API, for icehook as ICE reaches it, and for the simulator's admin routes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import sqlalchemy as sa

from app.core.access import ApiKey, Role
from app.settings import Settings
from app.simulator import SimulatorSettings, create_simulator_app
from app.telemetry.tracing import OFF, Tracing
from app.wiring import create_app
from tests.helpers.history import rows
from tests.helpers.pooler import DATABASE_POOLER
from tests.helpers.servers import free_port, http_client, serve

KEY_ID, SECRET, API_KEY = "flow-ak", "flow-secret", "flow-api-key-0123"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}


@dataclasses.dataclass
class Stack:
    api: httpx.AsyncClient  # icehook, with the API key
    sim: httpx.AsyncClient  # the simulator's admin routes
    callbacks: httpx.AsyncClient  # icehook, as ICE reaches it (no API key)
    database_url: str

    async def submit(self, **body: Any) -> dict[str, Any]:
        response = await self.api.post("/v1/jobs", json={"OutputMediaConfig": OUTPUT, **body})
        assert response.status_code in (201, 202), response.text
        return response.json()  # type: ignore[no-any-return]

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def truth(self, ice_job_id: str) -> dict[str, Any]:
        return (await self.sim.get(f"/_sim/jobs/{ice_job_id}")).json()  # type: ignore[no-any-return]

    async def token_of(self, ice_job_id: str) -> str:
        """The callback token, read off what ICE (the simulator) was given."""
        user_data = json.loads((await self.truth(ice_job_id))["user_data"])
        return str(user_data["NotifyAddress"]).rsplit("/", 1)[1]

    async def rows(self, statement: sa.Select[Any]) -> list[Any]:
        return await rows(self.database_url, statement)


@contextlib.asynccontextmanager
async def stack(
    database_url: str,
    *,
    sweep_after: float = 3600,
    icehook: Mapping[str, Any] | None = None,
    temporary_credentials: bool = False,
    tracing: Tracing = OFF,
    **behaviour: Any,
) -> AsyncIterator[Stack]:
    """``behaviour``: the simulator's settings; ``icehook``: changes to icehook's settings;
    ``temporary_credentials``: icehook has no AccessKey, only the simulator's STS
    credentials through a credentials URI; ``tracing``: icehook's (the simulator is never
    traced)."""
    sim_settings = SimulatorSettings(access_keys={KEY_ID: SECRET}, **behaviour)
    port = free_port()
    async with serve(create_simulator_app(sim_settings)) as sim_url:
        settings = Settings(
            database_url=database_url,
            public_url=f"http://127.0.0.1:{port}",
            api_keys=(ApiKey(Role.ADMIN, API_KEY),),
            ice_endpoint=sim_url,
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
            sweep_after_seconds=sweep_after,
            # The suite's webhook receivers listen on loopback, which icehook refuses unless
            # admitted (as it is here, explicitly).
            allowed_webhook_nets=(ipaddress.ip_network("127.0.0.0/8"),),
            database_pooler=DATABASE_POOLER,
        )
        if temporary_credentials:
            settings = dataclasses.replace(
                settings,
                access_key_id=None,
                access_key_secret=None,
                credentials_uri=f"{sim_url}/_sim/sts",
            )
        settings = dataclasses.replace(settings, **(icehook or {}))
        async with (
            serve(create_app(settings, workers=True, tracing=tracing), port=port) as url,
            http_client(
                base_url=url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=30
            ) as api,
            http_client(base_url=sim_url, timeout=30) as sim,
            http_client(base_url=url, timeout=30) as callbacks,
        ):
            yield Stack(api, sim, callbacks, database_url)


def envelope(
    ice_job_id: str, status: str, event: str = "ProduceMediaComplete", **more: Any
) -> dict[str, Any]:
    return {
        "EventType": event,
        "UserId": 1234567890123456,
        "EventTime": more.pop("EventTime", "2026-11-22T08:00:05Z"),
        "MessageBody": {"Status": status, "JobId": ice_job_id, "UserData": "{}", **more},
    }
