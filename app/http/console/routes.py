"""The web console, served under ``/console``: pages for the people who look things up, and
buttons for those who may change things.

Pages are rendered on the server (Jinja2, every value escaped) from the same store reads
and resource shapes as the API; every button calls the same method as its API operation
(``JobRoutes.reconcile``, ``DeliveryRoutes.retry_now``, ``SubscriptionRoutes.*``), so the
console can do nothing the API cannot. Reading needs a session of role ``read`` or
``admin``, a button ``admin``; every form that changes something carries the session's
CSRF token, and the sign-in form a token of its own (``sessions``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from app.core.access import ApiKey, Role, grants
from app.core.errors import ApiError, NotFound
from app.core.events import EVENT_TYPES, PATTERNS, job_resource
from app.core.statuses import (
    TERMINAL_STATUSES,
    CallbackOutcome,
    DeliveryStatus,
    JobKind,
    JobStatus,
)
from app.http.console import charts
from app.http.console.forms import (
    cookie_flags,
    is_console_path,
    local_target,
    next_url,
    one,
    read_form,
    utc,
)
from app.http.console.rendering import DONE, TONES, environment
from app.http.console.sessions import (
    COOKIE,
    LOGIN_SECONDS,
    SESSION_SECONDS,
    Session,
    Sessions,
    csrf_matches,
)
from app.http.contracts.callbacks import callback_resource, parse_callback_query
from app.http.contracts.common import encode_cursor, encode_id_cursor, page_resource
from app.http.contracts.deliveries import (
    attempt_resource,
    delivery_resource,
    parse_delivery_query,
)
from app.http.contracts.jobs import parse_job_query, timeline_resource
from app.http.contracts.subscriptions import subscription_resource
from app.http.routes.deliveries import DeliveryRoutes, delivery_id_in
from app.http.routes.jobs import JobRoutes, find_job
from app.http.routes.subscriptions import SubscriptionRoutes, subscription_id_in
from app.store import audit, subscriptions

HERE = Path(__file__).parent
LOGIN_COOKIE = "icehook_console_login"
GOOD = frozenset({JobStatus.SUCCEEDED, JobStatus.FINISHED})
Handler = Callable[[Any, Request, Session, Mapping[str, list[str]]], Awaitable[Response]]


def console(role: Role) -> Callable[[Handler], Callable[[Any, Request], Awaitable[Response]]]:
    """A console endpoint that needs a session of ``role``: without a session a page
    sends to the sign-in form (a form is refused); a form's CSRF token must match the
    session's; an ``ApiError`` is answered as a page with its status."""

    def wrap(handler: Handler) -> Callable[[Any, Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(self: ConsoleRoutes, request: Request) -> Response:
            session = await self.sessions.find(request.cookies.get(COOKIE))
            posted = request.method == "POST"
            if session is None:
                if posted:
                    return self.refusal(request, None, 403, "Sign in first.")
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = urlencode({"next": here})
                return RedirectResponse(f"/console/login?{target}", status_code=303)
            if not grants(session.role, role):
                message = f"Your key's role is {session.role}; this needs {role}."
                return self.refusal(request, session, 403, message)
            try:
                form = await read_form(request) if posted else {}
                if posted and not csrf_matches(session, one(form, "csrf")):
                    return self.refusal(request, session, 403, "The form is stale; try again.")
                return await handler(self, request, session, form)
            except ApiError as error:
                return self.refusal(request, session, error.status, error.message)

        return endpoint

    return wrap


class ConsoleRoutes:
    """Uses: the database, the API keys (to sign in), and the API's resources for every
    action."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keys: tuple[ApiKey, ...],
        jobs: JobRoutes,
        subscriptions: SubscriptionRoutes,
        deliveries: DeliveryRoutes,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.sessions = Sessions(sessionmaker, keys)
        self.jobs_api = jobs
        self.subscriptions_api = subscriptions
        self.deliveries_api = deliveries
        self.templates = Jinja2Templates(env=environment())

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.overview, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/jobs", self.job_list, methods=["GET"]),
            Route("/jobs/{id}", self.job, methods=["GET"]),
            Route("/jobs/{id}/confirm", self.confirm, methods=["POST"]),
            Route("/callbacks", self.callback_list, methods=["GET"]),
            Route("/deliveries", self.delivery_list, methods=["GET"]),
            Route("/deliveries/{id}/retry", self.retry_delivery, methods=["POST"]),
            Route("/subscriptions", self.subscription_list, methods=["GET"]),
            Route("/subscriptions", self.create_subscription, methods=["POST"]),
            Route("/subscriptions/{id}/{action}", self.subscription_action, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]

    def render(
        self,
        request: Request,
        session: Session | None,
        template: str,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        done = DONE.get(request.query_params.get("done", ""))
        return self.templates.TemplateResponse(
            request,
            template,
            {"session": session, "admin": session is not None and session.role is Role.ADMIN}
            | {"done": done, "path": request.url.path}
            | context,
            status_code=status_code,
        )

    def listed(
        self,
        request: Request,
        session: Session,
        template: str,
        page: Mapping[str, Any],
        **context: Any,
    ) -> Response:
        """A list page: its items, the filters as asked, and the address of the next page."""
        return self.render(
            request,
            session,
            template,
            page=page,
            next_url=next_url(request, page["next_cursor"]),
            params=request.query_params,
            **context,
        )

    def refusal(
        self, request: Request, session: Session | None, status: int, message: str
    ) -> Response:
        return self.render(request, session, "error.html", status, status=status, message=message)

    # Signing in and out.

    async def login_page(self, request: Request) -> Response:
        token, cookie = self.sessions.login_token()
        response = self.render(
            request, None, "login.html", login_token=token, next=local_target(request, "next")
        )
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=LOGIN_SECONDS,
            path="/console/login",
            **cookie_flags(request),
        )
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except ApiError as error:
            return self.refusal(request, None, error.status, error.message)
        if not self.sessions.login_token_matches(
            request.cookies.get(LOGIN_COOKIE), one(form, "login_token")
        ):
            return self.refusal(request, None, 403, "The sign-in form is stale; load it again.")
        key = self.sessions.keys.find(one(form, "api_key") or "")
        if key is None:
            return self.refusal(request, None, 401, "That is not one of this service's API keys.")
        if not grants(key.role, Role.READ):
            return self.refusal(request, None, 403, f"A {key.role} key cannot use the console.")
        _, cookie = await self.sessions.sign_in(key)
        target = one(form, "next") or ""
        response = RedirectResponse(
            target if is_console_path(target) else "/console/", status_code=303
        )
        response.set_cookie(
            COOKIE, cookie, max_age=SESSION_SECONDS, path="/", **cookie_flags(request)
        )
        response.delete_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    @console(Role.READ)
    async def logout(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        await self.sessions.sign_out(session)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", **cookie_flags(request))
        return response

    # Pages.

    @console(Role.READ)
    async def overview(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        now = datetime.now(UTC)
        day_ago = now - timedelta(days=1)
        async with self.sessionmaker() as db:
            counts = await audit.counts(db)
            finished = await audit.finished_per_hour(db, day_ago)
            judged = await audit.callbacks_judged(db, day_ago)
            in_use = await subscriptions.in_use(db)
        by_status = {status.value: counts.jobs.get(status, 0) for status in JobStatus}
        by_outcome = {outcome.value: judged.get(outcome, 0) for outcome in CallbackOutcome}
        troubled = [
            subscription_resource(row)
            for row in in_use
            if not row["enabled"] or row["failing_since"] is not None
        ]
        oldest = counts.oldest_pending
        columns = charts.hourly(finished, now, GOOD)
        return self.render(
            request,
            session,
            "overview.html",
            job_bars=charts.bars(by_status, TONES),
            columns=columns,
            peak=max(column.good + column.bad for column in columns),
            column_height=charts.COLUMN_HEIGHT,
            callback_bars=charts.bars(by_outcome, TONES),
            pending=counts.pending_deliveries,
            oldest_age=charts.elapsed((now - oldest).total_seconds()) if oldest else None,
            troubled=troubled,
            subscription_count=len(in_use),
            fate_unknown=counts.fate_unknown,
        )

    @console(Role.READ)
    async def job_list(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        query = parse_job_query(request.query_params)
        async with self.sessionmaker() as db:
            found = await audit.jobs(db, query)
        page = page_resource(
            found, job_resource, lambda last: encode_cursor(last["created_at"], last["id"])
        )
        statuses = [status.value for status in JobStatus]
        return self.listed(request, session, "jobs.html", page, statuses=statuses)

    @console(Role.READ)
    async def job(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        async with self.sessionmaker() as db:
            row = await find_job(db, request.path_params["id"])
            timeline = await audit.timeline(db, row["id"])
            attempts = await audit.attempts(db, [d["id"] for d in timeline.deliveries])
            subs = await audit.sub_jobs(db, row["id"]) if row["kind"] == JobKind.BATCH else []
            urls = {s["id"]: s["url"] for s in await subscriptions.in_use(db)}
        job = timeline_resource(row, timeline)
        for delivery in job["deliveries"]:
            delivery["attempt_log"] = [attempt_resource(a) for a in attempts[delivery["id"]]]
            delivery["url"] = urls.get(uuid.UUID(delivery["subscription_id"]))
        return self.render(
            request,
            session,
            "job.html",
            job=job,
            marks=charts.timeline_marks(timeline.events, TERMINAL_STATUSES),
            width=charts.TIMELINE_WIDTH,
            sub_jobs=[job_resource(s) for s in subs],
        )

    @console(Role.READ)
    async def callback_list(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        query = parse_callback_query(request.query_params)
        async with self.sessionmaker() as db:
            found = await audit.callbacks(db, query)
        page = page_resource(found, callback_resource, lambda last: encode_id_cursor(last["id"]))
        outcomes = [outcome.value for outcome in CallbackOutcome]
        return self.listed(request, session, "callbacks.html", page, outcomes=outcomes)

    @console(Role.READ)
    async def delivery_list(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        query = parse_delivery_query(request.query_params)
        async with self.sessionmaker() as db:
            found = await audit.deliveries(db, query)
        page = page_resource(found, delivery_resource, lambda last: encode_id_cursor(last["id"]))
        statuses = [status.value for status in DeliveryStatus]
        return self.listed(
            request, session, "deliveries.html", page, statuses=statuses, event_types=EVENT_TYPES
        )

    @console(Role.READ)
    async def subscription_list(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        return self.render(
            request,
            session,
            "subscriptions.html",
            items=await self._subscription_items(),
            patterns=sorted(PATTERNS),
            said=None,
        )

    # Buttons: each calls its API operation's own method.

    @console(Role.ADMIN)
    async def confirm(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        job = await self.jobs_api.reconcile(request.path_params["id"])
        return RedirectResponse(f"/console/jobs/{job['id']}?done=confirmed", status_code=303)

    @console(Role.ADMIN)
    async def retry_delivery(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        await self.deliveries_api.retry_now(delivery_id_in(request))
        back = one(form, "back") or ""
        target = back if is_console_path(back) else "/console/deliveries"
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}done=retried", status_code=303)

    @console(Role.ADMIN)
    async def create_subscription(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        body = {
            "url": one(form, "url") or "",
            "event_types": form.get("event_types", []),
            "description": one(form, "description") or "",
        }
        created = await self.subscriptions_api.create_subscription(body)
        return self.secret_shown(request, session, created, "created", 201)

    @console(Role.ADMIN)
    async def subscription_action(
        self, request: Request, session: Session, form: Mapping[str, list[str]]
    ) -> Response:
        action, subscription_id = request.path_params["action"], subscription_id_in(request)
        api = self.subscriptions_api
        if action == "rotate":
            rotated = await api.rotate(subscription_id)
            return self.secret_shown(request, session, rotated, "rotated", 200)
        if action in ("enable", "disable"):
            await api.change(subscription_id, {"enabled": action == "enable"})
            return RedirectResponse(f"/console/subscriptions?done={action}d", status_code=303)
        if action in ("replay", "retry-dead", "recover"):
            period = {"since": utc(one(form, "since"))}
            if one(form, "until"):
                period["until"] = utc(one(form, "until"))
            if action == "replay":
                count = await api.replay_events(subscription_id, period)
                said = f"{count} events queued again."
            elif action == "recover":
                count = await api.recover_events(subscription_id, period)
                said = f"{count} undelivered events queued again."
            else:
                count = await api.retry_dead_deliveries(subscription_id, period)
                said = f"{count} dead deliveries are due again."
            items = await self._subscription_items()
            return self.render(
                request,
                session,
                "subscriptions.html",
                202,
                items=items,
                patterns=sorted(PATTERNS),
                said=said,
            )
        raise NotFound(f"no action {action!r}")

    def secret_shown(
        self,
        request: Request,
        session: Session,
        subscription: dict[str, Any],
        what: str,
        status_code: int,
    ) -> Response:
        """The one page that ever shows a secret: a new one, once (no console page is
        stored by a cache, and nothing can show it again)."""
        return self.render(
            request, session, "secret.html", status_code, subscription=subscription, what=what
        )

    async def _subscription_items(self) -> list[dict[str, Any]]:
        async with self.sessionmaker() as db:
            return [subscription_resource(row) for row in await subscriptions.in_use(db)]
