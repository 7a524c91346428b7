"""The Rego engine behind :mod:`mlprov.policy`: regopy (rego-cpp), in-process.

regopy 1.5.2 has pitfalls that would make a gate fail open or kill the
process; each is fenced here (docs/policy.md lists them):

- Rego v0 syntax is accepted, but a v0 partial set (``deny[msg] { ... }``)
  evaluates to an object: :func:`lint` refuses rule bodies without ``if``,
  and :mod:`mlprov.policy` refuses a ``deny`` that is not a set.
- ``with input as VALUE`` crashes the interpreter (SIGSEGV) as soon as a rule
  evaluated under it calls a built-in; :func:`lint` refuses it (mock single
  keys instead: ``with input.model as {...}``).
- Built-in errors (division by zero, type errors) are silently undefined by
  default, which can drop a deny: strict built-in errors are turned on.
- Parse errors print a report on stdout at the default log level: the log
  level is set to none, and the error is read from the exception instead.
- Evaluation errors carry their message only in the output's node tree, and
  some (an unknown function, recursion) come back as a non-JSON "ok" output:
  :meth:`Engine.evaluate` reads both.
- ``regopy.Input`` rounds floats to 6 decimals (0.6999996 passes ``>= 0.7``),
  wraps integers beyond 64 bits to 0 and cuts strings at a NUL: the input is
  handed over as JSON text (:func:`input_term`), which the engine parses
  exactly.
- The output's JSON text leaves quotes unescaped in strings some built-ins
  made, so an input string (a file name) could reshape it: results are read
  from the node tree, by node kind (:func:`_node_to_python`), never by
  parsing that text.
- ``Bundle``/``Interpreter`` objects alive at interpreter shutdown print
  ``Exception ignored`` from ``__del__``: every engine is closed at exit.

Nothing here is public API.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Engine", "LintIssue", "RegoFailure", "RegoSet", "Token", "input_term", "is_plain",
           "lint",
           "package_of", "rule_names", "tokens"]


class RegoFailure(Exception):
    """The engine refused a module or failed to evaluate a query (one-line message)."""


@dataclass(frozen=True)
class Token:
    """One lexical token of a Rego module (strings and comments kept whole)."""

    kind: str  # ident | string | number | op | nl | other
    text: str
    line: int
    column: int


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|==|!=|<=|>=|[{}\[\]().,;:=<>|&+\-*/%])
  | (?P<other>.)
""", re.VERBOSE)


def tokens(source: str) -> Iterator[Token]:
    """Yield the tokens of ``source``, without whitespace and comments."""
    line, line_start = 1, 0
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup or "other"
        text = match.group()
        column = match.start() - line_start + 1
        if kind == "nl":
            yield Token("nl", text, line, column)
        elif kind == "raw":
            yield Token("string", text, line, column)
        elif kind not in ("ws", "comment"):
            yield Token(kind, text, line, column)
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + text.rindex("\n") + 1


@dataclass(frozen=True)
class LintIssue:
    """A construct mlprov refuses, with where it is and what to write instead."""

    line: int
    column: int
    message: str


# After these, a '{' at the top level opens a value (object or set), not a rule body.
_VALUE_CONTEXT = {":=", "=", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "&",
                  "|", ",", ":", "(", "[", "{", "contains", "in", "if", "else", "not", "some",
                  "every", "with", "as", "default"}


def lint(source: str) -> list[LintIssue]:
    """Find Rego v0 rule bodies and ``with input as`` in ``source``.

    A rule body at the top level must follow ``if`` (Rego v1); ``p { ... }``,
    ``p[x] { ... }`` and ``p = v { ... }`` are v0 and are refused, because
    regopy evaluates v0 partial sets differently from OPA.
    """
    issues: list[LintIssue] = []
    depth = 0
    previous: Token | None = None
    seen_if = False  # an `if` earlier in this top-level statement (`p if every x in y {`)
    recent: list[Token] = []
    for token in tokens(source):
        if token.kind == "nl":
            if depth == 0:
                seen_if = False
            continue
        recent = [*recent[-2:], token]
        if [t.text for t in recent] == ["with", "input", "as"]:
            issues.append(LintIssue(recent[0].line, recent[0].column,
                                    "`with input as ...` crashes the Rego engine (regopy 1.5.2); "
                                    "mock single keys instead: `with input.model as {...}`"))
        if token.text in ("{", "[", "("):
            if (token.text == "{" and depth == 0 and not seen_if and previous is not None
                    and previous.text not in _VALUE_CONTEXT):
                issues.append(LintIssue(token.line, token.column,
                                        "Rego v0 rule body (no `if`); write Rego v1: "
                                        "`deny contains msg if { ... }`, `allow if { ... }`"))
            depth += 1
        elif token.text in ("}", "]", ")"):
            depth = max(depth - 1, 0)
        elif token.text == ";" and depth == 0:
            seen_if = False
        elif token.text == "if" and depth == 0:
            seen_if = True
        previous = token
    return issues


