"""``tether keys create|list|revoke``: API keys, straight on Redis ($TETHER_REDIS_URL), so
the first admin key can be made before any API runs.

``create`` prints the new key alone on one line of stdout: it is shown this once (Redis
keeps only its SHA-256). Roles: admin, app, approver, viewer, machine (docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tether.cli.common import EXIT_OK, UsageError, redis_url, table
from tether.protocol import ROLES


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "keys",
        help="create, list or revoke API keys (direct Redis)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--redis-url", help="Redis to use (default: $TETHER_REDIS_URL or redis://127.0.0.1:6379/0)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="make a key; prints it (once) on stdout")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="unique name, recorded as decider etc.")
    create.add_argument("--namespace", default="default", help="its tenant (default: default)")
    create.add_argument(
        "--functions",
        action="append",
        metavar="GLOB",
        help="machine keys: only functions matching this glob, e.g. 'billing.*' (repeatable)",
    )
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="every key (never the key itself)")
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="revoke the key of a name")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=run_revoke)


def _with_store(args: argparse.Namespace, op: Callable[[Any], Awaitable[Any]]) -> Any:
    from tether.cli.settings import queue_config
    from tether.queue.apikeys import KeyStore
    from tether.queue.redis_py import redis_client

    keys = queue_config().keys

    async def go() -> Any:
        redis = redis_client(
            redis_url(args.redis_url), decode_responses=True, socket_connect_timeout=5
        )
        try:
            return await op(KeyStore(redis, keys))
        finally:
            await redis.aclose()

    return asyncio.run(go())


def run_create(args: argparse.Namespace) -> int:
    async def create(store: Any) -> str:
        try:
            key, _ = await store.create(args.name, args.role, args.namespace, args.functions)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return str(key)

    print(_with_store(args, create), flush=True)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from tether.cli.common import when
    from tether.protocol import ms_to_datetime

    async def listing(store: Any) -> list[Any]:
        return list(await store.all())

    rows = [["NAME", "ROLE", "NAMESPACE", "FUNCTIONS", "CREATED", "LAST USED"]]
    for k in _with_store(args, listing):
        rows.append(
            [
                k.name,
                k.role,
                k.namespace,
                ",".join(k.functions) if k.functions is not None else "*",
                when(ms_to_datetime(k.created_ms)),
                when(ms_to_datetime(k.last_used_ms)) or "never",
            ]
        )
    print(table(rows))
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    async def revoke(store: Any) -> None:
        await store.revoke(args.name)

    _with_store(args, revoke)
    print(f"revoked {args.name}", flush=True)
    return EXIT_OK
