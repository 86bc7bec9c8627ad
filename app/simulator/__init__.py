"""The ICE simulator: Alibaba Cloud ICE (API 2020-11-09) as seen on the wire, run locally.

It serves ICE's RPC API at ``/`` (signed V3 or V2 requests, ICE's answers and error shapes, its
submit rate limit) for the six actions icehook uses, runs each job through ICE's statuses over
``job_seconds``, and posts completion callbacks by ICE's delivery rules, with faults that can be
injected on purpose. Admin routes under ``/_sim/`` show the callback log, a job's truth and the
count of RPC calls received per action, and change the behaviour while it runs.

::

    settings = SimulatorSettings.from_env(os.environ)   # ConfigError names a bad variable
    app = create_simulator_app(settings)                # a Starlette app; serve it with uvicorn
"""

from app.simulator.app import Simulator, create_simulator_app
from app.simulator.settings import SimulatorSettings, env_variable

__all__ = ["Simulator", "SimulatorSettings", "create_simulator_app", "env_variable"]
