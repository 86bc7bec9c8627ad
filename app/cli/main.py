"""The ``icehook`` command.

Every command reads the settings once, at start. A configuration error prints one line
naming the variable and exits with status 2. ``serve``, ``simulator`` and ``demo`` run
their servers in one event loop; icehook, not uvicorn, owns SIGTERM and SIGINT, so every
server shuts down gracefully and the process exits normally (and the embedded database, if
this was its last user, is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence

from app.cli import operate, usage
from app.cli.demo import setup as demo
from app.cli.demo.drive import drive
from app.cli.demo.receiver import Receiver, create_receiver_app
from app.cli.servers import (
    SIMULATOR_LIMITS,
    Served,
    bind,
    freeze_heap,
    run,
    run_servers,
    url_of,
    url_of_host,
)
from app.core.access import ApiKey, Role
from app.core.errors import ApiError, ConfigError, IceError, ValidationError
from app.core.retention import Purgeable
from app.core.values import parse_positive
from app.flows.lifecycle import Shutdown
from app.http import edge
from app.http.middleware import new_api_key
from app.ice.credentials import credentials_for
from app.settings import Settings, log_format_from_env, secret_text
from app.simulator import SimulatorSettings, create_simulator_app
from app.simulator.settings import (
    ACCESS_KEYS_VARIABLE,
    CHOICES,
    env_variable,
    new_access_key,
    shown_defaults,
)
from app.store import embedded, schema
from app.store.engine import check_connection, create_engine, create_sessionmaker
from app.telemetry import logs
from app.telemetry.tracing import TRACING_VARIABLES, Tracing, from_environment
from app.wiring import create_app, create_purger, create_worker_app, run_worker

EXIT_CONFIG = 2
SIMULATOR_STOP_SECONDS = 5.0

logger = logging.getLogger("icehook")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        logs.configure(log_format_from_env(os.environ))
        run(args)
    except ConfigError as exc:
        print(f"icehook: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def _parser() -> argparse.ArgumentParser:
    parser = usage.Parser(
        prog="icehook", description="Alibaba Cloud ICE jobs, callbacks and webhooks."
    )
    parser.add_argument("--version", action="version", version=f"icehook {usage.version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    traced = usage.environment([*usage.service_variables(), *TRACING_VARIABLES])
    serve = commands.add_parser(
        "serve", help="the HTTP API and the background workers", epilog=traced
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--simulate", action="store_true", help="also run the ICE simulator and use it as ICE"
    )
    serve.add_argument(
        "--simulator-port",
        type=int,
        default=0,
        help="the simulator's port, with --simulate (default: a free port)",
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="the HTTP API and the callback intake only; run `icehook worker` for the rest",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="the background workers only", epilog=traced)
    worker.add_argument(
        "--host", default="127.0.0.1", help="address of /healthz, /readyz and /metrics"
    )
    worker.add_argument(
        "--port",
        type=int,
        default=None,
        help="serve /healthz, /readyz and /metrics on this port (default: no HTTP at all)",
    )
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser(
        "migrate", help="bring the database schema to its latest revision"
    )
    migrate.set_defaults(run=_migrate)

    purge = commands.add_parser(
        "purge",
        help="remove now what ICEHOOK_RETENTION and ICEHOOK_HISTORY_RETENTION let go "
        "(workers also do it once a minute)",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    purge.add_argument("--json", action="store_true", help="the counts as JSON, for scripts")
    purge.set_defaults(run=_purge)

    simulator = commands.add_parser(
        "simulator",
        help="the ICE simulator alone",
        epilog=usage.environment(usage.simulator_variables()),
    )
    simulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulator.add_argument("--port", type=int, default=9000, help="port to listen on")
    defaults = shown_defaults()
    for name in SimulatorSettings.BEHAVIOUR:
        choices = f"; one of {', '.join(CHOICES[name])}" if name in CHOICES else ""
        simulator.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"sim_{name}",
            metavar="VALUE",
            help=(
                f"{SimulatorSettings.MEANINGS[name]}{choices} (default: {defaults[name]}, "
                f"or {env_variable(name)})"
            ).replace("%", "%%"),  # argparse formats help with %
        )
    simulator.set_defaults(run=_simulator)

    demo_command = commands.add_parser(
        "demo",
        help="the whole product at work: service, simulator, jobs, callbacks, webhooks",
        description=textwrap.fill(
            "Run the service, the ICE simulator and a webhook receiver on free loopback ports, "
            "submit a few jobs through the API (one callback dropped, some duplicated, one job "
            "failing), show what happens, and print a summary. Exits 0 when every job is final "
            "and every event was delivered and verified, else 1.",
            width=88,
        ),
    )
    demo_command.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=demo.DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="give up after this long",
    )
    demo_command.set_defaults(run=_demo)
    operate.add_commands(commands, _operate)
    usage.add_epilogs(parser, usage.environment(usage.service_variables()))
    return parser


def _migrate(args: argparse.Namespace) -> None:
    _prepare(Settings.from_env(os.environ))
    print(f"icehook: schema at {schema.head_revision()}")


def _serve(args: argparse.Namespace) -> None:
    settings = Settings.from_env(os.environ)
    tracing = _tracing()
    try:
        _serve_traced(args, settings, tracing)
    finally:
        tracing.close()


def _tracing() -> Tracing:
    """Tracing as the ``OTEL_*`` variables ask (off unless they do): app/telemetry/tracing.py."""
    return from_environment(os.environ, version=usage.version())


def _serve_traced(args: argparse.Namespace, settings: Settings, tracing: Tracing) -> None:
    apps: list[Served] = []
    if args.simulate:
        sim_settings = _simulator_settings(os.environ, {})
        sim_socket = bind("127.0.0.1", args.simulator_port, "--simulator-port")
        key_id, secret = next(iter(sim_settings.access_keys.items()))
        settings = dataclasses.replace(
            settings,
            ice_endpoint=url_of(sim_socket),
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=None,
        )
        apps.append(Served(create_simulator_app(sim_settings), sim_socket, SIMULATOR_LIMITS))
        print(f"icehook: ICE simulator at {url_of(sim_socket)}", file=sys.stderr)
        if not settings.api_keys:
            key = new_api_key()
            settings = dataclasses.replace(settings, api_keys=(ApiKey(Role.ADMIN, key),))
            print(f"icehook: generated API key for this run: {key}", file=sys.stderr)
    else:
        _require_ice_credentials(settings)
        _require_api_keys(
            settings,
            "serve never opens the /v1 API without keys (serve --simulate "
            "generates one for a first run)",
        )
    api_socket = bind(args.host, args.port)
    if settings.public_url is None:
        host, port = api_socket.getsockname()[:2]
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        settings = dataclasses.replace(settings, public_url=url_of_host(reachable, port))
    settings = _prepare(settings)
    shutdown = Shutdown(settings.shutdown_timeout_seconds)
    app = create_app(settings, workers=not args.no_worker, shutdown=shutdown, tracing=tracing)
    apps.insert(0, Served(app, api_socket, edge.limits_of(settings)))
    print(f"icehook: serving at {url_of(api_socket)}", file=sys.stderr)
    run_servers(apps, shutdown)


def _require_api_keys(settings: Settings, why: str) -> None:
    if not settings.api_keys:
        raise ConfigError("ICEHOOK_API_KEYS", f"required: {why}")


def _require_ice_credentials(settings: Settings) -> None:
    """Stop with one line unless ICE credentials can be had now: an AccessKey pair, or
    what Alibaba Cloud's credential chain finds (app/ice/credentials.py)."""
    settings.require_whole_access_key()
    try:
        asyncio.run(credentials_for(settings).current())
    except IceError as exc:
        raise ConfigError(
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "required to call ICE, unless temporary credentials are configured (see "
            f"docs/configuration.md, Credentials) or with --simulate: {exc.message}",
        ) from None