def package_of(source: str) -> str | None:
    """The package a module declares (``package a.b`` gives ``a.b``)."""
    words: list[str] = []
    taking = False
    for token in tokens(source):
        if not taking:
            if token.kind == "ident" and token.text == "package":
                taking = True
            elif token.kind != "nl":
                return None
            continue
        if token.kind == "nl":
            break
        words.append(token.text)
    name = "".join(words)
    return name or None


def rule_names(source: str) -> list[str]:
    """Names of the rules a module defines at its top level, in order, once each."""
    names: list[str] = []
    depth = 0
    at_start = True
    for token in tokens(source):
        if token.kind == "nl":
            at_start = at_start or depth == 0
            continue
        if at_start and depth == 0 and token.kind == "ident" \
                and token.text not in ("package", "import", "default") and token.text not in names:
            names.append(token.text)
        if token.text == "default" and depth == 0:
            at_start = True
            continue
        at_start = False
        if token.text in ("{", "[", "("):
            depth += 1
        elif token.text in ("}", "]", ")"):
            depth = max(depth - 1, 0)
    return names


# --- reading regopy's errors ------------------------------------------------------------

def _atoms(text: str, tag: str) -> list[str]:
    """Length-prefixed values after ``(tag N:`` in an engine error dump."""
    data = text.encode("utf-8", "replace")
    found: list[str] = []
    for match in re.finditer(rb"\(" + re.escape(tag.encode()) + rb" (\d+):", data):
        size = int(match.group(1))
        found.append(data[match.end():match.end() + size].decode("utf-8", "replace"))
    return found


def _locations(text: str) -> list[tuple[str, int]]:
    """(module name, byte offset) of each located error in an engine error dump."""
    data = text.encode("utf-8", "replace")
    found: list[tuple[str, int]] = []
    for match in re.finditer(rb"\(error (\d+):", data):
        size = int(match.group(1))
        rest = data[match.end():]
        name = rest[:size].decode("utf-8", "replace")
        where = re.match(rb"\|(\d+)\|", rest[size:])
        if where:
            found.append((name, int(where.group(1))))
    return found


def _line_col(source: str, offset: int) -> tuple[int, int]:
    before = source.encode("utf-8")[:offset].decode("utf-8", "replace")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def describe_error(dump: str, sources: dict[str, str]) -> str:
    """One line from an engine error dump: the first message and where it is."""
    messages = _atoms(dump, "errormsg")
    message = messages[0] if messages else " ".join(dump.split())[:200]
    for name, offset in _locations(dump):
        if name in sources:
            line, column = _line_col(sources[name], offset)
            return f"{name}:{line}:{column}: {message}"
    return message


def _regopy() -> tuple[Any, Any]:
    """Import regopy and its low-level bindings (on first use: a 14 MB library).

    Raises:
        RegoFailure: regopy is not installed.
    """
    import importlib

    try:
        return (importlib.import_module("regopy"),
                importlib.import_module("regopy.rego_shared"))
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RegoFailure("the Rego engine (regopy) is not installed: pip install regopy") \
            from exc


