"""Small helpers shared by the Sigstore backends."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["one_line", "quiet_sigstore"]


@contextmanager
def quiet_sigstore() -> Iterator[None]:
    """Keep sigstore-python's and TUF's log warnings off stderr while they run.

    With no logging configured, Python prints warnings such as "TUF repository
    is loaded in offline mode" to stderr; mlprov reports outcomes itself, in one line.
    """
    loggers = [logging.getLogger(name) for name in ("sigstore", "tuf")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, or its type's name when it has none."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
