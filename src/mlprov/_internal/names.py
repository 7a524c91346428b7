r"""Names as whole strings: model and deployment names, aliases, version numbers.

Every name that enters mlprov (CLI, Python API, attest, register, resolve) is
checked here against the whole string: ``\A...\Z``, never ``^...$`` (in Python
``$`` also matches before a trailing newline, so ``"production\n"`` would pass
a ``^[a-z]+$`` check and then miss every gate keyed by ``"production"``). Only
ASCII letters, digits and a few punctuation marks: no control characters, no
look-alike or bidirectional characters that would show one name as another.

Nothing here is public API; :mod:`mlprov.registry` re-exports the checks.
"""

from __future__ import annotations

import re
from typing import Any

from mlprov.errors import InputError

__all__ = ["check_alias", "check_name", "check_version", "parse_version"]

_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,199}\Z")
_ALIAS = re.compile(r"\A[a-z][a-z0-9_-]{0,99}\Z")
_VERSION_LIKE = re.compile(r"\Av[0-9]+\Z")
_VERSION = re.compile(r"\A[1-9][0-9]{0,17}\Z")


def check_name(name: Any, *, what: str = "model name") -> str:
    """Return ``name`` if it can be used in ``models:/`` URIs.

    Raises:
        InputError: it holds characters other than ASCII letters, digits and ``._+-``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"invalid {what} {name!r}",
                         hint="use letters, digits and . _ + - (starting with a letter or "
                              "digit, at most 200 characters)")
    return name


def check_alias(alias: Any) -> str:
    """Return ``alias`` if it is a valid alias (lower-case, not a stage or ``latest``).

    Raises:
        InputError: otherwise.
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InputError(f"invalid alias {alias!r}",
                         hint="use lower-case letters, digits, _ and -, starting with a letter")
    if alias == "latest" or _VERSION_LIKE.match(alias):
        raise InputError(f"alias {alias!r} is reserved ('latest' and v<N> name versions)",
                         hint="choose another alias, e.g. production or champion")
    return alias


def check_version(version: Any) -> int:
    """Return ``version`` if it is a version number (an ``int`` >= 1, not a bool).

    Raises:
        InputError: otherwise.
    """
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 10**18:
        raise InputError(f"invalid version {version!r}", hint="versions are numbered 1, 2, 3...")
    return version


def parse_version(text: str) -> int:
    """Parse a version number written in ASCII digits (``"3"``; not ``" 3"``, ``"03"``, ``"٣"``).

    Raises:
        InputError: anything else.
    """
    if not isinstance(text, str) or not _VERSION.match(text):
        raise InputError(f"invalid version {text!r}", hint="versions are numbered 1, 2, 3...")
    return int(text)