def _demo(args: argparse.Namespace) -> None:
    """The service, the simulator and ``app/demo.py``'s receiver in one event loop, driven
    through the API by ``demo.drive`` until every job is final and every event verified."""
    demo.quiet_logs()
    settings = Settings.from_env(os.environ)
    api_socket, sim_socket, receiver_socket = (bind("127.0.0.1", 0) for _ in range(3))
    setup = demo.make_setup(
        api_url=url_of(api_socket),
        simulator_url=url_of(sim_socket),
        receiver_url=url_of(receiver_socket),
        database=demo.describe_database(settings),
    )
    if settings.database_url is None:
        print(f"icehook demo: starting the {setup.database}", flush=True)
    settings = _prepare(demo.service_settings(settings, setup))
    receiver = Receiver()
    shutdown = Shutdown(settings.shutdown_timeout_seconds)
    code = run_servers(
        [
            Served(
                create_app(settings, workers=True, shutdown=shutdown),
                api_socket,
                edge.limits_of(settings),
            ),
            Served(
                create_simulator_app(demo.simulator_settings(setup)), sim_socket, SIMULATOR_LIMITS
            ),
            Served(create_receiver_app(receiver), receiver_socket, edge.EdgeLimits()),
        ],
        shutdown,
        main=lambda: drive(setup, receiver, time_limit=args.timeout),
    )
    if code is None:
        print("icehook demo: stopped before it finished", file=sys.stderr)
        code = 1
    sys.exit(code)


def _worker(args: argparse.Namespace) -> None:
    settings = Settings.from_env(os.environ)
    tracing = _tracing()
    try:
        _require_ice_credentials(settings)
        if args.port is not None:
            _require_api_keys(settings, "worker --port serves /metrics behind them")
            health_socket = bind(args.host, args.port)
        settings = _prepare(settings)
        if args.port is not None:
            shutdown = Shutdown(settings.shutdown_timeout_seconds)
            app = create_worker_app(settings, shutdown, tracing)
            print(f"icehook: worker running, health at {url_of(health_socket)}", file=sys.stderr)
            run_servers([Served(app, health_socket, edge.limits_of(settings))], shutdown)
            return

        async def work() -> None:
            shutdown = Shutdown(settings.shutdown_timeout_seconds)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, shutdown.signal)
            print("icehook: worker running", file=sys.stderr)
            freeze_heap()
            await run_worker(settings, shutdown, tracing)

        run(work())
    finally:
        tracing.close()


