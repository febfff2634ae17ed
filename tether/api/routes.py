"""Every route handler of the API, in one list: add a controller here to serve it."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from tether.api.events import EventsController
from tether.api.functions import FunctionsController
from tether.api.jobs import JobsController
from tether.api.keys import KeysController, whoami
from tether.api.limits import LimitsController
from tether.api.logs import JobLogsController, MachineLogsController, RunLogsController
from tether.api.machines import MachinesController
from tether.api.ops import OpsController
from tether.api.runs import RUN_HANDLERS
from tether.api.schedules import MachineSchedulesController, SchedulesController
from tether.api.ui import DashboardController
from tether.api.webhooks import WebhooksController

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    MachinesController,
    JobsController,
    FunctionsController,
    OpsController,
    EventsController,
    DashboardController,
    KeysController,
    LimitsController,
    whoami,
    *RUN_HANDLERS,
    SchedulesController,
    MachineSchedulesController,
    MachineLogsController,
    JobLogsController,
    RunLogsController,
    WebhooksController,
]
