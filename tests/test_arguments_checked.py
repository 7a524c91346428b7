"""mlprov._internal.arguments.checked: a typo fails at import; the binder is made on first call."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from mlprov._internal import arguments
from mlprov._internal.arguments import INT, TEXT, checked
from mlprov.errors import ArgumentError


def test_a_check_for_an_argument_the_function_lacks_fails_at_decoration():
    with pytest.raises(AssertionError, match=r"has no argument \['nme'\]"):
        @checked(nme=TEXT)
        def f(name: str) -> None:
            """Example:
                f("x")
            """


def test_every_kind_of_parameter_can_be_checked():
    def f(a: int, /, b: str, *rest: str, c: int = 0, **extra: str) -> tuple[Any, ...]:
        """Example:
            f(1, "b", c=2)
        """
        return a, b, rest, c, extra

    for name in ("a", "b", "rest", "c", "extra"):
        checked(**{name: TEXT})(f)  # every name is known (no AssertionError)
    f = checked(a=INT, b=TEXT, c=INT)(f)
    assert f(1, "b", "r", c=2, x="y") == (1, "b", ("r",), 2, {"x": "y"})
    with pytest.raises(ArgumentError, match=r"\.f\(\): c must be "):
        f(1, "b", c="2")
    with pytest.raises(ArgumentError, match=r"\.f\(\): .*missing") as info:
        f()
    assert info.value.hint == 'e.g. f(1, "b", c=2)'


def test_a_wrapped_function_is_checked_by_its_signature():
    def inner(path: str, *, size: int) -> int:
        return size

    @functools.wraps(inner)
    def outer(*args: Any, **kwargs: Any) -> int:
        return inner(*args, **kwargs)

    f = checked(size=INT)(outer)
    assert f("p", size=3) == 3
    with pytest.raises(ArgumentError, match="size must be"):
        f("p", size="3")
    with pytest.raises(AssertionError):
        checked(args=INT)(outer)  # the signature is inner's: no *args


def test_the_binder_is_made_once_on_the_first_call(monkeypatch: pytest.MonkeyPatch):
    made: list[str] = []
    real = arguments._binder

    def counting(func: Any, label: str) -> Any:
        made.append(label)
        return real(func, label)

    monkeypatch.setattr(arguments, "_binder", counting)

    @checked(n=INT)
    def f(n: int) -> int:
        """Example:
            f(1)
        """
        return n

    assert made == []
    assert [f(1), f(n=2), f(3)] == [1, 2, 3]
    assert len(made) == 1 and made[0].endswith(".f()")


def test_lazy_instance_never_imports_to_ask(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A module nobody imported defines no instance: refused without importing it."""
    import sys

    (tmp_path / "mlprov_probe_module.py").write_text(
        "class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check = arguments.lazy_instance("mlprov_probe_module", "Thing", "a Thing")
    with pytest.raises(arguments.Invalid):
        check(object())
    assert "mlprov_probe_module" not in sys.modules
    import mlprov_probe_module  # type: ignore[import-not-found]

    try:
        check(mlprov_probe_module.Thing())  # once imported, its instances pass
        assert arguments.is_loaded_instance(mlprov_probe_module.Thing(), "mlprov_probe_module",
                                            "Thing")
        assert not arguments.is_loaded_instance(object(), "mlprov_probe_module", "Thing")
        assert not arguments.is_loaded_instance(object(), "mlprov_probe_module", "Missing")
    finally:
        sys.modules.pop("mlprov_probe_module", None)
