"""The intake benchmark's two baselines, each served alone by uvicorn (one process).

- ``bare_app``: a Starlette route that reads the body and answers 200. Nothing is stored:
  the ceiling of this stack (Starlette on uvicorn) on this machine.
- ``naive_app``: what one writes first with Starlette and the SQLAlchemy ORM: one
  ``AsyncSession`` per request, a mapped class, ``session.add`` and ``commit``, with the
  engine's default settings. The raw callback is committed before the 200, like icehook's.

Both answer ``POST /callbacks/ice/{token}`` (any token) and ``GET /healthz``. The naive
app reads ``BASELINE_DATABASE_URL`` when it starts and creates its table if missing.

::

    BASELINE_DATABASE_URL=postgresql://... uvicorn bench.baselines:naive_app --port 8002
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.store.engine import async_url

CALLBACK_PATH = "/callbacks/ice/{token}"


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


# -- bare -----------------------------------------------------------------------------------


async def bare_callback(request: Request) -> Response:
    await request.body()
    return PlainTextResponse("success")


bare_app = Starlette(
    routes=[
        Route(CALLBACK_PATH, bare_callback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)


# -- naive ORM ------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class RawCallback(Base):
    __tablename__ = "bench_naive_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str]
    body: Mapped[bytes]
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


@contextlib.asynccontextmanager
async def _naive_lifespan(app: Starlette) -> AsyncIterator[None]:
    engine = create_async_engine(async_url(os.environ["BASELINE_DATABASE_URL"]))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    app.state.sessions = async_sessionmaker(engine)
    try:
        yield
    finally:
        await engine.dispose()


async def naive_callback(request: Request) -> Response:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    body = await request.body()
    async with sessions() as session:
        session.add(
            RawCallback(
                token=request.path_params["token"], body=body, headers=dict(request.headers)
            )
        )
        await session.commit()
    return PlainTextResponse("success")


naive_app = Starlette(
    routes=[
        Route(CALLBACK_PATH, naive_callback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=_naive_lifespan,
)
