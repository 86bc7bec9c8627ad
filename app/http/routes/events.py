"""The events as recorded, oldest first: what a consumer that cannot take webhooks, or that
missed some, reads instead."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.http.contracts.events import EventFilters, EventPage, event_page, parse_event_query
from app.http.openapi import operation
from app.store import events


class EventRoutes:
    """Uses: the database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def routes(self) -> list[Route]:
        return [Route("/events", self.list, methods=["GET"])]

    @operation({200: EventPage}, query=EventFilters)
    async def list(self, request: Request) -> JSONResponse:
        """Every recorded event, oldest first, a page at a time: pull instead of push.

        Each is the body its webhooks carry (type, timestamp, data) with their webhook-id as
        its id, whether or not any subscription wanted it. Read on from next_cursor, which
        every page gives (an empty page: nothing newer yet, ask again later with the same
        cursor); events that arrive meanwhile come after it, so none is missed. An event
        recorded just after one whose transaction failed may wait up to a minute to be
        listed. Events are kept for ICEHOOK_RETENTION (purged with their deliveries), so
        read on within that time.
        """
        query = parse_event_query(request.query_params.multi_items())
        async with self.sessionmaker() as session:
            found = await events.page(session, query)
        return JSONResponse(event_page(found, query))