def _node_errors(output_impl: Any) -> list[str]:
    """Messages of the error nodes of a failed query (regopy keeps them only there)."""
    regopy, rs = _regopy()
    error_kinds = (regopy.NodeKind.ErrorSeq.value, regopy.NodeKind.Error.value)
    message_kind = regopy.NodeKind.ErrorMessage.value
    messages: list[str] = []
    try:
        root = rs.rego_output_node(output_impl)
        stack = [root] if root else []
        while stack and len(messages) < 10:
            node = stack.pop()
            kind = rs.rego.regoNodeType(node)
            if kind == message_kind:
                messages.append(rs.rego_node_value(node))
            elif kind in error_kinds:
                size = rs.rego_node_size(node)
                stack.extend(rs.rego_node_get(node, i) for i in reversed(range(size)))
    except Exception:  # reading the error must never hide that there was one
        return messages
    return list(dict.fromkeys(messages))


_MAX_DEPTH = 100


def _string_value(raw: str) -> str:
    """The text of a String node.

    rego-cpp keeps a string's JSON escapes in the node: usually without the
    quotes (strings from the input, data, literals, ``sprintf``), sometimes with
    them (results of ``concat``, ``lower``, ...). Escaped content never starts
    with a bare quote, so the two forms cannot be confused. What fits neither
    (``sprintf`` of a quoted-form string embeds it, quotes and all) is taken as
    it is. Only the node's kind, never its text, shapes the result, so a string
    can at worst be shown differently, never change a decision.
    """
    candidates = [raw] if raw.startswith('"') else [f'"{raw}"']
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, str):
            return value
    return raw


