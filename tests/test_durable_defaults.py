"""Every Redis tether starts or ships a recipe for persists what it acknowledged: AOF on,
fsynced before each reply, no eviction (docs/operations.md says why not everysec)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tether.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_a_started_redis_server_fsyncs_its_aof_before_it_replies(tmp_path: Path) -> None:
    args = RedisServer(tmp_path).command()

    assert _option(args, "--appendonly") == "yes"
    assert _option(args, "--appendfsync") == "always"
    assert _option(args, "--maxmemory-policy") == "noeviction"


def test_the_compose_redis_fsyncs_its_aof_before_it_replies() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    args = [str(a) for a in compose["services"]["redis"]["command"]]

    assert _option(args, "--appendonly") == "yes"
    assert _option(args, "--appendfsync") == "always"
    assert _option(args, "--maxmemory-policy") == "noeviction"
