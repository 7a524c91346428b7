"""Checks of what a Python caller passes to the public API, at its boundary.

A training script calls ``mlprov.attest(...)`` without reading the source; a
wrong value must come back as one :class:`~mlprov.errors.ArgumentError` naming
the function and the argument, with a hint showing what to pass, never as a
``TypeError`` from deep inside ``pathlib`` or a pydantic dump. So each public
function declares what its arguments must be, once, above its definition::

    @checked(model=PATH, name=TEXT, out=PATH, key=optional(PATH), progress=CALLBACK)
    def attest(model, *, name, out, key=None, progress=None): ...

The decorator binds the call to the signature (a missing or unknown argument
is an ``ArgumentError`` too) and runs the named checks on the values the caller
actually gave; defaults are not checked. Checks only look at types and shapes
that are cheap to look at: whether a path exists, a key parses or a URI names
a model is the function's own business (and its own error). Internals stay
typed and trust their arguments.

Nothing here is public API.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from mlprov._internal.display import printable
from mlprov.errors import ArgumentError

__all__ = [
    "BOOL",
    "BYTES",
    "CALLBACK",
    "HASH_JOB",
    "INT",
    "NUMBER",
    "PATH",
    "PATHS",
    "STRINGS",
    "TEXT",
    "TEXT_OR_BYTES",
    "TRUST",
    "Check",
    "Invalid",
    "checked",
    "either",
    "instance",
    "int_in",
    "is_loaded_instance",
    "json_mapping",
    "lazy_instance",
    "mapping",
    "optional",
    "sequence_of",
    "sha256_hex",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Longest path and path component (bytes) accepted: Linux's PATH_MAX and NAME_MAX.
#: A longer one can name nothing; refusing it here says so instead of ENAMETOOLONG.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
#: Values beyond a signed 64-bit integer fit no database column nor count.
_INT64 = 2**63 - 1
_SHOWN = 60  # characters of a bad value shown in a message


class Invalid(Exception):
    """Raised by a check: the value is not ``expected``; ``example`` shows a good one."""

    def __init__(self, expected: str, example: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.example = example


#: A check: returns nothing, or raises :class:`Invalid`.
Check = Callable[[Any], None]


def describe(value: Any) -> str:
    """A short one-line description of a bad value: its type and a shortened repr."""
    kind = type(value).__name__
    try:
        shown = repr(value)
    except Exception:  # a caller's object whose __repr__ fails is still described
        shown = f"<{kind}>"
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "..."
    return printable(f"{kind} {shown}") if shown != kind else kind


def _path(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, str | os.PathLike):
        raise Invalid("a path (str or os.PathLike)")
    try:
        text = os.fspath(value)
    except Exception as exc:  # a PathLike whose __fspath__ fails
        raise Invalid("a path whose os.fspath() works") from exc
    if not isinstance(text, str):
        raise Invalid("a path given as text (str or pathlib.Path), not bytes")
    if not text:
        raise Invalid("a non-empty path")
    if "\0" in text:
        raise Invalid("a path without NUL characters")
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError as exc:  # a lone surrogate: no file has that name
        raise Invalid("a path the file system can encode") from exc
    if len(encoded) > MAX_PATH_BYTES or any(
            len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise Invalid(f"a path of at most {MAX_PATH_BYTES} bytes, each name at most "
                      f"{MAX_NAME_BYTES}")


def _text(value: Any) -> None:
    if not isinstance(value, str):
        raise Invalid("a string")


def _bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise Invalid("True or False")


def _callback(value: Any) -> None:
    if value is not None and not callable(value):
        raise Invalid("a callable (or None)")


def int_in(minimum: int | None = None, maximum: int = _INT64) -> Check:
    """An ``int`` (not a bool) between ``minimum`` and ``maximum``, both included."""
    def check(value: Any) -> None:
        low = -_INT64 - 1 if minimum is None else minimum
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= maximum:
            bounds = f" from {minimum}" if minimum is not None else ""
            raise Invalid(f"an integer{bounds}" + (f" up to {maximum}" if maximum < _INT64
                                                   else ""))
    return check


def _number(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise Invalid("a finite number")


def sha256_hex(value: Any) -> None:
    """A SHA-256 digest as 64 lower-case hex digits."""
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise Invalid("a SHA-256 digest (64 lower-case hex digits)")


def _bytes(value: Any) -> None:
    if not isinstance(value, bytes | bytearray):
        raise Invalid("bytes")


def _text_or_bytes(value: Any) -> None:
    # either(TEXT, BYTES) without an exception raised per call for bytes (JSON is
    # parsed from bytes thousands of times in a lineage walk); the same words.
    if not isinstance(value, str | bytes | bytearray):
        raise Invalid("a string or bytes")


def sequence_of(check: Check, what: str) -> Check:
    def sequence(value: Any) -> None:
        # One string is iterable but is not a list of them: a classic slip.
        if isinstance(value, str | bytes | os.PathLike | Mapping) or not isinstance(
                value, Iterable):
            raise Invalid(f"a list of {what}")
        # A one-shot iterator (a generator) is left whole for the function to use.
        for item in value if isinstance(value, Collection) else ():
            try:
                check(item)
            except Invalid as exc:
                raise Invalid(f"a list of {what} (an item is {describe(item)})") from exc
    return sequence


def mapping(*, values: Check | None = None, what: str = "values") -> Check:
    """A mapping with string keys (and, with ``values``, values passing that check)."""
    def check(value: Any) -> None:
        if not isinstance(value, Mapping):
            raise Invalid(f"a mapping (dict) of names to {what}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"a mapping with string keys (a key is {describe(key)})")
            if values is not None:
                try:
                    values(item)
                except Invalid as exc:
                    raise Invalid(f"a mapping of names to {what} ({key!r} is "
                                  f"{describe(item)})") from exc
    return check


def _json_value(value: Any, depth: int = 0) -> None:
    if depth > 64:
        raise Invalid("JSON-like values nested at most 64 levels")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("JSON-like values (finite numbers: no NaN or infinity)")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _json_value(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"JSON-like values (string keys; a key is {describe(key)})")
            _json_value(item, depth + 1)
        return
    raise Invalid(f"JSON-like values (str, number, bool, None, list, dict; found "
                  f"{describe(value)})")


def json_mapping(value: Any) -> None:
    """A mapping with string keys whose values are JSON-like (no NaN, no objects)."""
    if not isinstance(value, Mapping):
        raise Invalid("a mapping (dict) of JSON-like values")
    try:
        _json_value(value)
    except Invalid as exc:
        raise Invalid(f"a mapping (dict) of {exc.expected}") from exc


def instance(cls: type, what: str | None = None) -> Check:
    """An instance of ``cls``."""
    def check(value: Any) -> None:
        if not isinstance(value, cls):
            raise Invalid(what or f"a {cls.__name__}")
    return check


def is_loaded_instance(value: Any, module: str, name: str) -> bool:
    """Whether ``value`` is an instance of ``module.name``, without importing ``module``.

    A module not imported yet defines no instance, so the answer is then no.
    """
    import sys

    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(value, cls)


def lazy_instance(module: str, name: str, what: str | None = None) -> Check:
    """An instance of ``module.name``, never importing it to ask (:func:`is_loaded_instance`).

    Checking a path against ``CardInput`` does not load pydantic.
    """
    def check(value: Any) -> None:
        if not is_loaded_instance(value, module, name):
            raise Invalid(what or f"a {module}.{name}")
    return check


def optional(check: Check) -> Check:
    """``None``, or a value passing ``check``."""
    def maybe(value: Any) -> None:
        if value is not None:
            check(value)
    return maybe


def either(*checks: Check) -> Check:
    """A value passing one of ``checks`` (the message lists what each wanted)."""
    def check(value: Any) -> None:
        wanted = []
        for one in checks:
            try:
                one(value)
            except Invalid as exc:
                wanted.append(exc.expected)
            else:
                return
        raise Invalid(" or ".join(wanted))
    return check


PATH: Check = _path
#: A :class:`~mlprov.trust.Trust` or a trust file.
TRUST: Check = either(lazy_instance("mlprov.trust", "Trust", "a mlprov.trust.Trust"), _path)
#: An evidence directory, or an :class:`~mlprov.evidence.EvidenceSource`.
EVIDENCE: Check = either(lazy_instance("mlprov.evidence", "EvidenceSource",
                                       "a mlprov.evidence.EvidenceSource"), _path)
#: A :class:`~mlprov.hashing.HashJob` already hashing the model.
HASH_JOB: Check = lazy_instance("mlprov.hashing", "HashJob")
TEXT: Check = _text
BOOL: Check = _bool
INT: Check = int_in()
NUMBER: Check = _number
BYTES: Check = _bytes
#: ``either(TEXT, BYTES)``, in one test.
TEXT_OR_BYTES: Check = _text_or_bytes
CALLBACK: Check = _callback
PATHS: Check = sequence_of(_path, "paths")
STRINGS: Check = sequence_of(_text, "strings")


def checked(**checks: Check) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Check the named arguments of every call of the decorated function.

    Raises (from the decorated function):
        ArgumentError: a missing or unknown argument, or a value a check refused;
            one line naming the function and the argument.
    """
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        unknown = set(checks) - _parameter_names(func)
        if unknown:  # a typo in a check list is a bug in mlprov: fail at import
            raise AssertionError(f"{func.__qualname__} has no argument {sorted(unknown)}")
        label = f"{func.__qualname__.replace('.<locals>', '')}()"
        to_check = tuple(checks.items())
        # The binder is made on the first call: most decorated functions of an
        # imported module are never called in a process (inspect.signature() of
        # two dozen functions costs about 2 ms at import).
        binders: list[Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]] = []

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not binders:
                binders.append(_binder(func, label))
            given = binders[0](args, kwargs)
            for name, check in to_check:
                if name in given:
                    value = given[name]
                    try:
                        check(value)
                    except Invalid as exc:
                        raise ArgumentError(
                            f"{label}: {name} must be {exc.expected}, not {describe(value)}",
                            hint=exc.example or _example(func)) from None
            return func(*args, **kwargs)

        return wrapper

    return decorate


