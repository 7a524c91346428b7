"""OPA's own Go engine (the reference Rego implementation), for checking policies against it.

mlprov gates with rego-cpp (:mod:`mlprov._internal.rego`); a policy must mean
the same under OPA. ``mlprov policy test --engine opa`` and the test suite run
the same policies and tests here. OPA comes from PyPI as
``opa-golib-python-bindings`` (a ctypes wrapper around OPA built as a C shared
library); it declares Python >= 3.14 but runs on 3.11, so it is installed with
``pip install --ignore-requires-python opa-golib-python-bindings``. It is not a
dependency of mlprov: gates never depend on it.

The same interface as :class:`mlprov._internal.rego.Engine` for what the tests
need: :meth:`OpaEngine.evaluate` and :meth:`OpaEngine.evaluate_each`. Sets come
back as :class:`~mlprov._internal.rego.RegoSet` (OPA returns them as arrays,
and says which were sets only through the policy, so every array-valued
``deny``/``warn`` is taken as the set it must be).

Nothing here is public API.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Sequence
from typing import Any

from mlprov._internal.rego import RegoFailure, RegoSet, input_term

__all__ = ["INSTALL_HINT", "OpaEngine", "available", "version"]

INSTALL_HINT = "pip install --ignore-requires-python opa-golib-python-bindings"


def _bindings() -> Any:
    try:
        return importlib.import_module("opa_bindings.engine")
    except (ImportError, OSError) as exc:
        raise RegoFailure(f"OPA's engine is not installed ({INSTALL_HINT})") from exc


def available() -> bool:
    """Whether OPA's engine can be loaded here."""
    try:
        _bindings()
    except RegoFailure:
        return False
    return True


def version() -> str:
    """The bindings' version (the OPA library they carry)."""
    try:
        return importlib.metadata.version("opa-golib-python-bindings")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _as_sets(value: Any, entrypoint: str) -> Any:
    """``deny``/``warn`` answers as sets, as rego-cpp gives them."""
    if isinstance(value, list) and entrypoint.rsplit("/", 1)[-1] in ("deny", "warn"):
        return RegoSet(value)
    if isinstance(value, dict):
        return {k: RegoSet(v) if k in ("deny", "warn") and isinstance(v, list) else v
                for k, v in value.items()}
    return value


class OpaEngine:
    """Rego modules and data compiled by OPA, queried by entry point (``a/b/rule``)."""

    def __init__(self, modules: Sequence[tuple[str, str]], data: dict[str, Any]) -> None:
        """Add ``modules`` (name, source) and ``data``.

        Raises:
            RegoFailure: OPA is not installed, or refused a module or the data.
        """
        bindings = _bindings()
        self._errors = (bindings.OpaError,)
        self._undefined = bindings.OpaUndefinedError
        self._lock = threading.Lock()
        self._engine = bindings.OpaEngine()
        try:
            for name, source in modules:
                self._engine.add_policy(name, source)
            if data:
                self._engine.add_data(data)
        except self._errors as exc:
            raise RegoFailure(f"OPA refused the policy: {exc}") from exc

    def close(self) -> None:
        """Free the engine."""
        self._engine.close()

    def _query(self, entrypoint: str, input_value: Any) -> Any:
        path = entrypoint.replace("/", ".")
        try:
            value = self._engine.eval_document(path, input_value)
        except self._undefined:
            return None
        except self._errors as exc:
            raise RegoFailure(str(exc)) from exc
        return _as_sets(value, entrypoint)

    def evaluate(self, entrypoints: Sequence[str], input_value: Any) -> list[Any]:
        """Evaluate each entry point over ``input_value``; None where undefined.

        Raises:
            RegoFailure: OPA failed (the input is refused exactly as rego-cpp refuses it).
        """
        input_term(input_value)  # the same refusals (NaN, lone surrogates) as rego-cpp
        with self._lock:
            return [self._query(e, input_value) for e in entrypoints]

    def evaluate_each(self, entrypoints: Sequence[str]) -> list[tuple[Any, str | None]]:
        """Evaluate each entry point on its own, without input; (value, error) each."""
        results: list[tuple[Any, str | None]] = []
        with self._lock:
            for entrypoint in entrypoints:
                try:
                    results.append((self._query(entrypoint, None), None))
                except RegoFailure as exc:
                    results.append((None, str(exc)))
        return results
