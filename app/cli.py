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
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from app import admin, db, demo, edge, logs
from app.api import new_api_key
from app.errors import ApiError, ConfigError, ValidationError
from app.lifecycle import Shutdown
from app.main import create_app, open_runtime
from app.settings import Settings, log_format_from_env, parse_positive
from app.simulator import SimulatorSettings, create_simulator_app
from app.simulator.settings import ACCESS_KEYS_VARIABLE, new_access_key
from app.worker import Worker

EXIT_CONFIG = 2
EXIT_STARTUP_FAILED = 3
# ICE's requests carry every parameter but Timeline in the query string (app/ice.py allows
# 32 KiB of it), so the simulator takes longer request heads than icehook's own API.
SIMULATOR_LIMITS = edge.EdgeLimits(max_head_bytes=64 * 1024)
SIMULATOR_STOP_SECONDS = 5.0

logger = logging.getLogger("icehook")

T = TypeVar("T")


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
    parser = argparse.ArgumentParser(
        prog="icehook", description="Alibaba Cloud ICE jobs, callbacks and webhooks."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="the HTTP API and the background workers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--simulate", action="store_true", help="also run the ICE simulator and use it as ICE"
    )
    serve.add_argument(
        "--simulator-port", type=int, default=0, help="with --simulate (default: a free port)"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="the background workers only")
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser(
        "migrate", help="bring the database schema to its latest revision"
    )
    migrate.set_defaults(run=_migrate)

    simulator = commands.add_parser("simulator", help="the ICE simulator alone")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=9000)
    for name in SimulatorSettings.BEHAVIOUR:
        simulator.add_argument(f"--{name.replace('_', '-')}", dest=f"sim_{name}", metavar="VALUE")
    simulator.set_defaults(run=_simulator)

    demo_command = commands.add_parser(
        "demo",
        help="the whole product at work: service, simulator, jobs, callbacks, webhooks",
        description=(
            "Run the service, the ICE simulator and a webhook receiver on free loopback ports, "
            "submit a few jobs through the API (one callback dropped, some duplicated, one job "
            "failing), show what happens, and print a summary. Exits 0 when every job is final "
            "and every event was delivered and verified, else 1."
        ),
    )
    demo_command.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=demo.DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long (default {demo.DEFAULT_TIMEOUT_SECONDS:g})",
    )
    demo_command.set_defaults(run=_demo)
    admin.add_commands(commands, _operate)
    return parser


# -- commands ------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> None:
    _prepare(Settings.from_env(os.environ))
    print(f"icehook: schema at {db.head_revision()}")


def _serve(args: argparse.Namespace) -> None:
    settings = Settings.from_env(os.environ)
    apps: list[Served] = []
    if args.simulate:
        sim_settings = _simulator_settings(os.environ, {})
        sim_socket = _bind("127.0.0.1", args.simulator_port, "--simulator-port")
        key_id, secret = next(iter(sim_settings.access_keys.items()))
        settings = dataclasses.replace(
            settings,
            ice_endpoint=_url_of(sim_socket),
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=None,
        )
        apps.append(Served(create_simulator_app(sim_settings), sim_socket, SIMULATOR_LIMITS))
        print(f"icehook: ICE simulator at {_url_of(sim_socket)}", file=sys.stderr)
        if not settings.api_keys:
            key = new_api_key()
            settings = dataclasses.replace(settings, api_keys=(key,))
            print(f"icehook: generated API key for this run: {key}", file=sys.stderr)
    else:
        settings.require_ice_credentials()
        if not settings.api_keys:
            raise ConfigError(
                "ICEHOOK_API_KEYS",
                "required: serve never opens the /v1 API without keys "
                "(serve --simulate generates one for a first run)",
            )
    api_socket = _bind(args.host, args.port)
    if settings.public_url is None:
        host, port = api_socket.getsockname()[:2]
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        settings = dataclasses.replace(settings, public_url=_url_of_host(reachable, port))
    settings = _prepare(settings)
    shutdown = Shutdown(settings.shutdown_timeout_seconds)
    app = create_app(settings, workers=True, shutdown=shutdown)
    apps.insert(0, Served(app, api_socket, edge.limits_of(settings)))
    print(f"icehook: serving at {_url_of(api_socket)}", file=sys.stderr)
    _run_servers(apps, shutdown)


