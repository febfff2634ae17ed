"""Worker settings: loading `module:Attr`, defaults, and clear errors for bad values."""

from __future__ import annotations

import functools
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tether import func, workflow
from tether.cli import main
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


def test_two_functions_with_one_name_are_refused_naming_both_and_the_fix() -> None:
    async def other(ctx: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigurationError) as refused:
        Worker({"functions": [task, func(other, name="task")]})
    assert refused.value.message == (
        "two functions are registered as 'task': test_settings.task and "
        "test_settings.test_two_functions_with_one_name_are_refused_naming_both_and_the_fix"
        ".<locals>.other; give one another name with tether.func(f, name='...')"
    )


def test_a_workflow_listed_among_functions_is_refused_naming_it_and_the_fix() -> None:
    @workflow(name="approval", version=2)
    async def approval(ctx: Any, input: Any) -> None: ...

    with pytest.raises(ConfigurationError) as refused:
        Worker({"functions": [task, approval]})
    assert refused.value.message == (
        "the workflow 'approval' (v2) is listed among functions: "
        "list it in WorkerSettings.workflows instead"
    )


def test_something_not_callable_among_functions_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="'task' is not callable: WorkerSettings"):
        Worker({"functions": ["task"]})


def test_a_callable_without_a_name_is_refused_asking_for_one() -> None:
    nameless = functools.partial(task)
    with pytest.raises(ConfigurationError, match=r"has no __name__.*tether.func\(fn, name="):
        Worker({"functions": [nameless]})


def test_a_settings_mistake_stops_tether_worker_with_one_line_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mistaken_tasks.py").write_text(
        textwrap.dedent(
            """
            import tether

            @tether.workflow
            async def onboarding(ctx, input):
                return input

            class WorkerSettings:
                functions = [onboarding]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(SystemExit) as exited:
            main(["worker", "mistaken_tasks:WorkerSettings", "--url", "http://127.0.0.1:9"])
    finally:
        sys.modules.pop("mistaken_tasks", None)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err == (
        "tether worker: error: the workflow 'onboarding' (v1) is listed among functions: "
        "list it in WorkerSettings.workflows instead\n"
    )


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
