r"""Bounded reads of untrusted files: the one place mlprov opens what others wrote.

Evidence files, bundles, reviews, trust files, keys, metrics, configs, cards and
policy data all come from people mlprov does not trust. Reading one must not
hang (a FIFO blocks ``open()`` until a writer appears), exhaust memory (a
symlink to ``/dev/zero``, a file that grows while read, a YAML "billion laughs"
of nested aliases) or overflow the stack (JSON nested 100,000 levels deep).
So every read here:

* opens with ``O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`` (and ``O_NOFOLLOW``
  where the caller forbids symlinks), so opening a FIFO or a terminal returns at
  once, then ``fstat``\ s the *open* descriptor and refuses anything that is not
  a regular file (no race between a check and the open);
* checks the size against a per-kind limit before reading, and reads at most
  ``limit + 1`` bytes, so a file that grows while being read is refused too;
* bounds what parsing the bytes may build: JSON nesting depth (counted before
  the parser runs), YAML nesting depth and the size of the document its aliases
  expand to (an alias bomb is refused as soon as it passes the bound, and an
  alias to an anchor still being built is refused), TOML nesting depth.

Errors are :class:`~mlprov.errors.MlprovError`\ s of the class the caller names,
one line naming the file. A missing file raises :class:`FileNotFoundError`
unchanged, so callers keep their own message for that case.

Internal API, not covered by any compatibility promise.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.jsondepth import MAX_JSON_DEPTH, check_json_depth
from mlprov.errors import InputError, MlprovError

if TYPE_CHECKING:

    import yaml

__all__ = [
    "MAX_CARD_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_ENVIRONMENT_BYTES",
    "MAX_EVIDENCE_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_KEY_BYTES",
    "MAX_METRICS_BYTES",
    "MAX_POLICY_DATA_BYTES",
    "MAX_TRUST_BYTES",
    "MAX_YAML_NODES",
    "check_json_depth",
    "load_toml",
    "load_yaml",
    "read_bytes",
    "read_json",
    "read_text",
]

_MiB = 1024 * 1024

#: An evidence file: a Sigstore bundle, the SBOM, the index, a review, a lineage
#: parent's evidence (the same bound as :data:`mlprov.canonical.MAX_DOCUMENT_BYTES`).
MAX_EVIDENCE_BYTES = 64 * _MiB
#: A trust file (YAML) or a Sigstore trusted root / trust config (JSON).
MAX_TRUST_BYTES = 4 * _MiB
#: A PEM key: a few KiB at most.
MAX_KEY_BYTES = 1 * _MiB
#: An identity config (``mlprov.yaml``/``.json``/``.toml``).
MAX_CONFIG_BYTES = 4 * _MiB
#: A metrics file given to ``attest --metrics``.
MAX_METRICS_BYTES = 16 * _MiB
#: A model-card file.
MAX_CARD_BYTES = 4 * _MiB
#: A policy data file (``data.yaml``/``data.json``).
MAX_POLICY_DATA_BYTES = 16 * _MiB
#: A training environment: requirements or lock file (``attest --environment``).
MAX_ENVIRONMENT_BYTES = 16 * _MiB

#: The most nodes a YAML document may stand for once its aliases are expanded.
MAX_YAML_NODES = 1_000_000

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path | str, *, what: str, limit: int, follow_symlinks: bool = True,
               error: type[MlprovError] = InputError) -> bytes:
    """Read a whole regular file of at most ``limit`` bytes.

    Args:
        path: the file.
        what: how the message names it (``"trust file"``, ``"evidence file"``...).
        limit: the most bytes the file may hold.
        follow_symlinks: whether the last component may be a symlink (a user-given
            path may; a file inside an evidence directory may not).
        error: the :class:`MlprovError` class raised.

    Raises:
        FileNotFoundError: the file does not exist (callers word that case).
        MlprovError: of class ``error``: a FIFO, device, socket or directory, a
            symlink where none is allowed, larger than ``limit``, or unreadable.
    """
    flags = _OPEN_FLAGS | (0 if follow_symlinks else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise error(f"{what} {path} is a symlink; refusing to follow it",
                        hint="replace the symlink with the file itself") from exc
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is {_kind_of(info.st_mode)}, not a regular file",
                        hint="pass a regular file; mlprov never reads FIFOs, devices "
                             "or sockets")
        if info.st_size > limit:
            raise error(f"{what} {path} is too large ({info.st_size} bytes, the limit is "
                        f"{limit})", hint="pass the right file; this one is not a "
                                          f"{what} mlprov wrote or accepts")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, _MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except BlockingIOError as exc:  # a regular file never blocks; refuse rather than spin
        raise error(f"cannot read {what} {path}: it would block") from exc
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if total > limit:
        raise error(f"{what} {path} is too large (it grew past the limit of {limit} bytes "
                    "while being read)")
    return b"".join(chunks)


def read_text(path: Path | str, *, what: str, limit: int, follow_symlinks: bool = True,
              error: type[MlprovError] = InputError) -> str:
    """:func:`read_bytes`, decoded as UTF-8.

    Raises:
        FileNotFoundError: the file does not exist.
        MlprovError: see :func:`read_bytes`, or the bytes are not UTF-8.
    """
    data = read_bytes(path, what=what, limit=limit, follow_symlinks=follow_symlinks,
                      error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from exc


# --- JSON ------------------------------------------------------------------------------

def read_json(path: Path | str, *, what: str, limit: int, follow_symlinks: bool = True,
              error: type[MlprovError] = InputError) -> Any:
    """Read and strictly parse a JSON file (see :func:`mlprov.canonical.loads_strict`).

    Raises:
        FileNotFoundError: the file does not exist.
        MlprovError: of class ``error``: see :func:`read_bytes`, or not strict JSON.
    """
    from mlprov.canonical import loads_strict

    data = read_bytes(path, what=what, limit=limit, follow_symlinks=follow_symlinks,
                      error=error)
    try:
        return loads_strict(data, what=f"{what} {path}")
    except InputError as exc:
        if isinstance(exc, error):
            raise
        raise error(str(exc)) from exc


# --- YAML ------------------------------------------------------------------------------

def _yaml_problem(exc: Exception) -> str:
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


def _bounded_loader(max_depth: int, max_nodes: int,
                    unique_keys: bool) -> type[yaml.SafeLoader]:
    import yaml
    from yaml.composer import ComposerError
    from yaml.constructor import ConstructorError

    class _Bounded(yaml.SafeLoader):
        """A SafeLoader that counts what aliases expand to and how deep nodes nest."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            self._nodes = 0  # nodes composed so far, each alias counted as its expansion
            self._weights: dict[str, int] = {}

        def _count(self, n: int, mark: Any) -> None:
            self._nodes += n
            if self._nodes > max_nodes:
                raise ComposerError(None, None, f"document expands to more than {max_nodes} "
                                    "nodes (an alias bomb?)", mark)

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                anchor = event.anchor
                if anchor in self.anchors and anchor not in self._weights:
                    raise ComposerError(None, None, f"alias *{anchor} refers to the node "
                                        "that holds it (a recursive document)",
                                        event.start_mark)
                if anchor in self._weights:
                    self._count(self._weights[anchor], event.start_mark)
                return super().compose_node(parent, index)
            event = self.peek_event()  # type: ignore[no-untyped-call]
            self._depth += 1
            if self._depth > max_depth:
                raise ComposerError(None, None, f"nested deeper than {max_depth} levels",
                                    event.start_mark)
            before = self._nodes
            self._count(1, event.start_mark)
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                self._weights[anchor] = self._nodes - before
            return node

    if unique_keys:
        def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError as exc:
                    raise ConstructorError(None, None, "a mapping key must be a scalar",
                                           key_node.start_mark) from exc
                if duplicate:
                    raise ConstructorError(None, None, f"duplicate key {key!r}",
                                           key_node.start_mark)
            return loader.construct_mapping(node, deep=True)

        _Bounded.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return _Bounded


