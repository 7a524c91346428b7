"""What the ``mlprov`` process itself lets its commands do.

The console script (:func:`mlprov._cli.main.console_main`) marks its process; a host
process running :func:`mlprov._cli.main.main` in-process (tests, an embedding
program) is not marked, and nothing here changes it.
"""

from __future__ import annotations

import gc

__all__ = ["mark_console_process", "skip_cyclic_gc"]

_console = False


def mark_console_process() -> None:
    """Called by the console script: this process runs one command, then exits."""
    global _console
    _console = True


def skip_cyclic_gc() -> None:
    """Run the rest of a bounded, one-shot command without the cyclic garbage collector.

    Reference counting still frees every object as soon as it is unused; the
    collector only finds reference cycles, and a command such as ``attest`` makes
    few (about 1 MB more peak memory, the same with 20,000 model files) while its
    imports and evidence give the collector some 200 passes over tens of thousands
    of live objects, about 20 ms of CPU. The process exits right after the command.
    Only in the ``mlprov`` process: elsewhere a no-op.
    """
    if _console:
        gc.disable()
