"""A byte-count progress bar on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


@contextmanager
def byte_progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback that advances a bar on stderr, or None off a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total or 0, label=label, file=sys.stderr,
                           show_pos=False, show_percent=total is not None) as bar:
        yield bar.update


def tree_size(path: str) -> int | None:
    """Return the bytes under ``path`` (a quick stat pass), or None if unknown."""
    import contextlib
    import os

    try:
        if os.path.isfile(path):
            return os.path.getsize(path)
        total = 0
        for root, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_size
        return total
    except OSError:
        return None
