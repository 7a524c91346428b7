"""Policies as code: Rego (v1) admission gates over verified facts, evaluated in-process.

A policy is a Rego package that answers ``deny`` (a set of messages) and may
answer ``warn``; it allows only when ``deny`` is empty and nothing failed::

    policy = load_policy(shipped_policies_dir() / "production.rego")
    decision = policy.evaluate(build_input(verdict, reviews=reviews, scan=scan,
                                           transition={"from": "Staging", "to": "Production"}))
    if not decision.allowed:
        print(decision.deny)

What is loaded:

- a ``.rego`` file: that file's package is the entry point, evaluated together
  with the other ``.rego`` files under its directory (so ``production.rego``
  can reuse ``staging.rego``) and the directory's data file;
- a directory: every ``.rego`` file under it; the entry point is the package
  ``mlprov.admission`` (which picks a gate from the requested transition), or
  the only package there is.

``*_test.rego`` files are never part of a policy (``mlprov policy test`` runs
them). A directory's ``data.yaml`` (or ``data.yml``/``data.json``) is the
policy's data unless other data is passed to :meth:`Policy.evaluate`.

Fail closed: a missing policy, one that does not parse, one in Rego v0 syntax,
or one without a ``deny`` rule raises :class:`PolicyError` at load time (a
:class:`~mlprov.errors.VerificationError`, exit code 1); an evaluation error
returns a denying :class:`Decision` naming the error. Compiled policies are
cached per process by the digest of their sources and data.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlprov._internal import rego
from mlprov._internal.arguments import (
    PATH,
    TEXT,
    checked,
    json_mapping,
    lazy_instance,
    optional,
    sequence_of,
)
from mlprov._internal.readers import MAX_POLICY_DATA_BYTES, load_yaml, read_bytes
from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError, PolicyError

if TYPE_CHECKING:
    from mlprov.reviews import VerifiedReview
    from mlprov.scanning import ScanReport
    from mlprov.verification import Verdict

__all__ = [
    "ADMISSION_PACKAGE",
    "DATA_FILES",
    "DECISION_SCHEMA",
    "ENGINES",
    "INPUT_SCHEMA",
    "INPUT_SCHEMA_FILE",
    "Decision",
    "Engine",
    "Policy",
    "PolicyError",
    "PolicyTest",
    "PolicyTestReport",
    "build_input",
    "engine_name",
    "input_schema",
    "load_policy",
    "load_policy_data",
    "run_policy_tests",
    "shipped_policies_dir",
]

INPUT_SCHEMA = "https://mlprov.dev/schemas/policy-input/v1"
DECISION_SCHEMA = "https://mlprov.dev/schemas/policy-decision/v1"
#: The JSON Schema of the policy input, shipped as package data.
INPUT_SCHEMA_FILE = "policy-input-v1.schema.json"
ADMISSION_PACKAGE = "mlprov.admission"
DATA_FILES = ("data.yaml", "data.yml", "data.json")
TEST_SUFFIX = "_test.rego"
TRANSITION_KEYS = ("from", "to", "alias", "actor", "reason")
_MAX_POLICY_BYTES = 4 * 1024 * 1024


def shipped_policies_dir() -> Path:
    """The policies installed with mlprov (``staging.rego``, ``production.rego``, ...)."""
    return Path(__file__).resolve().parent / "_policies"


def input_schema() -> dict[str, Any]:
    """The JSON Schema of the policy input (``policy-input-v1.schema.json``)."""
    path = Path(__file__).resolve().parent / "schemas" / INPUT_SCHEMA_FILE
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- data ------------------------------------------------------------------------------

@checked(path=PATH)
def load_policy_data(path: Path | str) -> dict[str, Any]:
    """Read a policy data file: YAML (``.yaml``/``.yml``, duplicate keys refused) or JSON.

    Example:
        data = load_policy_data("policies/data.yaml")

    Raises:
        InputError: unreadable, malformed, not a mapping, or not JSON-compatible
            (e.g. a YAML date: quote it).
    """
    file = Path(path)
    try:
        raw = read_bytes(file, what="policy data", limit=MAX_POLICY_DATA_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read policy data {file}: {exc.strerror}") from exc
    if file.suffix.lower() == ".json":
        document = loads_strict(raw, what=f"policy data {file}")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"policy data {file} is not UTF-8 text") from exc
        document = load_yaml(text, what=f"policy data {file}")
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise InputError(f"policy data {file} must be a mapping at the top level")
    try:
        canonical_json(document)
    except InputError as exc:
        raise InputError(f"policy data {file}: {exc}",
                         hint="use only JSON values (quote dates and times)") from exc
    return document


# --- decisions -------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """The answer of a policy to one input.

    ``allowed`` is true only when ``deny`` is empty and the evaluation did not
    fail. ``policy_digest`` names the policy (see :attr:`Policy.digest`),
    ``input_digest`` the RFC 8785 canonical input and ``data_digest`` the data.
    """

    allowed: bool
    deny: tuple[str, ...]
    warn: tuple[str, ...]
    policy_digest: str
    input_digest: str
    data_digest: str = ""
    entrypoint: str = ""
    errors: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """The machine-readable decision (camelCase keys, a ``schema``)."""
        return {
            "schema": DECISION_SCHEMA,
            "allowed": self.allowed,
            "deny": list(self.deny),
            "warn": list(self.warn),
            "errors": list(self.errors),
            "policyDigest": self.policy_digest,
            "inputDigest": self.input_digest,
            "dataDigest": self.data_digest,
            "entrypoint": self.entrypoint,
        }


def _messages(value: Any, rule: str) -> tuple[str, ...]:
    """A ``deny``/``warn`` value as sorted messages; anything but a set of strings fails."""
    if isinstance(value, dict):
        raise rego.RegoFailure(
            f"{rule} is an object, not a set: Rego v0 `{rule}[msg] {{ ... }}`? "
            f"write `{rule} contains msg if {{ ... }}`")
    if not isinstance(value, rego.RegoSet) or not all(isinstance(m, str) for m in value):
        raise rego.RegoFailure(f"{rule} must be a set of strings "
                               f"(`{rule} contains msg if {{ ... }}`)")
    return tuple(sorted(set(value)))


_ENTRY_PACKAGE = "mlprov_entry__"


def _entry_rule(package: str) -> str:
    return "p_" + package.replace(".", "__")


def _entry_module(packages: Iterable[str]) -> tuple[str, str]:
    """A module answering ``{"deny": ..., "warn": ...}`` per package in one query.

    One query shares the rules deny and warn both use (regopy caches a rule only
    within a query); an undefined ``deny`` leaves the answer undefined.
    """
    lines = [f"package {_ENTRY_PACKAGE}", "", "import rego.v1", ""]
    for package in sorted(set(packages)):
        rule = _entry_rule(package)
        lines += [f'{rule} := {{"deny": data.{package}.deny, "warn": {rule}_warn}}', "",
                  f"{rule}_warn := data.{package}.warn if {{", f"\tdata.{package}.warn",
                  "} else := set()", ""]
    return ("<mlprov entry points>", "\n".join(lines))


def _entrypoints(package: str) -> tuple[str]:
    """The bundle entry point answering a package's deny and warn."""
    return (f"{_ENTRY_PACKAGE}/{_entry_rule(package)}",)