def load_yaml(text: str, *, what: str, error: type[MlprovError] = InputError,
              unique_keys: bool = True, max_depth: int = MAX_JSON_DEPTH,
              max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse one YAML document safely (PyYAML's SafeLoader), bounded.

    Anchors and aliases are allowed, but the document may stand for at most
    ``max_nodes`` nodes once they are expanded, an alias may not refer to the
    node that holds it, and nodes may nest at most ``max_depth`` deep. With
    ``unique_keys``, a mapping key given twice is refused (PyYAML keeps the last).

    Raises:
        MlprovError: of class ``error``: ``what is not valid YAML: <problem> at line L``.
    """
    import yaml

    loader = _bounded_loader(max_depth, max_nodes, unique_keys)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"{what} is not valid YAML: {_yaml_problem(exc)}") from exc
    except RecursionError as exc:  # not expected: depth is bounded above
        raise error(f"{what} is not valid YAML: nested too deeply") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # a scalar the SafeLoader's constructors cannot build (a timestamp out of range...)
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise error(f"{what} is not valid YAML: {why}") from exc


# --- TOML ------------------------------------------------------------------------------

def load_toml(text: str, *, what: str, error: type[MlprovError] = InputError) -> Any:
    """Parse TOML (``tomllib``); its size is bounded by the read, its nesting here.

    Raises:
        MlprovError: of class ``error``: ``what is not valid TOML: <problem>``.
    """
    import tomllib

    depth = text.count("[") + text.count("{")
    if depth > MAX_JSON_DEPTH:
        # tomllib recurses on inline arrays and tables; an exact depth needs a parse
        # of its own, so refuse only when nesting (not just bracket count) is too deep
        _check_toml_nesting(text, what=what, error=error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise error(f"{what} is not valid TOML: nested too deeply") from exc


def _check_toml_nesting(text: str, *, what: str, error: type[MlprovError]) -> None:
    # Same counting as JSON, with TOML's string forms: basic "..." and literal '...'.
    depth = 0
    for match in re.finditer(r'"(?:[^"\\\n]++|\\.)*+"|\'[^\'\n]*+\'|#[^\n]*+|[\[\]{}]',
                             text):
        first = match.group()[0]
        if first in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise error(f"{what} is not valid TOML: nested deeper than "
                            f"{MAX_JSON_DEPTH} levels")
        elif first in "]}":
            depth = max(0, depth - 1)