def _demo(args: argparse.Namespace) -> None:
    """The service, the simulator and ``app/demo.py``'s receiver in one event loop, driven
    through the API by ``demo.drive`` until every job is final and every event verified."""
    demo.quiet_logs()
    settings = Settings.from_env(os.environ)
    api_socket, sim_socket, receiver_socket = (_bind("127.0.0.1", 0) for _ in range(3))
    setup = demo.make_setup(
        api_url=_url_of(api_socket),
        simulator_url=_url_of(sim_socket),
        receiver_url=_url_of(receiver_socket),
        database=demo.describe_database(settings),
    )
    if settings.database_url is None:
        print(f"icehook demo: starting the {setup.database}", flush=True)
    settings = _prepare(demo.service_settings(settings, setup))
    receiver = demo.Receiver()
    shutdown = Shutdown(settings.shutdown_timeout_seconds)
    code = _run_servers(
        [
            Served(
                create_app(settings, workers=True, shutdown=shutdown),
                api_socket,
                edge.limits_of(settings),
            ),
            Served(
                create_simulator_app(demo.simulator_settings(setup)), sim_socket, SIMULATOR_LIMITS
            ),
            Served(demo.create_receiver_app(receiver), receiver_socket, edge.EdgeLimits()),
        ],
        shutdown,
        main=lambda: demo.drive(setup, receiver, time_limit=args.timeout),
    )
    if code is None:
        print("icehook demo: stopped before it finished", file=sys.stderr)
        code = 1
    sys.exit(code)


def _worker(args: argparse.Namespace) -> None:
    settings = Settings.from_env(os.environ)
    settings.require_ice_credentials()
    settings = _prepare(settings)

    async def run() -> None:
        shutdown = Shutdown(settings.shutdown_timeout_seconds)
        async with open_runtime(settings) as rt:
            worker = Worker(rt)
            loop = asyncio.get_running_loop()

            def on_signal() -> None:
                shutdown.signal()
                worker.stop()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            print("icehook: worker running", file=sys.stderr)
            _freeze_heap()
            task = asyncio.create_task(worker.run())
            signalled = asyncio.ensure_future(shutdown.begun.wait())
            await asyncio.wait([task, signalled], return_when=asyncio.FIRST_COMPLETED)
            signalled.cancel()
            await shutdown.finish(task, "the worker")
            if task.done() and not task.cancelled():
                task.result()  # a worker that failed says why

    _run(run())


def _operate(args: argparse.Namespace, command: admin.Command) -> None:
    """Run an operator command (``admin``) in one transaction on the configured database."""
    logging.getLogger().setLevel(logging.WARNING)  # the answer, not the service's log lines
    settings = _prepare(Settings.from_env(os.environ))
    url = settings.database_url
    assert url is not None

    async def run() -> None:
        engine = db.create_engine(url)
        try:
            async with db.create_sessionmaker(engine).begin() as session:
                await command(args, session, settings)
        finally:
            await engine.dispose()

    try:
        _run(run())
    except ValidationError as exc:
        raise admin.refusal(exc) from None
    except ApiError as exc:  # it does not exist, or cannot be done now
        print(f"icehook: {exc.message}", file=sys.stderr)
        sys.exit(admin.EXIT_REFUSED)


def _simulator(args: argparse.Namespace) -> None:
    flags = {
        name: getattr(args, f"sim_{name}")
        for name in SimulatorSettings.BEHAVIOUR
        if getattr(args, f"sim_{name}") is not None
    }
    sim_socket = _bind(args.host, args.port)
    app = create_simulator_app(_simulator_settings(os.environ, flags))
    print(f"icehook: ICE simulator at {_url_of(sim_socket)}", file=sys.stderr)
    _run_servers([Served(app, sim_socket, SIMULATOR_LIMITS)], Shutdown(SIMULATOR_STOP_SECONDS))