# --- compiled engines ------------------------------------------------------------------

_ENGINES: dict[tuple[str, str], rego.Engine] = {}
_ENGINES_LOCK = threading.Lock()
#: Compiled policies kept per process (each distinct policy source and data is one).
_MAX_ENGINES = 32


def _engine(modules: tuple[tuple[str, str], ...], modules_digest: str,
            data: Mapping[str, Any], data_digest: str) -> rego.Engine:
    """The compiled engine for these sources and data, built once per process."""
    key = (modules_digest, data_digest)
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(key, None)
        if engine is None:
            engine = rego.Engine(modules, dict(data))
        _ENGINES[key] = engine  # most recently used last
        while len(_ENGINES) > _MAX_ENGINES:
            del _ENGINES[next(iter(_ENGINES))]
        return engine


#: The Rego engines: ``regopy`` (rego-cpp, in-process, what every gate uses) and ``opa``
#: (OPA's own Go engine, optional: ``pip install --ignore-requires-python
#: opa-golib-python-bindings``), to check that a policy means the same under the
#: reference implementation.
Engine = Literal["regopy", "opa"]
ENGINES: tuple[Engine, ...] = ("regopy", "opa")


def engine_name(engine: Engine) -> str:
    """The engine and its version, as reports name it."""
    import importlib.metadata

    if engine == "opa":
        from mlprov._internal import opa

        return f"opa (opa-golib-python-bindings {opa.version()})"
    try:
        return f"regopy {importlib.metadata.version('regopy')} (rego-cpp)"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        return "regopy (rego-cpp)"


