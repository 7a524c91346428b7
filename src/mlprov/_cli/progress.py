"""A byte-count progress bar on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import click


class Bar:
    """A progress callback whose bar appears once the total (or a first count) is known.

    Hashing walks the tree once and reports the total before the first byte
    (``on_total``), so no second walk is needed to size the bar. Counts may come
    from any thread.
    """

    def __init__(self, label: str, stack: ExitStack) -> None:
        self._label = label
        self._stack = stack
        self._bar: Any = None
        self._lock = threading.Lock()

    def _open(self, total: int | None) -> Any:
        bar: AbstractContextManager[Any] = click.progressbar(
            length=total or 0, label=self._label, file=sys.stderr, show_pos=False,
            show_percent=total is not None)
        return self._stack.enter_context(bar)

    def total(self, n: int) -> None:
        """Size the bar (the first call wins)."""
        with self._lock:
            if self._bar is None:
                self._bar = self._open(n)

    def __call__(self, n: int) -> None:
        """Advance the bar by ``n`` bytes."""
        with self._lock:
            if self._bar is None:
                self._bar = self._open(None)
            self._bar.update(n)


@contextmanager
def byte_progress(label: str) -> Iterator[Bar | None]:
    """Yield a :class:`Bar` on stderr, or None off a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with ExitStack() as stack:
        yield Bar(label, stack)
