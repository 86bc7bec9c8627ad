"""The demo's setup: its ports, its settings for the service and the simulator, its constants."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import secrets
from dataclasses import dataclass, field

from app.core.access import ApiKey, Role
from app.core.errors import IcehookError
from app.http.middleware import new_api_key
from app.settings import Settings
from app.simulator import SimulatorSettings
from app.simulator.settings import new_access_key

DEFAULT_TIMEOUT_SECONDS = 90.0


# Short, so that the sweeper's work shows within the demo; the service's default is 60 s.
SWEEP_AFTER_SECONDS = 3.0


# Every simulated job runs this long, less than the sweep interval: a job whose callback
# arrives is finished by the callback, and only the one whose callback is dropped is swept.
JOB_SECONDS = 2.0


# The receiver answers at once; should an attempt still fail, the next comes soon.
RETRY_SCHEDULE = (1.0, 2.0, 5.0, 10.0)


RECEIVER_PATH = "/hook"


RECEIVER_NET = ipaddress.ip_network("127.0.0.1/32")


SUBSCRIPTION_DESCRIPTION = "icehook demo receiver"


POLL_SECONDS = 0.25


FINAL_LOOK_SECONDS = 10.0  # the last look at the timelines, after the time limit


OUTPUT_URL = "https://bucket.oss-cn-shanghai.aliyuncs.com/icehook-demo/{name}.mp4"


BATCH_PROJECTS = ("demo-batch-1", "demo-batch-2", "demo-batch-3")


PLANNED = 5  # submissions: four jobs and one batch


NOISY_LOGGERS = ("app", "uvicorn", "alembic")


class DemoError(IcehookError):
    """The service or the simulator answered the demo in a way it cannot go on from."""


@dataclass(frozen=True)
class Setup:
    """Where the demo's three servers listen and the keys generated for this run."""

    api_url: str
    simulator_url: str
    receiver_url: str
    database: str  # what the database is, for people: never a URL (it may hold a password)
    api_key: str = field(repr=False)
    access_key_id: str
    access_key_secret: str = field(repr=False)
    callback_auth_key: str = field(repr=False)


def make_setup(*, api_url: str, simulator_url: str, receiver_url: str, database: str) -> Setup:
    """The demo's addresses, with a fresh API key, AccessKey pair and callback AuthKey."""
    access_key_id, access_key_secret = new_access_key("demo")
    return Setup(
        api_url=api_url,
        simulator_url=simulator_url,
        receiver_url=receiver_url + RECEIVER_PATH,
        database=database,
        api_key=new_api_key(),
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        # ICE's console allows 1-32 letters and digits for a callback AuthKey.
        callback_auth_key=secrets.token_hex(16),
    )


def describe_database(settings: Settings) -> str:
    if settings.database_url is None:
        return f"embedded PostgreSQL under {settings.data_dir}"
    return "PostgreSQL at ICEHOOK_DATABASE_URL"


def service_settings(settings: Settings, setup: Setup) -> Settings:
    """The configured settings, made the demo's own: its simulator as ICE, its key, its
    address for ICE's callbacks, loopback subscribers allowed and a short sweep interval."""
    return dataclasses.replace(
        settings,
        public_url=setup.api_url,
        api_keys=(ApiKey(Role.ADMIN, setup.api_key),),
        ice_endpoint=setup.simulator_url,
        access_key_id=setup.access_key_id,
        access_key_secret=setup.access_key_secret,
        security_token=None,
        callback_auth_keys=(setup.callback_auth_key,),
        sweep_after_seconds=SWEEP_AFTER_SECONDS,
        delivery_retry_schedule=RETRY_SCHEDULE,
        allowed_webhook_nets=(*settings.allowed_webhook_nets, RECEIVER_NET),
    )


def simulator_settings(setup: Setup) -> SimulatorSettings:
    """The simulator faultless at first; ``drive`` switches faults on and off as it goes."""
    return SimulatorSettings(
        access_keys={setup.access_key_id: setup.access_key_secret},
        job_seconds=JOB_SECONDS,
        callback_auth_key=setup.callback_auth_key,
    )


def quiet_logs() -> None:
    """Leave the terminal to the demo's own lines: the service logs warnings and errors only."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
