"""`tether dev` runs the whole control plane from one command, owns its folder and its
ports, and leaves nothing running behind it however it is stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from proc_stack import CLI, ROOT, Proc, base_env, wait_until

from tether.redis_server import RedisServer, free_port

pytestmark = [
    pytest.mark.processes,
    pytest.mark.single_node(reason="tether dev starts a Redis server of its own"),
]
# Children die with tether dev through PR_SET_PDEATHSIG, and these tests read /proc.
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(x) for x in text.split()]


def _dev_env() -> dict[str, str]:
    env = base_env("", "tether")
    del env["TETHER_REDIS_URL"]  # dev mode brings its own; commands must find it
    return env


def _dev(folder: Path, *args: str, name: str = "dev") -> Proc:
    """`tether dev` run from ``folder`` (its data in ``folder/.tether``)."""
    argv = [*CLI, "dev", *args]
    return Proc(name, argv, _dev_env(), folder / f"{name}.log", cwd=folder).start()


def _stop(proc: Proc, sig: signal.Signals = signal.SIGINT) -> int:
    proc.signal(sig)
    assert proc.popen is not None
    return proc.popen.wait(60)


def _state(folder: Path) -> dict[str, object]:
    state: dict[str, object] = orjson.loads((folder / ".tether" / "dev.json").read_bytes())
    return state


@pytest.fixture
def folder(tmp_path: Path, redis_server: RedisServer) -> Path:
    """A project folder; the session Redis is only here to fail fast without a binary."""
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def test_a_job_submitted_over_http_runs_on_the_example_worker_and_ctrl_c_stops_all(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    api_port, redis_port = free_port(), free_port()
    data = tmp_path / "tether-data"
    argv = [*CLI, "dev", "--port", str(api_port), "--redis-port", str(redis_port),
            "--data", str(data), "--example-worker"]  # fmt: skip
    # Dev mode brings its own Redis; the session one is only here to fail fast in CI if
    # no server binary exists.
    dev = Proc("dev", argv, base_env("", "tether"), tmp_path / "dev.log").start()
    try:
        dev.wait_for_output("tether dev is running", timeout=60)
        dev.wait_for_output("curl -s -X POST", timeout=5)
        url = f"http://127.0.0.1:{api_port}"
        # Dev mode made its keys in the data folder, for its owner's eyes only, and the
        # printed curl lines carry the admin key.
        admin = (data / "admin.key").read_text().strip()
        assert admin.startswith("tk_") and (data / "machine.key").read_text().startswith("tk_")
        assert (data / "admin.key").stat().st_mode & 0o777 == 0o600
        assert (data / "machine.key").stat().st_mode & 0o777 == 0o600
        assert f"-H 'authorization: Bearer {admin}'" in dev.output()
        auth = {"authorization": f"Bearer {admin}"}
        # What the printed curl line does (and without the key: 401).
        anonymous = httpx.post(f"{url}/v1/jobs", json={"function": "hello"}, timeout=10)
        assert anonymous.status_code == 401
        created = httpx.post(
            f"{url}/v1/jobs",
            json={"function": "hello", "input": {"name": "world"}},
            headers=auth,
            timeout=10,
        )
        assert created.status_code in (200, 201), created.text
        done = httpx.get(
            f"{url}/v1/jobs/{created.json()['id']}",
            params={"wait": 20},
            headers=auth,
            timeout=30,
        ).json()

        dev.signal(signal.SIGINT)  # what Ctrl-C sends
        assert dev.popen is not None
        code = dev.popen.wait(60)
    finally:
        dev.kill()

    assert done["status"] == "completed", done
    assert done["result"]["message"] == "hello, world!"
    assert code == 0, dev.output()[-3000:]
    assert "tether dev stopped" in dev.output()
    assert not _port_open(api_port) and not _port_open(redis_port)
    assert (data / "appendonlydir").is_dir()  # the AOF lives in the data folder


def test_a_second_tether_dev_on_the_same_folder_refuses_naming_the_first_ones_pid(
    folder: Path, procs: list[Proc]
) -> None:
    first = _dev(folder, "--port", str(free_port()), "--redis-port", str(free_port()))
    procs.append(first)
    first.wait_for_output("tether dev is running", timeout=60)
    second = _dev(folder, "--port", str(free_port()), name="second")
    procs.append(second)
    assert second.popen is not None
    code = second.popen.wait(30)
    assert code == 1
    assert f"another tether dev (PID {first.pid}) is running" in second.output()
    assert first.alive  # and the first one goes on untouched
    assert _state(folder)["pid"] == first.pid  # the second one wrote nothing


def test_a_busy_api_port_is_a_plain_error_naming_the_port_and_the_option(
    folder: Path, procs: list[Proc]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = _dev(folder, "--port", str(port))
        procs.append(dev)
        assert dev.popen is not None
        code = dev.popen.wait(30)
    output = dev.output()
    assert code == 1, output
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "--port" in output and "make dev PORT=" in output
    assert "is running" not in output  # never someone else's server reported as ours
    assert not (folder / ".tether" / "dev.json").exists()  # no Redis was started


def test_the_dev_redis_keeps_its_port_across_restarts_and_a_clean_stop_leaves_no_dead_machine(
    folder: Path, procs: list[Proc]
) -> None:
    api_port = str(free_port())
    (folder / ".tether").mkdir()
    recorded = free_port()  # as if an earlier start had picked it
    (folder / ".tether" / "dev.json").write_bytes(orjson.dumps({"redis_port": recorded}))

    first = _dev(folder, "--port", api_port, "--example-worker")
    procs.append(first)
    first.wait_for_output("tether dev is running", timeout=60)
    assert f"redis://127.0.0.1:{recorded}/0" in first.output()
    [machine] = re.findall(r"worker (\S+) serving hello", first.output())
    assert _stop(first) == 0

    again = _dev(folder, "--port", api_port, "--example-worker", name="again")
    procs.append(again)
    again.wait_for_output("tether dev is running", timeout=60)
    assert f"redis://127.0.0.1:{recorded}/0" in again.output()
    assert _state(folder)["redis_port"] == recorded
    # The first worker deregistered when it stopped: past the dead-machine timeout (2 s),
    # the orchestrator has no machine of the first run to declare dead.
    time.sleep(3.0)
    assert f"machine {machine} declared dead" not in again.output()
    assert f"worker {machine} stopped" in first.output()
    assert _stop(again) == 0


def test_a_taken_redis_port_is_replaced_by_a_free_one_with_a_message_and_recorded(
    folder: Path, procs: list[Proc]
) -> None:
    (folder / ".tether").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (folder / ".tether" / "dev.json").write_bytes(orjson.dumps({"redis_port": port}))
        dev = _dev(folder, "--port", str(free_port()))
        procs.append(dev)
        dev.wait_for_output("tether dev is running", timeout=60)
    chosen = _state(folder)["redis_port"]
    assert chosen != port
    assert f"Redis port {port} (recorded in .tether/dev.json) is in use" in dev.output()
    assert f"takes {chosen} instead" in dev.output()
    assert _stop(dev) == 0


def test_inspect_finds_the_dev_redis_from_the_folder_without_tether_redis_url(
    folder: Path, procs: list[Proc]
) -> None:
    api_port = free_port()
    dev = _dev(folder, "--port", str(api_port), "--redis-port", str(free_port()),
               "--example-worker")  # fmt: skip
    procs.append(dev)
    dev.wait_for_output("tether dev is running", timeout=60)
    url = f"http://127.0.0.1:{api_port}"
    admin = (folder / ".tether" / "admin.key").read_text().strip()  # what dev made
    job = httpx.post(
        f"{url}/v1/jobs",
        json={"function": "hello", "input": {"name": "x"}},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert job.status_code == 201, job.text

    def inspect(job_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "inspect", job_id],
            env=_dev_env(),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
        )

    found = inspect(job.json()["id"])
    missing = inspect("0" * 26)
    assert found.returncode == 0, found.stderr
    assert f"HGETALL {{tether:0}}:job:{job.json()['id']}" in found.stdout
    assert '"hello"' in found.stdout
    assert missing.returncode == 1
    recorded = _state(folder)["redis_url"]
    assert f"in {recorded} (the dev Redis recorded in .tether/dev.json)" in missing.stderr
    assert _stop(dev) == 0


@linux_only
def test_no_child_outlives_a_tether_dev_killed_with_sigkill(
    folder: Path, procs: list[Proc]
) -> None:
    api_port, redis_port = free_port(), free_port()
    dev = _dev(folder, "--port", str(api_port), "--redis-port", str(redis_port),
               "--example-worker")  # fmt: skip
    procs.append(dev)
    dev.wait_for_output("tether dev is running", timeout=60)
    children = _children(dev.pid)
    assert len(children) == 4  # redis, api, orchestrator, worker

    dev.kill()

    wait_until(lambda: not any(_alive(pid) for pid in children), 30, "every child to exit")
    assert not _port_open(api_port) and not _port_open(redis_port)
    # And the folder is free again: the lock died with its holder.
    again = _dev(folder, "--port", str(api_port), "--redis-port", str(redis_port), name="again")
    procs.append(again)
    again.wait_for_output("tether dev is running", timeout=60)
    assert _stop(again) == 0


@linux_only
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make on PATH")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_make_dev_process_stops_everything(
    folder: Path, procs: list[Proc], sig: signal.Signals
) -> None:
    # The repository's Makefile, run from the project folder with this interpreter's
    # tether (-o: do not (re)build the venv).
    api_port = free_port()
    bin_dir = Path(sys.executable).parent
    argv = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"),
            "-o", ".venv/.installed", f"BIN={bin_dir}", "dev", f"PORT={api_port}"]  # fmt: skip
    env = _dev_env() | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    make = Proc("make", argv, env, folder / "make.log", cwd=folder).start()
    procs.append(make)
    make.wait_for_output("tether dev is running", timeout=60)
    assert httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200
    dev_pid = _children(make.pid)[0]
    family = [dev_pid, *_children(dev_pid)]

    make.signal(sig)  # kill -INT <make>: make alone gets it, not its children

    wait_until(lambda: not any(_alive(pid) for pid in family), 60, "tether dev and its children")
    assert "tether dev stopped" in make.output()
    assert not _port_open(api_port)
