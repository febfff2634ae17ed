"""`tether top`: one frame against a real API, and the arithmetic of its percentiles."""

from __future__ import annotations

import httpx
import pytest
from api_server import ApiServer

from tether.cli import main
from tether.cli.top import histogram_quantile

INF = float("inf")


def auth(api: ApiServer) -> dict[str, str]:
    """The admin's Authorization header where the API wants keys (else none)."""
    return api.headers() if getattr(api, "keys", None) else {}


def test_a_quantile_is_linear_within_its_bucket() -> None:
    buckets = [(0.1, 1.0), (1.0, 3.0), (INF, 4.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.55)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.1)


def test_a_quantile_in_the_last_bucket_is_its_lower_bound() -> None:
    assert histogram_quantile(0.99, [(0.1, 1.0), (1.0, 3.0), (INF, 4.0)]) == 1.0


def test_no_observations_have_no_quantile() -> None:
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None


def test_one_frame_shows_queues_machines_and_measured_times(
    api: ApiServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=api.url, headers=auth(api)) as http:
        body = {"functions": [{"name": "add"}]}
        assert http.post("/v1/machines/top-m1/heartbeat", json=body).status_code == 200
        http.post("/v1/jobs/batch", json={"jobs": [{"function": "add"}] * 3})
        polled = http.post(
            "/v1/machines/top-m1/poll", json={"functions": ["add"], "max_jobs": 1, "wait": 1}
        )
        [job] = polled.json()["jobs"]
        done = {"id": job["id"], "token": job["token"], "status": "completed"}
        http.post("/v1/machines/top-m1/results", json={"results": [done]})
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["top", "--once", "--url", api.url]) == 0
    out = capsys.readouterr().out
    queues = out[: out.index("Machines")]
    [row] = [line for line in queues.splitlines() if " add " in line]
    cells = row.replace("│", " ").split()
    assert cells[:4] == ["add", "2", "1", "1"]  # ready, machines serving, finished
    assert "ms" in row  # a measured queue wait and run time
    assert "top-m1" in out[out.index("Machines") :]
    assert "0 run(s) waiting on a person" in out


def test_a_non_positive_interval_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["top", "--interval", "0"])
    assert exit_.value.code == 2
