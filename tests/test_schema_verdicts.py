"""Remembered SBOM schema verdicts (``verify --cache``): what they key on, when they are
used, and that a file in the cache directory is never trusted beyond its own claims."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlprov
from mlprov._internal import schema_verdicts
from mlprov._internal.schema_verdicts import FILE_NAME, MAX_VERDICTS, SCHEMA, SchemaVerdicts
from mlprov.errors import BundleError, InputError
from mlprov.sbom import read_bom
from mlprov.statements import Statement
from tests.conftest import COMMIT

IDENTITY = "mlprov=test\ncyclonedx-spec=1.6"


@pytest.fixture
def evidence(make_key, model_dir: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    key = make_key()
    out = tmp_path / "ev"
    mlprov.attest(model_dir, name="m", key=key.private, out=out, commit=COMMIT,
                  environment=[])
    return model_dir, out, key.public


def _bom_statement(evidence_dir: Path) -> Statement:
    bundle = json.loads((evidence_dir / "sbom.sigstore.json").read_text())
    import base64

    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    return Statement.model_validate_json(payload)


def _with_identity(monkeypatch: pytest.MonkeyPatch, identity: str | None = IDENTITY) -> None:
    """This process imported jsonschema (the tests do): name the validator explicitly."""
    monkeypatch.setattr(schema_verdicts, "validator_identity", lambda version: identity)


def _verify_in_fresh_process(model: Path, evidence: Path, key: Path, cache: Path) -> dict[str, Any]:
    code = ("import json, sys\n"
            "from mlprov.verification import verify\n"
            "v = verify(sys.argv[1], evidence=sys.argv[2], key=sys.argv[3], cache=sys.argv[4])\n"
            "print(json.dumps({'verified': v.verified, 'checks': [c.name for c in v.checks],"
            " 'jsonschema': 'jsonschema' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(model), str(evidence), str(key),
                           str(cache)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_second_verify_skips_only_the_schema_import(evidence, tmp_path: Path):
    model, out, public = evidence
    cache = tmp_path / "cache"
    first = _verify_in_fresh_process(model, out, public, cache)
    second = _verify_in_fresh_process(model, out, public, cache)
    assert first["verified"] and second["verified"]
    assert first["checks"] == second["checks"]
    assert "sbom" in second["checks"]
    assert first["jsonschema"] is True
    assert second["jsonschema"] is False  # the same BOM, the same validator: remembered
    stored = json.loads((cache / FILE_NAME).read_text())
    assert stored["schema"] == SCHEMA and len(stored["valid"]) == 1
    assert (cache / FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_no_identity_while_jsonschema_is_imported():
    """A process that imported jsonschema itself may check more formats: no verdict key."""
    import jsonschema  # noqa: F401  (the state this test is about)

    assert schema_verdicts.validator_identity("1.6") is None
    assert SchemaVerdicts.key({"bomFormat": "CycloneDX"}, "1.6") is None


def test_identity_names_the_installed_validator():
    code = ("from mlprov._internal.schema_verdicts import validator_identity as v\n"
            "print(v('1.6'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"mlprov={mlprov.__version__}" and lines[1] == "cyclonedx-spec=1.6"
    names = [line.split("=")[0] for line in lines[3:]]
    assert names == ["jsonschema", "referencing", "jsonschema_specifications",
                     "cyclonedx_python_lib", "idna"]
    import importlib.metadata

    assert f"jsonschema={importlib.metadata.version('jsonschema')}" in lines
    assert f"cyclonedx_python_lib={importlib.metadata.version('cyclonedx-python-lib')}" in lines


def test_two_installed_versions_mean_no_identity(tmp_path: Path, monkeypatch):
    site = tmp_path / "site"
    (site / "mlprov_fake_validator").mkdir(parents=True)
    (site / "mlprov_fake_validator" / "__init__.py").write_text("")
    (site / "fake_validator-4.0.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(site))
    found = schema_verdicts._installed_version
    assert found("mlprov_fake_validator", "fake_validator") == "4.0.0"
    (site / "fake_validator-4.1.0.dist-info").mkdir()  # two installs: which one runs?
    assert found("mlprov_fake_validator", "fake_validator") is None
    assert schema_verdicts._installed_version("no_such_module_here", "x") == "absent"


@settings(max_examples=50, deadline=None)
@given(a=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
       b=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_keys_follow_the_document_and_the_validator(a: dict[str, Any], b: dict[str, Any]):
    with pytest.MonkeyPatch.context() as patch:
        _with_identity(patch)
        key_a, key_b = SchemaVerdicts.key(a, "1.6"), SchemaVerdicts.key(b, "1.6")
        if key_a is not None and key_b is not None:
            assert (key_a == key_b) == (a == b)
        _with_identity(patch, IDENTITY + "\njsonschema=9")
        assert SchemaVerdicts.key(a, "1.6") != key_a or key_a is None


def test_a_failing_bom_is_refused_and_not_remembered(evidence, tmp_path: Path, monkeypatch):
    _, out, _ = evidence
    _with_identity(monkeypatch)
    statement = _bom_statement(out)
    broken = copy.deepcopy(statement.predicate)
    broken["metadata"]["component"]["type"] = "not-a-component-type"
    bad = statement.model_copy(update={"predicate": broken})
    verdicts = SchemaVerdicts.open(tmp_path / "cache")
    verdicts.add(SchemaVerdicts.key(statement.predicate, "1.6") or "")  # another BOM's pass
    with pytest.raises(BundleError, match=r"not valid CycloneDX 1\.6"):
        read_bom(bad, what="sbom", verdicts=verdicts)
    assert not verdicts.passed(SchemaVerdicts.key(broken, "1.6") or "")
    read_bom(statement, what="sbom", verdicts=verdicts)  # the good one still reads


@pytest.mark.parametrize("content", [
    b"not json", b"[]", json.dumps({"schema": "other", "valid": ["ab" * 32]}).encode(),
    json.dumps({"schema": SCHEMA, "valid": "ab"}).encode(),
    json.dumps({"schema": SCHEMA, "valid": ["AB" * 32, "short", 7, None]}).encode(),
])
def test_unusable_files_are_ignored(tmp_path: Path, content: bytes):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / FILE_NAME).write_bytes(content)
    assert SchemaVerdicts.open(cache).valid == {}


def test_a_symlinked_or_oversized_file_is_ignored(tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps({"schema": SCHEMA, "valid": ["ab" * 32]}))
    (cache / FILE_NAME).symlink_to(real)
    assert SchemaVerdicts.open(cache).valid == {}
    (cache / FILE_NAME).unlink()
    (cache / FILE_NAME).write_text(json.dumps({"schema": SCHEMA, "valid": ["ab" * 32]})
                                   + " " * (schema_verdicts._MAX_BYTES + 1))
    assert SchemaVerdicts.open(cache).valid == {}


def test_only_the_most_recent_verdicts_are_kept(tmp_path: Path):
    cache = tmp_path / "cache"
    verdicts = SchemaVerdicts.open(cache)
    keys = [f"{i:064x}" for i in range(MAX_VERDICTS + 10)]
    for key in keys:
        verdicts.add(key)
    verdicts.add(keys[0])  # used again: the most recent now
    verdicts.save()
    kept = SchemaVerdicts.open(cache).valid
    assert len(kept) == MAX_VERDICTS
    assert keys[0] in kept and keys[1] not in kept and keys[-1] in kept


def test_the_directory_must_be_private(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with pytest.raises(InputError, match="mode 0700"):
        SchemaVerdicts.open(shared)
