"""``tether cluster create HOST:PORT ... [--replicas N]``: make a Redis Cluster of fresh
nodes (each started with ``--cluster-enabled yes``), without redis-cli: the primaries
(the first len/(1+N) nodes) get equal shares of the 16384 slots (CLUSTER ADDSLOTSRANGE),
every node meets the first (CLUSTER MEET) and the rest replicate the primaries in turn
(CLUSTER REPLICATE). It returns once the cluster is whole and every replica synced, and
prints the TETHER_REDIS_URL to give the other tether commands. compose.yaml's cluster
profile runs it once; the test suite makes its clusters the same way
(``tether.redis_server.assemble_cluster``).
"""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import EXIT_OK, EXIT_UNAVAILABLE, UsageError


def register(commands: argparse._SubParsersAction[Any]) -> None:
    group = commands.add_parser(
        "cluster",
        help="Redis Cluster: make one of fresh nodes (direct Redis)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = actions.add_parser(
        "create",
        help="make a Redis Cluster of fresh nodes (slots, meet, replicas)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("nodes", metavar="HOST:PORT", nargs="+")
    parser.add_argument("--replicas", type=int, default=0, help="replicas per primary (default: 0)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the cluster"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.redis_server import assemble_cluster

    nodes: list[tuple[str, int]] = []
    for item in args.nodes:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"{item!r}: a node is HOST:PORT")
        nodes.append((host, int(port)))
    if args.replicas < 0 or len(nodes) % (1 + args.replicas):
        raise UsageError(
            f"{len(nodes)} nodes cannot be split into primaries with {args.replicas} replicas each"
        )
    masters = len(nodes) // (1 + args.replicas)
    try:
        assemble_cluster(nodes, masters, args.timeout)
    except (OSError, TimeoutError, RuntimeError) as exc:
        print(f"tether cluster create: {exc}")
        return EXIT_UNAVAILABLE
    print("TETHER_REDIS_URL=redis+cluster://" + ",".join(args.nodes[:masters]), flush=True)
    return EXIT_OK
