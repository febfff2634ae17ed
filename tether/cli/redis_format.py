"""Render Redis replies the way redis-cli prints them, so `tether inspect` output reads
like (and can be checked against) a redis-cli session."""

from __future__ import annotations

from typing import Any

_ESCAPES = {
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    7: "\\a",
    8: "\\b",
}


def quote(value: bytes) -> str:
    """A bulk string as redis-cli shows it: quoted, with C escapes and \\xHH."""
    out = ['"']
    for byte in value:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def reply_lines(reply: Any) -> list[str]:
    """The lines redis-cli prints for ``reply`` (nested arrays indented under their
    index, as redis-cli does)."""
    if reply is None:
        return ["(nil)"]
    if isinstance(reply, bool):
        return [f"(integer) {int(reply)}"]
    if isinstance(reply, int):
        return [f"(integer) {reply}"]
    if isinstance(reply, float):
        return [f"(double) {reply:g}"]
    if isinstance(reply, bytes):
        return [quote(reply)]
    if isinstance(reply, str):
        return [quote(reply.encode())]
    if isinstance(reply, dict):
        flat: list[Any] = []
        for key, value in reply.items():
            flat.extend((key, value))
        return reply_lines(flat)
    if isinstance(reply, list | tuple):
        if not reply:
            return ["(empty array)"]
        width = len(str(len(reply)))
        lines: list[str] = []
        for index, item in enumerate(reply, start=1):
            prefix = f"{index:>{width}}) "
            sub = reply_lines(item)
            lines.append(prefix + sub[0])
            lines.extend(" " * len(prefix) + line for line in sub[1:])
        return lines
    return [quote(str(reply).encode())]


def render(reply: Any) -> str:
    return "\n".join(reply_lines(reply))
