"""`tether dev` runs the whole control plane from one command, and Ctrl-C stops it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest
from proc_stack import CLI, Proc, base_env

from tether.redis_server import RedisServer, free_port

pytestmark = pytest.mark.processes


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


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