def _operate(args: argparse.Namespace, command: operate.Command) -> None:
    """Run an operator command (``operate``) in one transaction on the configured database."""
    logging.getLogger().setLevel(logging.WARNING)  # the answer, not the service's log lines
    settings = _prepare(Settings.from_env(os.environ), migrate=False)
    url = settings.database_url
    assert url is not None

    async def execute() -> None:
        engine = create_engine(
            url, timeout=settings.database_timeout_seconds, pooled=settings.database_pooled
        )
        try:
            async with create_sessionmaker(engine).begin() as session:
                await command(args, session, settings)
        finally:
            await engine.dispose()

    try:
        run(execute())
    except ValidationError as exc:
        raise operate.refusal(exc) from None
    except ApiError as exc:  # it does not exist, or cannot be done now
        print(f"icehook: {exc.message}", file=sys.stderr)
        sys.exit(operate.EXIT_REFUSED)


def _purge(args: argparse.Namespace) -> None:
    """``icehook purge``: in many short transactions, not one (``flows.retention``)."""
    logging.getLogger().setLevel(logging.WARNING)
    settings = _prepare(Settings.from_env(os.environ), migrate=False)
    url = settings.database_url
    assert url is not None

    async def execute() -> dict[Purgeable, int]:
        engine = create_engine(
            url, timeout=settings.database_timeout_seconds, pooled=settings.database_pooled
        )
        try:
            purger = create_purger(settings, create_sessionmaker(engine))
            return await (purger.count() if args.dry_run else purger.purge())
        finally:
            await engine.dispose()

    operate.show_purged(args, run(execute()), settings)


def _simulator(args: argparse.Namespace) -> None:
    flags = {
        name: getattr(args, f"sim_{name}")
        for name in SimulatorSettings.BEHAVIOUR
        if getattr(args, f"sim_{name}") is not None
    }
    sim_socket = bind(args.host, args.port)
    app = create_simulator_app(_simulator_settings(os.environ, flags))
    print(f"icehook: ICE simulator at {url_of(sim_socket)}", file=sys.stderr)
    run_servers([Served(app, sim_socket, SIMULATOR_LIMITS)], Shutdown(SIMULATOR_STOP_SECONDS))


def _prepare(settings: Settings, *, migrate: bool = True) -> Settings:
    """``settings`` as the command runs with them: their secrets kept out of the logs, the
    database resolved (the embedded one started if needed), checked, and migrated (without
    ``migrate``: required to be at the revision this icehook knows)."""
    logs.protect_settings(settings)
    url = embedded.resolve_database_url(settings.database_url, settings.data_dir)
    pooled = settings.database_pooled
    asyncio.run(check_connection(url, pooled=pooled))
    if migrate:
        schema.upgrade(url, pooled=pooled)
    else:
        _require_known_schema(url, pooled)
    return dataclasses.replace(settings, database_url=url)


def _require_known_schema(url: str, pooled: bool) -> None:
    """Stop unless the schema is at this icehook's head revision: an operator command only
    reads and changes rows, and never moves a production schema by being newer."""

    async def revision() -> str | None:
        engine = create_engine(url, timeout=10, pooled=pooled)
        try:
            return await schema.current_revision(engine)
        finally:
            await engine.dispose()

    at, head = asyncio.run(revision()), schema.head_revision()
    if at == head:
        return
    if at is None:
        problem = "holds no icehook schema yet: run `icehook migrate` first"
    elif schema.is_known_revision(at):
        problem = f"is at schema {at}, older than this icehook's {head}: run `icehook migrate`"
    else:
        problem = (
            f"is at schema {at}, which this icehook ({head}) does not know: "
            "use the icehook that migrated it"
        )
    raise ConfigError("ICEHOOK_DATABASE_URL", f"the database {problem}")


def _simulator_settings(environ: Mapping[str, str], flags: Mapping[str, str]) -> SimulatorSettings:
    """Simulator settings from the environment and flags; a generated key pair on a first run."""
    env = dict(environ)
    has_pair = (
        env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
        and secret_text(env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")[0] is not None
    )
    if not has_pair and secret_text(env, ACCESS_KEYS_VARIABLE)[0] is None:
        key_id, secret = new_access_key("sim")
        env[ACCESS_KEYS_VARIABLE] = f"{key_id}:{secret}"
        print(
            f"icehook: the simulator accepts the generated AccessKey pair {key_id} / {secret}",
            file=sys.stderr,
        )
    settings = SimulatorSettings.from_env(env)
    logs.protect(*settings.access_keys.values())
    try:
        return settings.replace(flags)
    except ConfigError as exc:
        flag = "--" + exc.variable.replace("_", "-")
        raise ConfigError(flag, str(exc).split(": ", 1)[-1]) from None


def _positive_seconds(raw: str) -> float:
    try:
        return parse_positive(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