def _number_value(raw: str, *, is_int: bool) -> int | float:
    try:
        return int(raw) if is_int else float(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError as exc:
            raise RegoFailure(f"the engine returned a malformed number: {raw[:40]!r}") from exc


def _node_to_python(rs: Any, kinds: Any, node: Any, depth: int = 0) -> Any:
    """A result node as a Python value, read from the node tree's kinds.

    The engine's JSON text is never parsed: rego-cpp 1.5.2 leaves quotes
    unescaped in strings that some built-ins produced, so input strings could
    reshape it (a file name closing a set and opening ``"deny": []``).
    """
    if depth > _MAX_DEPTH:
        raise RegoFailure("result nested too deeply")
    kind = rs.rego.regoNodeType(node)
    size = rs.rego_node_size(node)
    if kind in (kinds.Term.value, kinds.Scalar.value):
        if size != 1:
            raise RegoFailure(f"unexpected engine result node (kind {kind}, size {size})")
        return _node_to_python(rs, kinds, rs.rego_node_get(node, 0), depth + 1)
    if kind in (kinds.Array.value, kinds.Terms.value):
        return [_node_to_python(rs, kinds, rs.rego_node_get(node, i), depth + 1)
                for i in range(size)]
    if kind == kinds.Set.value:
        items = [_node_to_python(rs, kinds, rs.rego_node_get(node, i), depth + 1)
                 for i in range(size)]
        return RegoSet(items)
    if kind == kinds.Object.value:
        result: dict[str, Any] = {}
        for i in range(size):
            item = rs.rego_node_get(node, i)
            if rs.rego_node_size(item) != 2:
                raise RegoFailure("malformed object item in the engine's result")
            key = _node_to_python(rs, kinds, rs.rego_node_get(item, 0), depth + 1)
            if not isinstance(key, str):
                raise RegoFailure("an object in the policy's result has a non-string key")
            result[key] = _node_to_python(rs, kinds, rs.rego_node_get(item, 1), depth + 1)
        return result
    if kind == kinds.String.value:
        return _string_value(rs.rego_node_value(node))
    if kind == kinds.Int.value:
        return _number_value(rs.rego_node_value(node), is_int=True)
    if kind == kinds.Float.value:
        return _number_value(rs.rego_node_value(node), is_int=False)
    if kind == kinds.True_.value:
        return True
    if kind == kinds.False_.value:
        return False
    if kind == kinds.Null.value:
        return None
    raise RegoFailure(f"unexpected engine result node (kind {kind})")


class RegoSet(list[Any]):
    """A Rego set read from the engine (a list that remembers it was a set)."""


_INT64 = 2**63
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def is_plain(value: Any, depth: int = 0) -> bool:
    """Whether regopy's ``Input`` builder hands ``value`` over exactly.

    It keeps a value exactly when every float survives C's ``%f`` (rego-cpp
    stores it as ``std::to_string``: 0.91 does, 0.6999996 becomes 0.7), every
    integer fits 64 bits and no string holds a character JSON escapes (a quote,
    a backslash, a control character or NUL: the builder stores strings raw,
    rego-cpp compares them escaped). Anything else goes as JSON text
    (:func:`input_term`), which is exact but parsed 3x slower. Both paths give the
    same values (``tests/policy/test_engine_input.py``).
    """
    if depth > _MAX_DEPTH:
        return False
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    if isinstance(value, float):
        return value == value and abs(value) != float("inf") and float(f"{value:f}") == value
    if isinstance(value, str):
        return _NEEDS_ESCAPE.search(value) is None and _no_surrogates(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(k, depth) and is_plain(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_plain(v, depth + 1) for v in value)
    return False


def _no_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def input_term(value: Any) -> str:
    """``value`` as the JSON text the engine parses as its input, losing nothing.

    regopy's ``Input`` objects round floats to 6 decimals (0.6999996 becomes
    0.7), wrap integers beyond 64 bits to 0 and cut strings at a NUL; the
    engine's own JSON parser keeps all three exact. Text outside ASCII stays
    UTF-8, not JSON escapes: rego-cpp keeps a string's escapes as written, so
    an escaped "é" would not equal the policy's literal "é". A number the engine
    cannot hold (beyond the double range, a subnormal) makes it fail, which denies.

    Raises:
        RegoFailure: the value is not JSON (NaN, infinity, a non-string key) or
            holds a lone surrogate (not UTF-8).
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise RegoFailure(f"input refused: not JSON ({exc})") from exc
    return text


_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
_RELEASE_REGISTERED = [False]


def _release_all() -> None:
    """Free every engine's regopy objects while regopy's module is still whole.

    regopy's ``Bundle`` and ``Interpreter`` free themselves in ``__del__``
    through module globals; objects that live until interpreter shutdown (the
    compiled-policy cache, or the ``mlprov`` console script's ``gc.freeze`` at
    exit) would run it after those globals are gone and print ``Exception
    ignored in: ... __del__`` on stderr. Registered with :mod:`atexit` when
    the first engine is built, so it runs before any earlier exit hook.
    """
    with _LIVE_LOCK:
        engines = list(_LIVE)
    for engine in engines:
        engine.close()


def _track(engine: Engine) -> None:
    with _LIVE_LOCK:
        if not _RELEASE_REGISTERED[0]:
            import atexit

            atexit.register(_release_all)
            _RELEASE_REGISTERED[0] = True
        _LIVE.add(engine)


class Engine:
    """One compiled set of Rego modules and data, queried many times.

    Modules are parsed when added; entry points (``pkg/rule``) are compiled
    into a bundle once, then each query only sets the input and runs the plan.
    rego-cpp interpreters are not thread-safe, so queries are serialised.
    """

    def __init__(self, modules: Sequence[tuple[str, str]], data: dict[str, Any]) -> None:
        """Add ``modules`` (name, source) and ``data``.

        Raises:
            RegoFailure: regopy is missing, a module does not parse, or the data is refused.
        """
        regopy, _ = _regopy()
        _track(self)
        self._lock = threading.Lock()
        self._sources = dict(modules)
        self._bundles: dict[tuple[str, ...], Any] = {}
        interpreter = regopy.Interpreter()
        interpreter.log_level = regopy.LogLevel.NONE  # else parse errors are printed on stdout
        interpreter.strict_built_in_errors = True  # else a failing built-in drops a deny
        for name, source in modules:
            try:
                interpreter.add_module(name, source)
            except regopy.RegoError as exc:
                raise RegoFailure(describe_error(str(exc), self._sources)) from exc
        if data:
            try:
                interpreter.add_data_json(json.dumps(data, ensure_ascii=True, allow_nan=False))
            except regopy.RegoError as exc:
                raise RegoFailure(f"policy data refused: {describe_error(str(exc), {})}") \
                    from exc
            except (TypeError, ValueError) as exc:
                raise RegoFailure(f"policy data refused: not JSON ({exc})") from exc
        self._interpreter: Any = interpreter

    def close(self) -> None:
        """Free the compiled bundles and the interpreter now (later queries fail)."""
        with self._lock:
            self._bundles.clear()
            self._interpreter = None

    def compile(self, entrypoints: Sequence[str]) -> None:
        """Compile ``entrypoints`` (``a/b/rule``) into a bundle, once.

        Raises:
            RegoFailure: the modules do not compile.
        """
        key = tuple(entrypoints)
        with self._lock:
            self._bundle(key)

    def _bundle(self, key: tuple[str, ...]) -> Any:
        if self._interpreter is None:
            raise RegoFailure("the policy engine was closed")
        bundle = self._bundles.get(key)
        if bundle is None:
            regopy, _ = _regopy()
            try:
                bundle = self._interpreter.build(None, list(key))
            except regopy.RegoError as exc:
                raise RegoFailure(describe_error(str(exc), self._sources)) from exc
            if not bundle.ok():
                raise RegoFailure("the policy does not compile")
            self._bundles[key] = bundle
        return bundle

    def evaluate(self, entrypoints: Sequence[str], input_value: Any) -> list[Any]:
        """Set the input (a JSON value; None keeps the last one) and evaluate each entry point.

        Returns:
            One value per entry point; None where it is undefined.

        Raises:
            RegoFailure: compiling or evaluating failed (the engine's message).
        """
        regopy, rs = _regopy()
        key = tuple(entrypoints)
        with self._lock:
            bundle = self._bundle(key)
            if input_value is not None:
                try:
                    if is_plain(input_value):  # regopy's node builder: the same values
                        self._interpreter.set_input(regopy.Input(input_value))
                    else:
                        self._interpreter.set_input_term(input_term(input_value))
                except regopy.RegoError as exc:
                    raise RegoFailure(f"input refused: {describe_error(str(exc), {})}") \
                        from exc
            values = []
            for entrypoint in key:
                try:
                    output = rs.rego_bundle_query_entrypoint(self._interpreter._impl,
                                                             bundle._impl, entrypoint)
                except regopy.RegoError as exc:
                    raise RegoFailure(describe_error(str(exc), self._sources)) from exc
                try:
                    values.append(self._read(regopy, rs, output))
                finally:
                    rs.rego_free_output(output)
        return values

    def evaluate_each(self, entrypoints: Sequence[str]) -> list[tuple[Any, str | None]]:
        """Evaluate each entry point on its own (no input); (value, error) per entry point.

        Raises:
            RegoFailure: the entry points do not compile.
        """
        regopy, rs = _regopy()
        key = tuple(entrypoints)
        results: list[tuple[Any, str | None]] = []
        with self._lock:
            bundle = self._bundle(key)
            for entrypoint in key:
                try:
                    output = rs.rego_bundle_query_entrypoint(self._interpreter._impl,
                                                             bundle._impl, entrypoint)
                except regopy.RegoError as exc:
                    results.append((None, describe_error(str(exc), self._sources)))
                    continue
                try:
                    results.append((self._read(regopy, rs, output), None))
                except RegoFailure as exc:
                    results.append((None, str(exc)))
                finally:
                    rs.rego_free_output(output)
        return results

    def _read(self, regopy: Any, rs: Any, output: Any) -> Any:
        """The value of a query's first expression, from the node tree; None when undefined."""
        try:
            ok = rs.rego_output_ok(output)
        except regopy.RegoError as exc:
            raise RegoFailure(f"cannot read the engine's output: {exc}") from exc
        if not ok:
            raise RegoFailure("; ".join(_node_errors(output)) or "evaluation failed")
        try:
            root = rs.rego_output_node(output)
            root_kind = rs.rego.regoNodeType(root) if root else None
        except regopy.RegoError as exc:
            raise RegoFailure(f"cannot read the engine's output: {exc}") from exc
        kinds = regopy.NodeKind
        if root_kind in (kinds.ErrorSeq.value, kinds.Error.value):
            raise RegoFailure("; ".join(_node_errors(output)) or "evaluation failed")
        if root_kind is None or root_kind == kinds.Undefined.value:
            return None
        try:
            node = rs.rego_output_expressions_at_index(output, 0)
        except regopy.RegoError as exc:
            raise RegoFailure(f"cannot read the engine's output: {exc}") from exc
        if not node:
            return None
        values = _node_to_python(rs, kinds, node)
        if not isinstance(values, list) or not values:
            return None
        return values[0]
