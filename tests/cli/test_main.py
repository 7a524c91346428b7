"""The entry point: help text, and one-line errors with documented exit codes."""

from __future__ import annotations

import pytest

from tests.cli.conftest import assert_error


def test_help_lists_commands_and_exit_codes(run_cli):
    r = run_cli("--help")
    assert r.exit_code == 0
    for word in ("keygen", "hash", "identity", "attest", "verify", "Exit codes",
                 "MLPROV_KEY_PASSPHRASE"):
        assert word in r.stdout


@pytest.mark.parametrize("command", ["keygen", "attest", "verify"])
def test_command_help_has_examples(run_cli, command: str):
    r = run_cli(command, "--help")
    assert r.exit_code == 0
    assert "Examples:" in r.stdout
    assert f"mlprov {command} " in r.stdout


def test_unknown_command_is_one_line(run_cli):
    assert_error(run_cli("frobnicate"), 2, "frobnicate", "mlprov --help")


def test_unknown_option_is_one_line(run_cli, tmp_path):
    assert_error(run_cli("verify", str(tmp_path), "--bogus"), 2, "--bogus",
                 "mlprov verify --help")


def test_missing_required_option_is_one_line(run_cli, tmp_path):
    assert_error(run_cli("attest", str(tmp_path), "--name", "m"), 2, "--out")
    # --key or --sigstore: one of them is required.
    assert_error(run_cli("attest", str(tmp_path), "--name", "m", "--out", str(tmp_path / "e")),
                 2, "--key", "--sigstore")


def test_bare_command_shows_help(run_cli):
    r = run_cli()
    assert r.exit_code == 2
    assert "Commands:" in r.stdout + r.stderr


def test_version(run_cli):
    r = run_cli("--version")
    assert r.exit_code == 0
    assert r.stdout.startswith("mlprov, version ")


def test_multi_line_error_messages_are_folded(run_cli, monkeypatch, tmp_path):
    from mlprov.errors import InputError

    def boom(*args, **kwargs):
        raise InputError("first line\n  second line", hint="do\nthis")

    monkeypatch.setattr("mlprov.verification.verify", boom)
    r = run_cli("verify", str(tmp_path), "--evidence", str(tmp_path), "--key", str(tmp_path))
    # --key is a directory: click refuses it before the library runs.
    assert_error(r, 2, "--key")
    key = tmp_path / "k.pub"
    key.write_text("x")
    r = run_cli("verify", str(tmp_path), "--evidence", str(tmp_path), "--key", str(key))
    assert assert_error(r, 3) == "error: first line second line (hint: do this)"


def test_internal_error_is_exit_4_without_traceback(run_cli, monkeypatch, tmp_path):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("mlprov.verification.verify", bug)
    key = tmp_path / "k.pub"
    key.write_text("x")
    r = run_cli("verify", str(tmp_path), "--evidence", str(tmp_path), "--key", str(key))
    assert r.exit_code == 4
    [line] = r.stderr.splitlines()
    assert line.startswith("internal error: ZeroDivisionError: oops")
    assert "--debug" in line and "Traceback" not in r.stderr


def test_attest_and_verify_never_import_the_iri_grammar_or_jinja(tmp_path, model_dir):
    """Speed that does not depend on the environment (issue 11 item 7): with
    jsonschema[format-nongpl] installed (the test extra brings rfc3987-syntax and lark),
    `mlprov --help`, attest (SBOM checked) and verify (SBOM checked again) load neither the
    IRI grammar nor Jinja2 (only --card-template needs it). Not timed: modules loaded."""
    import subprocess
    import sys

    pytest.importorskip("rfc3987_syntax")
    pytest.importorskip("lark")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"auc": 0.9}\n')
    key, evidence = tmp_path / "ci.key", tmp_path / "evidence"
    code = f"""\
import sys
from mlprov._cli.main import main

def run(*args):
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)

def loaded():
    return sorted(m for m in ("rfc3987_syntax", "lark", "jinja2") if m in sys.modules)

run("--help")
print("help", loaded())
run("keygen", "--out", {str(key)!r})
run("attest", {str(model_dir)!r}, "--name", "m", "--key", {str(key)!r}, "--out",
    {str(evidence)!r}, "--commit", "{"a" * 40}", "--metrics", {str(metrics)!r})
print("attest", loaded())
run("verify", {str(model_dir)!r}, "--evidence", {str(evidence)!r}, "--key", {str(key)!r} + ".pub")
print("verify", loaded())
import rfc3987_syntax, lark
print("importable")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines()
             if line.startswith(("help ", "attest ", "verify ", "importable"))]
    assert lines == ["help []", "attest []", "verify []", "importable"], done.stdout