def _opa_engine(modules: Sequence[tuple[str, str]], data: Mapping[str, Any]) -> Any:
    from mlprov._internal import opa

    return opa.OpaEngine(modules, dict(data))


# --- policies --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Policy:
    """A loaded, compiled policy: its entry point, its files and its digest."""

    path: Path
    root: Path
    entrypoint: str
    #: relative posix name -> "sha256:<hex>", for every .rego and data file used.
    files: dict[str, str]
    #: "sha256:<hex>" over RFC 8785 JSON of ``{"entrypoint", "files"}``.
    digest: str
    data: dict[str, Any] = field(repr=False)
    _modules: tuple[tuple[str, str], ...] = field(repr=False)
    _modules_digest: str = field(repr=False)
    _data_digest: str = field(repr=False)

    @property
    def query(self) -> str:
        """The Rego reference of the entry point, e.g. ``data.mlprov.production``."""
        return f"data.{self.entrypoint}"

    @property
    def _entrypoints(self) -> tuple[str]:
        return _entrypoints(self.entrypoint)

    @checked(input=json_mapping, data=optional(json_mapping), engine=TEXT)
    def evaluate(self, input: Mapping[str, Any], data: Mapping[str, Any] | None = None,
                 *, engine: Engine = "regopy") -> Decision:
        """Evaluate the policy over ``input``; never raises for a policy failure.

        Example:
            decision = policy.evaluate(build_input(verdict), load_policy_data("data.yaml"))

        Args:
            input: the policy input (see :func:`build_input`); must be JSON.
            data: data replacing the policy's own data file (default: that file).
            engine: ``"regopy"`` (rego-cpp, what gates use) or ``"opa"`` (OPA's own Go
                engine, to check that the policy means the same there; see
                :data:`ENGINES`).

        Returns:
            The decision; a failed evaluation denies, naming the error.

        Raises:
            InputError: ``input`` or ``data`` cannot be written as canonical JSON.
        """
        input_bytes = canonical_json(dict(input))
        input_digest = _sha256(input_bytes)
        effective: Mapping[str, Any] = self.data if data is None else data
        data_digest = (self._data_digest if data is None
                       else _sha256(canonical_json(dict(data))))

        def denied(error: str) -> Decision:
            return Decision(False, (f"policy error: {error}",), (), self.digest, input_digest,
                            data_digest, self.query, (error,))

        try:
            compiled = (_engine(self._modules, self._modules_digest, effective, data_digest)
                        if engine == "regopy" else _opa_engine(self._modules, effective))
            [answer] = compiled.evaluate(self._entrypoints, dict(input))
        except rego.RegoFailure as exc:
            return denied(str(exc))
        if not isinstance(answer, dict) or "deny" not in answer:
            return denied(f"package {self.entrypoint} defines no deny rule for this input")
        deny_value, warn_value = answer["deny"], answer.get("warn")
        try:
            deny = _messages(deny_value, "deny")
            warn = _messages(warn_value, "warn") if warn_value is not None else ()
        except rego.RegoFailure as exc:
            return denied(str(exc))
        return Decision(not deny, deny, warn, self.digest, input_digest, data_digest,
                        self.query)


