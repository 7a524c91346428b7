"""Names are checked as whole strings where they enter (issue 10 item 6).

``$`` in a Python regex matches before a trailing newline: ``"production\\n"`` passed
the alias check, got the weaker ``*`` gate, then resolved as ``@production``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlprov
from mlprov._internal.names import check_alias, check_name, check_version, parse_version
from mlprov.errors import InputError
from mlprov.registry import parse_model_uri
from tests.conftest import COMMIT

BAD_SUFFIXES = ["\n", "\r", "\x00", "\t", " ", "\u202e", "\u200b", "\x1b[31m", "\u0130"]


@pytest.mark.parametrize("suffix", BAD_SUFFIXES)
def test_a_trailing_control_or_invisible_character_is_refused(suffix: str):
    with pytest.raises(InputError):
        check_alias("production" + suffix)
    with pytest.raises(InputError):
        check_name("credit-risk" + suffix)
    with pytest.raises(InputError):
        parse_model_uri("models:/credit-risk@production" + suffix)
    with pytest.raises(InputError):
        parse_model_uri("models:/credit-risk" + suffix + "@production")


@pytest.mark.parametrize("text", ["2\n", " 2", "02", "\u0662", "1_0", "+2", "2.0", "", "0",
                                  "\uff12", "1" * 19])
def test_version_numbers_are_ascii_digits_only(text: str):
    with pytest.raises(InputError):
        parse_version(text)
    with pytest.raises(InputError):
        parse_model_uri(f"models:/m/{text}")


@pytest.mark.parametrize("value", [True, 0, -1, "2", 2.0, None])
def test_api_versions_must_be_ints(value):
    with pytest.raises(InputError):
        check_version(value)


@given(st.text(max_size=30))
def test_accepted_names_and_aliases_are_plain_ascii(text: str):
    for check in (check_name, check_alias):
        try:
            accepted = check(text)
        except InputError:
            continue
        assert accepted == text and text.isascii() and text.isprintable()
        assert "\n" not in text and " " not in text


def test_stages_are_ascii(registry):
    with pytest.raises(InputError):
        registry.promote("m", 1, to="Productio\u0274", reason="x")


def test_the_registry_refuses_a_newline_alias_before_any_gate(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    before = len(list(registry.audit_log()))
    with pytest.raises(InputError, match="invalid alias"):
        registry.set_alias("credit-risk", "production\n", 1, reason="x")
    with pytest.raises(InputError, match="invalid model name"):
        registry.set_alias("credit-risk\n", "canary", 1, reason="x")
    with pytest.raises(InputError, match="version must be an integer from 1, not bool"):
        registry.set_alias("credit-risk", "canary", True, reason="x")  # type: ignore[arg-type]
    assert len(list(registry.audit_log())) == before  # refused before any gate or record


def test_the_cli_refuses_them_with_one_line(run_cli, tmp_path, keys, make_model):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    m = make_model()
    assert run_cli("register", str(m.model), "--evidence", str(m.evidence), "--registry",
                   str(home)).exit_code == 0
    for args in (["alias", "set", "credit-risk", "production\n", "1"],
                 ["alias", "set", "credit-risk", "canary", "1\n"],
                 ["alias", "set", "credit-risk", "canary", "\u0661"],
                 ["resolve", "models:/credit-risk@production\n"]):
        r = run_cli(*args, "--reason", "x", "--registry", str(home)) if args[0] == "alias" \
            else run_cli(*args, "--registry", str(home))
        assert r.exit_code in (2, 3), (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_attest_checks_the_model_name(make_key, model_dir, tmp_path):
    key = make_key()
    for bad in ("m\n", "a/b", "", "m\x00", "\u202em"):
        with pytest.raises(InputError, match="invalid model name"):
            mlprov.attest(model_dir, name=bad, key=key.private, out=tmp_path / "ev",
                          commit=COMMIT)