def _parameter_names(func: Callable[..., Any]) -> frozenset[str]:
    """The names ``func`` takes (its code object's, without inspect where it can)."""
    code = getattr(func, "__code__", None)
    if code is None or hasattr(func, "__wrapped__"):
        return frozenset(inspect.signature(func).parameters)
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return frozenset(code.co_varnames[:count])


def _binder(func: Callable[..., Any], label: str
            ) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """The arguments of one call of ``func`` by name, or ArgumentError naming what is wrong."""
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    positional = tuple(p.name for p in parameters
                       if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # The common shape (no *args, **kwargs or positional-only): bound without
    # inspect's bind(), which costs microseconds on helpers called per file.
    simple = all(p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                            inspect.Parameter.KEYWORD_ONLY) for p in parameters)
    names = frozenset(signature.parameters)
    required = frozenset(p.name for p in parameters if p.default is p.empty)

    def arguments_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if simple and len(args) <= len(positional):
            given = dict(zip(positional, args, strict=False))
            if (not kwargs or (names.issuperset(kwargs) and given.keys().isdisjoint(kwargs))):
                given.update(kwargs)
                if required <= given.keys():
                    return given
        try:
            return dict(signature.bind(*args, **kwargs).arguments)
        except TypeError as exc:  # missing, unknown or repeated argument
            raise ArgumentError(f"{label}: {exc}", hint=_example(func)) from None

    return arguments_of


def _example(func: Callable[..., Any]) -> str:
    """The first call shown under ``Example:`` in ``func``'s docstring, as a hint."""
    lines = (inspect.getdoc(func) or "").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().rstrip(":") == "Example"]
    call: list[str] = []
    for line in lines[starts[0] + 1:] if starts else []:
        stripped = line.strip()
        if not call and (not stripped or stripped.startswith(("import ", "from ", "#"))
                         or "(" not in stripped):
            continue
        call.append(stripped)
        text = " ".join(call)
        if text.count("(") <= text.count(")"):
            return f"e.g. {text}"
    return f"see help() of {func.__qualname__} for the arguments it takes"