def _rego_files(root: Path) -> list[Path]:
    """Every .rego file under ``root`` (hidden directories skipped), sorted."""
    found = []
    for path in sorted(root.rglob("*.rego")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found.append(path)
    return found


def _read_source(path: Path, name: str) -> str:
    try:
        data = read_bytes(path, what="policy file", limit=_MAX_POLICY_BYTES, error=PolicyError)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_POLICY_BYTES:
        raise PolicyError(f"policy file {name} is larger than {_MAX_POLICY_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {name} is not UTF-8 text") from exc


def _check_source(name: str, source: str) -> str:
    """Lint one module and return its package.

    Raises:
        PolicyError: Rego v0 syntax, ``with input as``, or no package.
    """
    issues = rego.lint(source)
    if issues:
        first = issues[0]
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        raise PolicyError(f"{name}:{first.line}:{first.column}: {first.message}{more}")
    package = rego.package_of(source)
    if package is None:
        raise PolicyError(f"{name} declares no package", hint="start it with `package NAME`")
    return package


def _data_file(root: Path) -> Path | None:
    present = [root / n for n in DATA_FILES if (root / n).is_file()]
    if len(present) > 1:
        raise PolicyError(f"{root} holds several data files ({', '.join(p.name for p in present)})",
                          hint="keep one data file beside the policies")
    return present[0] if present else None


@dataclass(frozen=True)
class _Sources:
    root: Path
    modules: tuple[tuple[str, str], ...]  # (relative name, source), tests excluded
    tests: tuple[tuple[str, str], ...]
    packages: dict[str, str]  # relative name -> package
    data_file: Path | None


def _collect(root: Path, *, with_tests: bool) -> _Sources:
    modules: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    packages: dict[str, str] = {}
    for path in _rego_files(root):
        name = path.relative_to(root).as_posix()
        is_test = path.name.endswith(TEST_SUFFIX)
        if is_test and not with_tests:
            continue
        source = _read_source(path, name)
        packages[name] = _check_source(name, source)
        (tests if is_test else modules).append((name, source))
    return _Sources(root, tuple(modules), tuple(tests), packages, _data_file(root))


def _load_data(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return load_policy_data(path)
    except InputError as exc:
        raise PolicyError(str(exc)) from exc


@checked(path=PATH)
def load_policy(path: Path | str) -> Policy:
    """Load and compile a policy: a ``.rego`` file or a directory of them.

    Example:
        policy = load_policy(shipped_policies_dir())

    Raises:
        PolicyError: the policy is missing or unreadable, a module does not
            parse, uses Rego v0 syntax or ``with input as``, the entry point is
            ambiguous, or it defines no ``deny`` rule.
    """
    target = Path(path)
    if not target.exists():
        raise PolicyError(f"policy not found: {target}",
                          hint="pass a .rego file or a directory of them")
    if target.is_dir():
        root = target
    elif target.suffix != ".rego":
        raise PolicyError(f"{target} is not a .rego file")
    elif target.name.endswith(TEST_SUFFIX):
        raise PolicyError(f"{target} is a test file, not a policy",
                          hint="run tests with `mlprov policy test DIR`")
    else:
        root = target.parent
    sources = _collect(root, with_tests=False)
    if not sources.modules:
        raise PolicyError(f"no policy (.rego file) in {root}")
    if target.is_file():
        entrypoint = sources.packages[target.relative_to(root).as_posix()]
    else:
        distinct = sorted(set(sources.packages.values()))
        if ADMISSION_PACKAGE in distinct:
            entrypoint = ADMISSION_PACKAGE
        elif len(distinct) == 1:
            entrypoint = distinct[0]
        else:
            raise PolicyError(f"{root} holds several packages ({', '.join(distinct)}) and none "
                              f"is {ADMISSION_PACKAGE}",
                              hint="pass one policy file, or add an admission package")
    if not any("deny" in rego.rule_names(source) for name, source in sources.modules
               if sources.packages[name] == entrypoint):
        raise PolicyError(f"package {entrypoint} defines no deny rule",
                          hint="add `deny contains msg if { ... }` (Rego v1)")
    data = _load_data(sources.data_file)
    files = {name: _sha256(source.encode("utf-8")) for name, source in sources.modules}
    if sources.data_file is not None:
        files[sources.data_file.name] = _sha256(sources.data_file.read_bytes())
    digest = _sha256(canonical_json({"entrypoint": f"data.{entrypoint}", "files": files}))
    modules = (*sources.modules, _entry_module(sources.packages.values()))
    modules_digest = _sha256(canonical_json(dict(modules)))
    data_digest = _sha256(canonical_json(data))
    try:
        _engine(modules, modules_digest, data, data_digest).compile(
            _entrypoints(entrypoint))
    except rego.RegoFailure as exc:
        raise PolicyError(f"policy does not compile: {exc}") from exc
    return Policy(path=target, root=root, entrypoint=entrypoint, files=files, digest=digest,
                  data=data, _modules=modules, _modules_digest=modules_digest,
                  _data_digest=data_digest)


# --- tests -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyTest:
    """One Rego unit test (a rule named ``test_*`` in a ``*_test.rego`` file)."""

    file: str
    package: str
    name: str
    passed: bool
    detail: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return {"file": self.file, "package": self.package, "name": self.name,
                "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class PolicyTestReport:
    """Every test of a policy directory and its outcome."""

    root: str
    tests: tuple[PolicyTest, ...]
    #: The engine that ran them, with its version (e.g. ``regopy 1.5.2 (rego-cpp)``).
    engine: str = "regopy (rego-cpp)"

    @property
    def passed(self) -> int:
        """How many tests passed."""
        return sum(t.passed for t in self.tests)

    @property
    def failed(self) -> int:
        """How many tests failed (or errored)."""
        return len(self.tests) - self.passed

    @property
    def ok(self) -> bool:
        """True when there is at least one test and all passed."""
        return bool(self.tests) and self.failed == 0

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {"schema": "https://mlprov.dev/schemas/policy-test-report/v1",
                "root": self.root, "engine": self.engine, "passed": self.passed,
                "failed": self.failed,
                "tests": [t.to_json_dict() for t in self.tests]}


@checked(path=PATH, data=optional(json_mapping), engine=TEXT)
def run_policy_tests(path: Path | str, data: Mapping[str, Any] | None = None, *,
                     engine: Engine = "regopy") -> PolicyTestReport:
    """Run the Rego unit tests of a policy directory (or of a file's directory).

    Every rule named ``test_*`` in a ``*_test.rego`` file is one test; it
    passes when it evaluates to true. Tests see the directory's data file
    (or ``data``) and mock input with ``with input.KEY as ...``.

    Example:
        report = run_policy_tests("policies/")

    Raises:
        PolicyError: the directory is missing, holds no tests, or a module
            does not load (see :func:`load_policy`).
    """
    target = Path(path)
    if not target.exists():
        raise PolicyError(f"policy directory not found: {target}")
    root = target if target.is_dir() else target.parent
    sources = _collect(root, with_tests=True)
    if not sources.tests:
        raise PolicyError(f"no Rego tests (*{TEST_SUFFIX} files) in {root}",
                          hint="add rules named test_* in a *_test.rego file")
    effective = dict(data) if data is not None else _load_data(sources.data_file)
    everything = sources.modules + sources.tests
    try:
        compiled = (rego.Engine(everything, effective) if engine == "regopy"
                    else _opa_engine(everything, effective))
    except rego.RegoFailure as exc:
        raise PolicyError(f"policy does not compile under {engine}: {exc}") from exc
    cases = [(name, sources.packages[name], rule) for name, source in sources.tests
             for rule in rego.rule_names(source) if rule.startswith("test_")]
    try:
        outcomes = compiled.evaluate_each(
            [f"{package.replace('.', '/')}/{rule}" for _, package, rule in cases])
    except rego.RegoFailure as exc:
        raise PolicyError(f"policy tests do not compile: {exc}") from exc
    results: list[PolicyTest] = []
    for (name, package, rule), (value, error) in zip(cases, outcomes, strict=True):
        if error is not None:
            results.append(PolicyTest(name, package, rule, False, f"error: {error}"))
        elif value is True:
            results.append(PolicyTest(name, package, rule, True))
        else:
            got = "undefined" if value is None else json.dumps(value)[:200]
            results.append(PolicyTest(name, package, rule, False, f"got {got}"))
    if not results:
        raise PolicyError(f"no Rego tests (rules named test_*) in {root}",
                          hint="add rules named test_* in a *_test.rego file")
    return PolicyTestReport(str(root), tuple(results), engine_name(engine))


# --- the input -------------------------------------------------------------------------

_OMS_PREDICATE = "https://model_signing/signature/v1.0"
_CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"


def _checks_json(verdict: Verdict) -> list[dict[str, Any]]:
    """Each check; the detail only where it did not pass (what a policy reports)."""
    checks: list[dict[str, Any]] = []
    for c in verdict.checks:
        check: dict[str, Any] = {"name": c.name, "ok": c.ok}
        if c.ok is not True:
            check["detail"] = c.detail
        checks.append(check)
    return checks


def _licence_text(entry: Any) -> str | None:
    """A CycloneDX licence choice as text: its SPDX id, name or expression."""
    if not isinstance(entry, dict):
        return None
    licence = entry.get("license")
    if isinstance(licence, dict):
        for key in ("id", "name"):
            if isinstance(licence.get(key), str) and licence[key]:
                return str(licence[key])
    expression = entry.get("expression")
    return expression if isinstance(expression, str) and expression else None


_OPERATORS = frozenset({"and", "or", "with"})


def _licence_ids(text: str) -> list[str]:
    """The lower-case licence ids a licence text names.

    An SPDX expression (``MIT OR Apache-2.0``) names each of its ids; anything
    else (an id, or a free-form name such as ``BSD License``) names itself.
    """
    words = text.replace("(", " ").replace(")", " ").lower().split()
    if any(w in _OPERATORS for w in words):
        return sorted({w for w in words if w not in _OPERATORS})
    return [" ".join(words)] if words else []


def _components(bom: dict[str, Any]) -> list[dict[str, Any]]:
    """Every component of a BOM: the described one, and all (nested) components."""
    found: list[dict[str, Any]] = []
    metadata = bom.get("metadata")
    stack: list[Any] = []
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        stack.append(metadata["component"])
    stack.extend(reversed(bom.get("components") or []))
    while stack and len(found) < 1_000_000:
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        found.append(component)
        nested = component.get("components")
        if isinstance(nested, list):
            stack.extend(reversed(nested))
    return found


def _sbom_view(bom: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A CycloneDX BOM as policy input: its head, and a summary of its licences.

    The whole BOM would make the input slow to hand to the engine (hundreds of
    packages); policies need what it declares about the model and its licences.
    """
    head: dict[str, Any] = {k: bom[k] for k in ("bomFormat", "specVersion") if k in bom}
    metadata = bom.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        model = metadata["component"]
        head["metadata"] = {"component": {k: model[k] for k in (
            "type", "name", "version", "licenses") if k in model}}
    by_id: dict[str, list[str]] = {}
    unlicensed = 0
    components = _components(bom)
    for component in components:
        name = str(component.get("name", "(unnamed)"))
        if isinstance(component.get("version"), str):
            name = f"{name}@{component['version']}"
        texts = [t for t in map(_licence_text, component.get("licenses") or []) if t]
        if not texts:
            unlicensed += 1
        for licence in dict.fromkeys(i for t in texts for i in _licence_ids(t)):
            by_id.setdefault(licence, []).append(name)
    summary = {
        "componentCount": len(components),
        "unlicensedCount": unlicensed,
        "licenses": dict(sorted(by_id.items())),
    }
    return head, summary


def _statement_json(file_name: str, verified: Any) -> dict[str, Any]:
    from mlprov.reviews import signer_json

    statement = verified.statement
    predicate = dict(statement.predicate)
    document: dict[str, Any] = {
        "file": file_name,
        "fileDigest": f"sha256:{verified.file_sha256}",
        "predicateType": statement.predicate_type,
        "subject": [s.to_json_dict() for s in statement.subject],
        "signer": signer_json(verified.signer),
    }
    if statement.predicate_type == _OMS_PREDICATE:
        # Every file was compared with the disk by the `files` check; keep the count.
        resources = predicate.pop("resources", [])
        predicate["resourceCount"] = len(resources) if isinstance(resources, list) else 0
    elif statement.predicate_type == _CYCLONEDX_PREDICATE:
        predicate, document["summary"] = _sbom_view(predicate)
    document["predicate"] = predicate
    return document


def _lineage_json(verdict: Verdict) -> dict[str, Any] | None:
    """The verdict's lineage as JSON, read defensively (it may be absent or of any shape)."""
    lineage = getattr(verdict, "lineage", None)
    if lineage is None:
        return None
    to_json = getattr(lineage, "to_json_dict", None)
    document = to_json() if callable(to_json) else None
    if not isinstance(document, dict):
        document = {}
    document = dict(json.loads(json.dumps(document, default=str)))
    document["verified"] = getattr(lineage, "verified", None) is True
    status = getattr(lineage, "status", None)
    document["status"] = status if isinstance(status, str) else (
        "verified" if document["verified"] else "failed")
    return document


def _transition_json(transition: Mapping[str, Any] | None) -> dict[str, str] | None:
    if transition is None:
        return None
    unknown = set(transition) - set(TRANSITION_KEYS)
    if unknown:
        raise InputError(f"unknown transition field(s): {', '.join(sorted(unknown))}",
                         hint=f"use {', '.join(TRANSITION_KEYS)}")
    document: dict[str, str] = {}
    for key in TRANSITION_KEYS:
        value = transition.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"transition field {key} must be a string")
        document[key] = value
    return document


@checked(verdict=lazy_instance("mlprov.verification", "Verdict"),
         reviews=sequence_of(lazy_instance("mlprov.reviews", "VerifiedReview"), "VerifiedReviews"),
         transition=optional(json_mapping), registry_state=optional(json_mapping))
def build_input(
    verdict: Verdict,
    *,
    reviews: Iterable[VerifiedReview] = (),
    scan: ScanReport | Mapping[str, Any] | None = None,
    transition: Mapping[str, Any] | None = None,
    registry_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the policy input from verified facts only.

    Only statements whose signature verified (``verdict.statements``), the
    verdict's own findings, counted reviews about this very model, and a scan
    of its files reach the input; unverified claims never do. Absent facts are
    absent keys (Rego-friendly), never nulls. The shape is documented by
    ``policy-input-v1.schema.json``.

    Example:
        input = build_input(mlprov.verify("model/", evidence="evidence/", trust="trust.yaml"))

    Args:
        verdict: from :func:`mlprov.verification.verify` (``model=None`` for the
            evidence alone: ``model.filesVerified`` is then false).
        reviews: from :func:`mlprov.reviews.verify_reviews`; uncounted ones,
            and any about another root digest or identity, are left out.
        scan: from :func:`mlprov.scanning.scan_model` (or its JSON form).
        transition: the requested change: ``from``, ``to``, ``alias``,
            ``actor``, ``reason`` (strings; None values are left out).
        registry_state: the registry's current state (any JSON object).

    Raises:
        InputError: a malformed transition, or values that are not JSON.
    """
    from mlprov.reviews import evidence_verified

    model: dict[str, Any] = {"filesVerified": any(c.name == "files" and c.ok is True
                                                  for c in verdict.checks)}
    for key, value in (("name", verdict.name), ("identity", verdict.identity),
                       ("rootDigest", verdict.root_digest)):
        if value:
            model[key] = value
    statements = [_statement_json(file_name, verified)
                  for file_name, verified in sorted(verdict.statements.items())]
    document: dict[str, Any] = {
        "schema": INPUT_SCHEMA,
        "model": model,
        "verification": {"verified": evidence_verified(verdict),
                         "checks": _checks_json(verdict)},
        "statements": statements,
        "reviews": [r.to_input() for r in reviews
                    if r.counted and _review_is_of(r, verdict)],
    }
    lineage = _lineage_json(verdict)
    if lineage is not None:
        document["lineage"] = lineage
    if scan is not None:
        document["scan"] = dict(scan) if isinstance(scan, Mapping) else scan.to_json_dict()
    moved = _transition_json(transition)
    if moved is not None:
        document["transition"] = moved
    if registry_state is not None:
        document["registry"] = dict(registry_state)
    canonical_json(document)  # refuse now what could not be digested later
    return document


def _review_is_of(review: VerifiedReview, verdict: Verdict) -> bool:
    """Re-check that a counted review names this verdict's model (defence in depth).

    Root digest, identity, name and provenance bundle must all match: a review
    checked without the name or the provenance (None) never counts.
    """
    from mlprov.reviews import provenance_digest

    provenance = provenance_digest(verdict)
    return (provenance is not None and verdict.name is not None
            and (review.root_digest, review.identity, review.name, review.provenance)
            == (verdict.root_digest, verdict.identity, verdict.name, provenance))
