"""Worker settings: loading `module:Attr`, defaults, and clear errors for bad values."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tether import func
from tether.errors import ConfigurationError
from tether.workers import Worker, load_settings


async def task(ctx: dict[str, Any]) -> None: ...


def test_settings_load_from_a_module_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myapp_tasks.py").write_text(
        textwrap.dedent(
            """
            async def hello(ctx, name):
                return f"hello {name}"

            class WorkerSettings:
                functions = [hello]
                max_jobs = 4
                job_timeout = None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        config = load_settings("myapp_tasks:WorkerSettings", url="http://api:9000")
    finally:
        sys.modules.pop("myapp_tasks", None)
    assert (config.max_jobs, config.job_timeout, config.max_tries) == (4, None, 5)
    assert config.tether_url == "http://api:9000"
    assert config.machine_id  # hostname-pid-random by default


def test_the_url_defaults_to_tether_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_URL", "http://from-env:1234/")
    assert load_settings({"functions": [task]}).tether_url == "http://from-env:1234"


def test_a_missing_module_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot import"):
        load_settings("no_such_module_here:WorkerSettings")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_jobs", 0, "max_jobs must be an integer from 1 to 1000"),
        ("max_tries", "3", "max_tries must be an integer"),
        ("job_timeout", -1, "job_timeout must be a number of seconds"),
        ("job_timeout", 0.0004, "job_timeout must be a number of seconds from 0.001"),
        ("max_tries", 1001, "max_tries must be an integer from 1 to 1000"),
        ("shutdown_grace", -1, "shutdown_grace must be a number"),
        ("poll_wait", 31, "poll_wait must be a number"),
        ("machine_id", "has space", "machine_id must be"),
    ],
)
def test_a_bad_setting_is_named_in_the_error(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"functions": [task], name: value})


def test_settings_without_functions_or_workflows_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="nothing to serve"):
        load_settings({"functions": []})


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_job"):
        load_settings({"functions": [task], "max_job": 3})


def test_two_functions_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="two handlers"):
        Worker({"functions": [task, func(task)]})


def test_a_worker_serving_more_functions_than_a_heartbeat_may_register_is_refused() -> None:
    from tether.limits import MAX_FUNCTIONS_PER_MACHINE

    many = [func(task, name=f"fn{i}") for i in range(MAX_FUNCTIONS_PER_MACHINE + 1)]
    with pytest.raises(ConfigurationError, match="at most"):
        Worker({"functions": many})


def test_a_function_without_ctx_is_refused_at_startup() -> None:
    async def no_ctx() -> None: ...

    with pytest.raises(ConfigurationError, match="ctx"):
        Worker({"functions": [no_ctx]})


def test_listing_workflows_without_a_workflow_engine_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whether or not the engine exists yet, a missing one must be reported this way.
    monkeypatch.setitem(sys.modules, "tether.workers.workflow", None)
    with pytest.raises(ConfigurationError, match="no workflow engine"):
        Worker({"functions": [task], "workflows": [object()]})
