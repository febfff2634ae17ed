"""Helpers shared by the worker tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any


def settings(*functions: Any, **options: Any) -> dict[str, Any]:
    """WorkerSettings as a dict, with test-friendly defaults."""
    return {"functions": list(functions), "shutdown_grace": 5.0, **options}


class LogWatch(logging.Handler):
    """Sets an event when a log record containing ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self._loop.call_soon_threadsafe(self.seen.set)


@contextlib.contextmanager
def watch_log(name: str, text: str) -> Iterator[LogWatch]:
    logger = logging.getLogger(name)
    handler = LogWatch(text)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
