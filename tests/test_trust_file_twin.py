"""A trust file read without pydantic (``_signing.trust_file``) and by its model agree.

Whatever :func:`read_trust_file` accepts, :class:`TrustFile` accepts with the same
fields; the plain form people write is read by the twin alone; everything else
(wrong types, unknown fields, ``version: true``, bytes from ``!!binary``, dates,
bad regular expressions) goes to the model, which accepts or words the refusal, so
``load_trust`` refuses with the same words either way. Hostile values throughout.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mlprov._signing.schemas import TrustFile
from mlprov._signing.trust_file import TrustFileFields, read_trust_file
from mlprov.errors import TrustError
from mlprov.trust import load_trust

_ROLE = st.sampled_from(["builder", "evaluator", "reviewer", "registry", "Builder", "", "x"])
_TEXT = st.one_of(st.sampled_from(["", "ci", "keys/ci.pub", "a(", "^repo:.*$"]),
                  st.text(max_size=6))
_ODD = st.one_of(st.none(), st.integers(-1, 2), st.booleans(), st.floats(allow_nan=False),
                 st.binary(max_size=3), st.just(dt.date(2026, 1, 1)), st.lists(_TEXT, max_size=2))
_VALUE = st.one_of(_TEXT, _ODD)
_ROLES = st.one_of(st.lists(_ROLE, max_size=3), _ODD)


@st.composite
def _entry(draw: st.DrawFn, fields: tuple[str, ...]) -> Any:
    entry: dict[Any, Any] = {}
    for name in fields:
        if draw(st.integers(0, 5)) == 0:
            continue  # leave the field out
        entry[name] = draw(_ROLES if name == "roles" else _VALUE)
    if draw(st.integers(0, 8)) == 0:
        entry[draw(st.sampled_from(["extra", 1, "Name"]))] = draw(_VALUE)
    return entry if draw(st.integers(0, 15)) else draw(_ODD)


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    document: dict[Any, Any] = {}
    if draw(st.booleans()):
        document["version"] = draw(st.one_of(st.just(1), _ODD))
    if draw(st.integers(0, 3)):
        document["keys"] = draw(st.one_of(
            st.lists(_entry(("name", "public_key", "roles")), max_size=3), _ODD))
    if draw(st.booleans()):
        document["sigstore"] = draw(st.one_of(
            st.lists(_entry(("name", "issuer", "subject", "subject_regex", "roles")), max_size=2),
            _ODD))
    if draw(st.integers(0, 3)) == 0:
        document["trusted_root"] = draw(_VALUE)
    if draw(st.integers(0, 10)) == 0:
        document["other"] = 1
    return document if draw(st.integers(0, 20)) else draw(_ODD)


@st.composite
def _plain(draw: st.DrawFn) -> dict[str, Any]:
    names = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=5)
    roles = st.lists(st.sampled_from(["builder", "evaluator", "reviewer", "registry"]),
                     min_size=1, max_size=3)
    document: dict[str, Any] = {
        "keys": [{"name": draw(names), "public_key": draw(names), "roles": draw(roles)}
                 for _ in range(draw(st.integers(0, 2)))]}
    if draw(st.booleans()):
        which = draw(st.sampled_from(["subject", "subject_regex"]))
        document["sigstore"] = [{"issuer": "https://token.actions.githubusercontent.com",
                                 which: draw(names), "roles": draw(roles)}]
    if draw(st.booleans()):
        document["version"] = 1
    return document


def _model(document: Any) -> TrustFileFields | None:
    try:
        return TrustFileFields.from_model(TrustFile.model_validate(document))
    except ValidationError:
        return None


@given(_documents())
def test_the_twin_accepts_only_what_the_model_accepts_with_the_same_fields(document: Any):
    fields = read_trust_file(document)
    if fields is not None:
        assert _model(document) == fields, document


@given(_plain())
def test_the_plain_form_is_read_by_the_twin_as_the_model_reads_it(document: dict[str, Any]):
    fields = read_trust_file(document)
    assert fields is not None
    assert fields == _model(document)


@pytest.mark.parametrize("document", [
    {"version": True, "keys": [{"name": "ci", "public_key": "k.pub", "roles": ["builder"]}]},
    {"keys": [{"name": b"ci", "public_key": "k.pub", "roles": ["builder"]}]},
    {"keys": [{"name": "ci", "public_key": "k.pub", "roles": ["builder"], "extra": 1}]},
    {"sigstore": [{"issuer": "i", "subject_regex": "a(", "roles": ["builder"]}]},
    {"sigstore": [{"issuer": "i", "subject": "s", "subject_regex": "s", "roles": ["builder"]}]},
    {"keys": [{"name": "ci", "public_key": "k.pub", "roles": []}]},
    {"keys": [{"name": "ci", "public_key": "k.pub", "roles": ["root"]}]},
])
def test_hostile_entries_are_left_to_the_model(document: dict[str, Any]):
    assert read_trust_file(document) is None


def _write_trust(tmp_path: Path, text: str) -> Path:
    from mlprov.signing import KeyType, generate_key, write_key_pair

    write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "ci.key", None)
    path = tmp_path / "trust.yaml"
    path.write_text(text)
    return path


def test_load_trust_reads_the_plain_form_and_refuses_in_the_models_words(tmp_path: Path):
    good = _write_trust(tmp_path, "keys: [{name: ci, public_key: ci.key.pub, roles: [builder]}]\n")
    trust = load_trust(good)
    assert [(k.name, sorted(k.roles)) for k in trust.keys] == [("ci", ["builder"])]
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys: [{name: ci, public_key: ci.key.pub, roles: [root]}]\n")
    with pytest.raises(TrustError, match=r"trust file .*bad.yaml: keys\.0\.roles\.0: Input should "
                                         "be 'builder', 'evaluator', 'reviewer' or 'registry'"):
        load_trust(bad)


def test_verifying_with_a_trust_file_imports_no_pydantic(tmp_path: Path):
    good = _write_trust(tmp_path, "keys: [{name: ci, public_key: ci.key.pub, roles: [builder]}]\n")
    code = ("import sys; from mlprov.trust import load_trust; load_trust(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    done = subprocess.run([sys.executable, "-c", code, str(good)], capture_output=True,
                          text=True, check=True, env=dict(os.environ))
    assert done.stdout == "[]\n"
