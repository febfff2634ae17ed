"""``tether runs show ID --tree``: a run's timeline as a tree of what it did, with
durations: each activation (a machine replaying the workflow) and, under it, the steps it
recorded, the child jobs it started and the wait it ended on; log lines where they came.
The same structure as the dashboard's waterfall, from the same timeline (no tracing
needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass
class Node:
    label: str
    start: datetime
    end: datetime | None = None  # None: still open (or a point in time, when ``point``)
    point: bool = False
    children: list[Node] = field(default_factory=list)

    def duration(self) -> str:
        if self.point:
            return ""
        if self.end is None:
            return "open"
        ms = (self.end - self.start).total_seconds() * 1000
        return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def build(run_label: str, events: list[Any]) -> Node:
    """The tree of a run from its timeline events (``TimelineEvent``, oldest first)."""
    root = Node(run_label, events[0].at if events else datetime.now())
    activation: Node | None = None
    activations: dict[str, Node] = {}  # activation job id -> its node
    children: dict[str, Node] = {}  # child job id -> its node
    wait: Node | None = None

    def under() -> Node:
        return activation if activation is not None and activation.end is None else root

    for e in events:
        f = e.fields
        if e.event == "activation_started":
            activation = Node(f"activation {f.get('job', '')}", e.at)
            activations[f.get("job", "")] = activation
            root.children.append(activation)
        elif e.event == "step":
            name = f.get("name") or f.get("position", "")
            under().children.append(Node(f"step {name}", e.at, point=True))
        elif e.event == "child_started":
            child = Node(f"child {f.get('function') or f.get('job', '')}", e.at)
            children[f.get("job", "")] = child
            under().children.append(child)
        elif e.event == "child_finished":
            ended = children.get(f.get("job", ""))
            if ended is not None:
                ended.end = e.at
                ended.label += f" ({f.get('status', '')})"
        elif e.event == "waiting":
            name = f.get("name", "")
            wait = Node(f"wait {f.get('kind', '')}{' ' + name if name else ''}", e.at)
            root.children.append(wait)
        elif e.event == "activation_queued" and wait is not None and wait.end is None:
            wait.end = e.at
        elif e.event == "log":
            under().children.append(Node(f"log {f.get('line', '')}", e.at, point=True))
        elif e.event in _TERMINAL:
            node = activations.get(f.get("job", "")) if "job" in f else None
            if node is not None:  # an activation job ended
                node.end = e.at
                if e.event != "completed":
                    node.label += f" ({e.event})"
            elif "job" not in f:  # the run itself ended
                root.end = e.at
                root.label += f" {e.event}"
    return root


def render(node: Node) -> Any:
    """The tree as a rich renderable (labels are plain text: a log line is never markup)."""
    from rich.text import Text
    from rich.tree import Tree

    def label(n: Node) -> Text:
        text = Text(n.label)
        took = n.duration()
        if took:
            text.append(f"  {took}", style="dim")
        return text

    tree = Tree(label(node))

    def add(parent: Any, nodes: list[Node]) -> None:
        for n in nodes:
            add(parent.add(label(n)), n.children)

    add(tree, node.children)
    return tree