# -- helpers ---------------------------------------------------------------------------------


def _freeze_heap() -> None:
    """Leave what start-up loaded (modules, metadata, caches) out of garbage collection.

    A full collection walks every tracked object: icehook's imports alone leave ~90,000,
    and under load such collections stalled the event loop for 60-80 ms every few seconds
    (every request waiting meanwhile paid for it). ``gc.freeze`` moves them to a
    generation that is never walked; what is created afterwards is collected as usual.
    """
    gc.collect()
    gc.freeze()


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it exists (not on Windows), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _prepare(settings: Settings) -> Settings:
    """``settings`` as the command runs with them: their secrets kept out of the logs, the
    database resolved (the embedded one started if needed), checked and migrated."""
    logs.protect_settings(settings)
    url = db.resolve_database_url(settings)
    asyncio.run(db.check_connection(url))
    db.upgrade(url)
    return dataclasses.replace(settings, database_url=url)


def _simulator_settings(environ: Mapping[str, str], flags: Mapping[str, str]) -> SimulatorSettings:
    """Simulator settings from the environment and flags; a generated key pair on a first run."""
    env = dict(environ)
    has_pair = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID") and env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not has_pair and not env.get(ACCESS_KEYS_VARIABLE, "").strip():
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


def _bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """Listen before anything else starts, so a taken port is a clear error at once."""
    # IPPROTO_TCP given, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP (uvloop
    # always does); without it a small answer can wait 40 ms for the peer's delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(flag, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return _url_of_host(host, port)


def _url_of_host(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to icehook (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclasses.dataclass(frozen=True)
class Served:
    """An app, the socket it listens on, and what a connection to it may take."""

    app: ASGIApp
    socket: socket.socket
    limits: edge.EdgeLimits


def _run_servers(
    apps: Sequence[Served],
    shutdown: Shutdown,
    main: Callable[[], Coroutine[Any, Any, int]] | None = None,
) -> int | None:
    """Serve every app until SIGTERM/SIGINT or one fails. The first signal begins
    ``shutdown``: requests in flight have until its deadline to be answered; the second
    forces it (``Shutdown.force``).

    With ``main``, also run it once every server is started and stop them all when it
    returns; return what it returned, or None when it did not finish (a signal came first).
    """
    servers = [
        _Server(
            edge.server_config(
                served.app,
                served.limits,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=max(1, round(shutdown.seconds)),
            )
        )
        for served in apps
    ]

    async def run() -> tuple[bool, int | None]:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            shutdown.signal()
            for server in servers:
                server.should_exit = True
                server.force_exit = shutdown.forced.is_set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        tasks = [
            asyncio.create_task(server.serve(sockets=[served.socket]))
            for server, served in zip(servers, apps, strict=True)
        ]
        stopping = asyncio.create_task(shutdown.begun.wait())

        async def when_started() -> None:
            while not all(server.started for server in servers):
                await asyncio.sleep(0.05)

        async def freeze_when_started() -> None:
            await when_started()
            _freeze_heap()

        async def main_when_started() -> int:
            assert main is not None
            await when_started()
            return await main()

        freezing = asyncio.create_task(freeze_when_started())
        driving = asyncio.create_task(main_when_started()) if main else None
        await asyncio.wait(
            [stopping, *tasks, *([driving] if driving else [])],
            return_when=asyncio.FIRST_COMPLETED,
        )
        freezing.cancel()
        if driving is not None and not driving.done():
            driving.cancel()  # a signal, or a server stopped: the servers still run meanwhile
            await asyncio.gather(driving, return_exceptions=True)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        stopping.cancel()
        started = all(server.started for server in servers)
        if driving is None or driving.cancelled():
            return started, None
        return started, driving.result()

    started, result = _run(run())
    if not started:
        print("icehook: a server failed to start (see the log above)", file=sys.stderr)
        sys.exit(EXIT_STARTUP_FAILED)
    return result
