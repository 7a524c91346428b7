"""Keep third-party pydantic plugins out of the ``mlprov`` command.

pydantic loads every installed ``pydantic`` entry point the first time it builds
a model (https://docs.pydantic.dev/latest/concepts/plugins/) and hands each plugin
every validation: the evidence, trust files and requests mlprov checks. The
``mlprov`` command loads none: :func:`disable_pydantic_plugins` sets
``PYDANTIC_DISABLE_PLUGINS=__all__``, which pydantic reads before every lookup of
its plugins (``pydantic/plugin/_loader.py``), so it must stay set for the life of
the process. It also spares the scan of every installed distribution's entry
points (about 5 ms). A program importing mlprov as a library keeps its plugins.

The variable is mlprov's own setting, not the user's: :func:`user_environ` is the
environment for a child process that runs the user's command (a registry hook),
with the user's value of the variable (or its absence) restored.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["disable_pydantic_plugins", "user_environ"]

_VARIABLE: Final = "PYDANTIC_DISABLE_PLUGINS"
#: (set by mlprov, the user's value before) once :func:`disable_pydantic_plugins` ran.
_saved: tuple[bool, str | None] = (False, None)


def disable_pydantic_plugins() -> None:
    """Make pydantic load no plugins in this process (the ``mlprov`` command only)."""
    global _saved
    if not _saved[0]:
        _saved = (True, os.environ.get(_VARIABLE))
    os.environ[_VARIABLE] = "__all__"


def user_environ(**extra: str) -> dict[str, str]:
    """This process's environment as the user set it, plus ``extra``."""
    env = dict(os.environ)
    changed, before = _saved
    if changed:
        if before is None:
            env.pop(_VARIABLE, None)
        else:
            env[_VARIABLE] = before
    env.update(extra)
    return env
