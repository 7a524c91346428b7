"""The SBOM's fast path gives the straightforward path's bytes and verdicts.

``attest`` builds and checks its BOM while the model is hashed (``prepare_bom``),
then fills in the digest and pins; and the strict schema check remembers the
components and dependencies it has proven valid and decides ``uniqueItems``
with a set. These tests hold both to the plain ways: the library building the
final BOM from scratch, and the library's own strict validator.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.validators import Draft7Validator

import mlprov
from mlprov import sbom
from mlprov.card import CardInput, load_card_input
from mlprov.errors import InputError
from mlprov.evaluation import EvalPredicate, Evaluator, read_eval
from mlprov.identity import DataRef, IdentityInputs, code_from_commit
from mlprov.provenance import build_provenance, read_provenance
from mlprov.sbom import (
    Package,
    bom_file_bytes,
    build_bom,
    installed_packages,
    pin_evidence,
    prepare_bom,
    read_environment_file,
    validate_bom,
)
from mlprov.statements import ResourceDescriptor, Statement
from tests.conftest import COMMIT
from tests.evidence_kit import TRAIN, attest_full, payload, write_inputs

ROOT = "a" * 64
PARENT = "base=external:acme-base@sha256:" + "b" * 64


def _library_error(document: dict[str, Any]) -> str | None:
    """The first error of cyclonedx-python-lib's strict validator, formatted as mlprov does."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is None:
        return None
    detail = error.data
    path = "/".join(str(p) for p in detail.absolute_path)
    return f"{path or '(document)'}: {detail.message}"


def _old_pin_evidence(bom: dict[str, Any], files: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """pin_evidence as it was written first: a deep JSON copy, references appended."""
    document: dict[str, Any] = json.loads(json.dumps(bom))
    references = document["metadata"]["component"].setdefault("externalReferences", [])
    for name, (kind, sha256) in sorted(files.items()):
        references.append({"type": kind, "url": name,
                           "comment": "mlprov evidence file, pinned by digest",
                           "hashes": [{"alg": "SHA-256", "content": sha256}]})
    return document


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("environment", ["installed", "requirements"])
def test_attest_writes_the_bom_the_straightforward_path_builds(make_key, model_dir, tmp_path,
                                                               environment, monkeypatch):
    """Byte for byte (but the random serial number): fast attest == build_bom from scratch."""
    builds: list[str] = []
    body = sbom._bom_body

    def counted(*args: Any, root: str) -> dict[str, Any]:
        builds.append(root)
        return body(*args, root=root)

    monkeypatch.setattr(sbom, "_bom_body", counted)
    metrics, card_path, env_path = write_inputs(tmp_path / "inputs")
    ci, qa = make_key("ci"), make_key("qa")
    ev = attest_full(tmp_path, model_dir, ci, qa, parents=[PARENT])
    if environment == "installed":  # this interpreter's hundred-odd packages
        mlprov.attest(model_dir, name="credit-risk", key=ci.private, out=ev.evidence,
                      overwrite=True, commit=COMMIT, data=[TRAIN], metrics=metrics,
                      card=card_path, eval_key=qa.private, parents=[PARENT])
    assert builds == ["0" * 64] * (1 + (environment == "installed"))  # only drafts: fast path
    monkeypatch.undo()
    written_bytes = ev.file("sbom.cdx.json").read_bytes()
    written = json.loads(written_bytes)

    # The straightforward path, from what the evidence records: no draft, the
    # library builds the whole BOM for the real digest, pinned as at first.
    provenance = read_provenance(
        Statement.model_validate(payload(ev.file("provenance.sigstore.json"))), what="p")
    evaluation = read_eval(Statement.model_validate(payload(ev.file("eval.sigstore.json"))),
                           what="e")
    packages = installed_packages() if environment == "installed" else \
        read_environment_file(env_path)
    root = json.loads(ev.file("evidence.json").read_text())["rootDigest"].removeprefix("sha256:")
    bom = build_bom(provenance=provenance, root=root, packages=packages,
                    card=load_card_input(card_path), evaluation=evaluation)
    expected = _old_pin_evidence(bom, {
        "provenance.sigstore.json": ("attestation", _sha256(ev.file("provenance.sigstore.json"))),
        "eval.sigstore.json": ("attestation", _sha256(ev.file("eval.sigstore.json"))),
        "MODEL_CARD.md": ("model-card", _sha256(ev.file("MODEL_CARD.md"))),
    })
    assert _library_error(expected) is None
    assert written["serialNumber"] != expected["serialNumber"]  # a fresh UUID per BOM
    expected["serialNumber"] = written["serialNumber"]
    assert bom_file_bytes(expected) == written_bytes
    assert mlprov.verify(ev.model, evidence=ev.evidence, trust=ev.trust).verified


def _provenance(*, root: str, finished: dt.datetime, dirty: bool = False,
                uri: str | None = "git+https://example.com/r"):
    parent = ResourceDescriptor(name="parent:base:acme-base", digest={"sha256": "b" * 64},
                                annotations={"role": "base", "name": "acme-base",
                                             "identity": "mlid:sha256:" + "c" * 64})
    code = code_from_commit(COMMIT, uri=uri).model_copy(update={"dirty": dirty})
    inputs = IdentityInputs(code=code, data=[TRAIN, DataRef(name="raw",
                                                            digest="sha256:" + "3" * 64)])
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statement = build_provenance(name="m", root=root, inputs=inputs, started_on=started,
                                 finished_on=finished, invocation_id="run-1", parents=[parent])
    return read_provenance(statement, what="p")


PACKAGES = [
    Package(name="Alpha_Lib", version="1.0", licenses=("MIT",), requires=("beta",)),
    Package(name="beta", version="2.0", licenses=("Apache-2.0 OR MIT",), sha256=("d" * 64,)),
    Package(name="gamma", version="3.0", licenses=("Some Licence",), requires=("gamma",)),
]
CARD = CardInput(description="d", developers=["b", "a"], license="MIT", task="t",
                 intended_use=["u"], ethical_considerations=[{"name": "e"}])
EVALUATION = EvalPredicate(evaluator=Evaluator(id="https://e.example"),
                           metrics={"auc": 0.9, "n": 3})


@pytest.mark.parametrize("dirty", [False, True])
@pytest.mark.parametrize("uri", [None, "git+https://example.com/r"])
def test_a_draft_finishes_into_the_same_bom(dirty, uri):
    finished = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    final = _provenance(root=ROOT, finished=finished, dirty=dirty, uri=uri)
    # The draft is made before the digest and the finish time are known.
    pending = _provenance(root="0" * 64, finished=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                          dirty=dirty, uri=uri)
    draft = prepare_bom(provenance=pending, packages=PACKAGES, card=CARD, evaluation=EVALUATION)
    kept = copy.deepcopy(draft.document)
    fast = build_bom(provenance=final, root=ROOT, packages=PACKAGES, card=CARD,
                     evaluation=EVALUATION, draft=draft)
    plain = build_bom(provenance=final, root=ROOT, packages=PACKAGES, card=CARD,
                      evaluation=EVALUATION)
    assert fast["serialNumber"] == draft.document["serialNumber"] != plain["serialNumber"]
    plain["serialNumber"] = fast["serialNumber"]
    assert bom_file_bytes(fast) == bom_file_bytes(plain)
    assert fast["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": ROOT}]
    assert fast["metadata"]["timestamp"] == "2026-01-02T00:00:00Z"
    assert draft.document == kept  # the draft is not changed by finishing it


@pytest.mark.parametrize("change", ["packages", "card", "evaluation", "name"])
def test_a_draft_of_other_inputs_is_not_used(change):
    finished = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    final = _provenance(root=ROOT, finished=finished)
    inputs: dict[str, Any] = {"packages": PACKAGES, "card": CARD, "evaluation": EVALUATION}
    draft_inputs = dict(inputs)
    pending = _provenance(root="0" * 64, finished=finished)
    if change == "packages":
        draft_inputs["packages"] = PACKAGES[:2]
    elif change == "card":
        draft_inputs["card"] = CARD.model_copy(update={"description": "other"})
    elif change == "evaluation":
        draft_inputs["evaluation"] = None
    else:
        pending = pending.model_copy(update={"name": "other"})
    draft = prepare_bom(provenance=pending, **draft_inputs)
    fast = build_bom(provenance=final, root=ROOT, draft=draft, **inputs)
    plain = build_bom(provenance=final, root=ROOT, **inputs)
    assert fast["serialNumber"] != draft.document["serialNumber"]  # built afresh
    plain["serialNumber"] = fast["serialNumber"]
    assert fast == plain


def test_a_draft_checked_on_request_fails_early_with_the_same_error(monkeypatch):
    monkeypatch.setattr(CardInput, "model_card_json", lambda self, refs, evaluation: {
        "modelParameters": {"approach": {"type": "guessing"}}})
    pending = _provenance(root="0" * 64, finished=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(InputError, match=r"not valid CycloneDX 1\.6") as late:
        build_bom(provenance=pending, root=ROOT, packages=PACKAGES, card=CARD, validate=True)
    with pytest.raises(InputError) as early:
        prepare_bom(provenance=pending, packages=PACKAGES, card=CARD, validate=True)
    assert str(early.value) == str(late.value)


def test_pin_evidence_leaves_its_input_alone():
    bom = build_bom(provenance=_provenance(root=ROOT, finished=dt.datetime.now(dt.UTC)),
                    root=ROOT, packages=PACKAGES)
    kept = copy.deepcopy(bom)
    pins = {"MODEL_CARD.md": ("model-card", "e" * 64), "a.json": ("attestation", "f" * 64)}
    pinned = pin_evidence(bom, pins)
    assert bom == kept
    assert pinned == _old_pin_evidence(bom, pins)
    pinned["components"][0]["name"] = "changed"  # an independent document
    assert bom == kept


# --------------------------------------------------------------- the schema check


def _valid_bom() -> dict[str, Any]:
    packages = installed_packages()[:40] + PACKAGES
    return pin_evidence(build_bom(provenance=_provenance(root=ROOT, finished=dt.datetime.now(
        dt.UTC)), root=ROOT, packages=packages, card=CARD, evaluation=EVALUATION),
        {"MODEL_CARD.md": ("model-card", "e" * 64)})


def _mutations(bom: dict[str, Any]) -> list[dict[str, Any]]:
    """Broken variants, each touching a part the fast check treats specially."""
    out = []
    for array in ("components", "dependencies"):
        twice = copy.deepcopy(bom)  # a remembered-valid item, twice
        twice[array].append(copy.deepcopy(twice[array][3]))
        out.append(twice)
        reordered = copy.deepcopy(bom)  # the same object with its keys in another order
        reordered[array].append(dict(reversed(list(reordered[array][5].items()))))
        out.append(reordered)
        not_array = copy.deepcopy(bom)
        not_array[array] = {"0": not_array[array][0]}
        out.append(not_array)
    bad_item = copy.deepcopy(bom)  # a remembered-valid item, changed
    bad_item["components"][2]["type"] = "tensor"
    out.append(bad_item)
    bad_dep = copy.deepcopy(bom)
    bad_dep["dependencies"][1]["dependsOn"] = 7
    out.append(bad_dep)
    dup_depends = copy.deepcopy(bom)  # a nested array (small, no numbers)
    deps = next(d for d in dup_depends["dependencies"] if d.get("dependsOn"))
    deps["dependsOn"].append(deps["dependsOn"][0])
    out.append(dup_depends)
    number = copy.deepcopy(bom)  # numbers: jsonschema's own uniqueness check
    number["metadata"]["component"]["modelCard"]["quantitativeAnalysis"][
        "performanceMetrics"][0]["value"] = 1
    out.append(number)
    pin = copy.deepcopy(bom)
    pin["metadata"]["component"]["externalReferences"][-1]["hashes"][0]["content"] = "x"
    out.append(pin)
    return out


def test_the_fast_check_gives_the_library_s_verdicts_and_errors():
    bom = _valid_bom()
    validate_bom(bom)  # remembers its components and dependencies as valid
    assert _library_error(bom) is None
    for broken in _mutations(bom):
        expected = _library_error(broken)
        assert expected is not None
        assert sbom._schema_errors(broken, "1.6") == expected
        with pytest.raises(InputError, match=r"not valid CycloneDX 1\.6"):
            validate_bom(broken)
    validate_bom(bom)  # still valid: nothing invalid was remembered


def test_the_fast_check_is_in_use():
    """A cyclonedx-python-lib update that changes its validator's insides shows up here."""
    assert sbom._validator("1.6").__name__ == "first_error"


def test_without_the_library_internals_the_library_validator_is_used(monkeypatch):
    def changed(base: Any, root: Any) -> Any:
        raise AttributeError("'Draft7Validator' object has no attribute '_registry'")

    monkeypatch.setattr(sbom, "_fast_validator_class", changed)
    check = sbom._validator.__wrapped__("1.6")
    bom = _valid_bom()
    assert check(json.loads(json.dumps(bom))) is None
    broken = _mutations(bom)[0]
    assert "non-unique" in check(json.loads(json.dumps(broken))).message


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([0.0, -0.0, 1.0, 2.5])
    | st.sampled_from(["", "a", "b", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(_json, max_size=6))
def test_unique_items_matches_jsonschema(array):
    schema = {"type": "array", "uniqueItems": True}
    fast = sbom._fast_validator_class(Draft7Validator, schema)(schema)
    assert fast.is_valid(array) == Draft7Validator(schema).is_valid(array)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([{"ref": "a"}, {"ref": "b", "dependsOn": ["a"]},
                                 {"dependsOn": ["a"], "ref": "b"}, {"ref": 1},
                                 {"ref": "a", "x": 1}]), max_size=6))
def test_remembered_items_keep_their_verdicts(items):
    root = {"type": "object", "properties": {"dependencies": {
        "type": "array", "uniqueItems": True, "items": {"$ref": "#/definitions/dependency"}}},
        "definitions": {"dependency": {"type": "object", "required": ["ref"],
                                       "additionalProperties": False,
                                       "properties": {"ref": {"type": "string"},
                                                      "dependsOn": {"type": "array"}}}}}
    fast = sbom._fast_validator_class(Draft7Validator, root)(root)
    plain = Draft7Validator(root)
    for _ in range(2):  # the second round answers from memory
        document = {"dependencies": items}
        assert fast.is_valid(document) == plain.is_valid(document)
        assert [e.message for e in fast.iter_errors(document)] == \
            [e.message for e in plain.iter_errors(document)]


def test_runtime_validation_never_loads_the_iri_grammar():
    """In an environment with jsonschema[format-nongpl] (this one), mlprov's own import of
    jsonschema leaves out rfc3987-syntax (about 1 s of grammar compilation), so BOM checks
    cost and mean the same as in a plain install; the module stays importable after."""
    import subprocess
    import sys

    pytest.importorskip("rfc3987_syntax")
    code = ("import sys\n"
            "from mlprov.sbom import _validator\n"
            "check = _validator('1.6')\n"
            "print(check({'bomFormat': 'CycloneDX', 'specVersion': '1.6'}) is None)\n"
            "print('rfc3987_syntax' in sys.modules)\n"
            "import rfc3987_syntax\n"
            "print('importable')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "False", "importable"], done.stderr


def test_runtime_validation_checks_the_formats_of_a_plain_install():
    """Every format backend a plain install lacks stays out of mlprov's jsonschema: the
    same checks (and cost) in a crowded environment as in a plain one."""
    import subprocess
    import sys

    from mlprov.sbom import _FORMAT_EXTRAS

    pytest.importorskip("isoduration")
    code = ("import sys\n"
            "from mlprov.sbom import _FORMAT_EXTRAS, _validator\n"
            "_validator('1.6')\n"
            "import jsonschema\n"
            "print(sorted(jsonschema.FormatChecker().checkers))\n"
            "print([m for m in _FORMAT_EXTRAS if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    checkers, loaded = done.stdout.splitlines()
    assert loaded == "[]", done.stdout
    for fmt in ("duration", "color", "uri-template", "hostname", "json-pointer", "date-time",
                "iri", "uri"):
        assert f"'{fmt}'" not in checkers, (fmt, checkers)
    assert "rfc3339_validator" in _FORMAT_EXTRAS


# --- the installed packages' metadata: headers only ---------------------------------

_FIELDS = ("Name", "Version", "License-Expression", "License", "Classifier", "Requires-Dist",
           "Summary", "Description")


def test_header_only_metadata_reads_what_importlib_metadata_reads_for_every_installed_dist():
    import importlib.metadata

    dists = list(importlib.metadata.distributions())
    assert len(dists) > 50  # this venv: mlprov and its test dependencies
    for dist in dists:
        full, headers = dist.metadata, sbom._metadata(str(dist._path))
        for name in _FIELDS[:-1]:
            assert headers.get_all(name) == full.get_all(name), (dist, name)


def test_installed_packages_are_those_of_the_full_metadata():
    import importlib.metadata

    full: dict[str, Package] = {}
    for dist in importlib.metadata.distributions():
        meta = dist.metadata
        name, version = meta.get_all("Name"), meta.get_all("Version")
        key = sbom.normalise_name(name[0]) if name else ""
        if name and version and key not in full:
            full[key] = Package(name=name[0], version=version[0],
                                licenses=sbom._metadata_licenses(meta),
                                requires=sbom._requires(meta.get_all("Requires-Dist")))
    assert installed_packages() == sorted(full.values(), key=lambda p: p.key)


_LINE = st.one_of(
    st.sampled_from(["Name: demo", "Version: 1.0", "License: MIT", "License: Apache-2.0",
                     "License-Expression: MIT OR Apache-2.0", "Classifier: License :: OSI "
                     "Approved :: MIT License", "Requires-Dist: numpy>=1; extra == 'x'",
                     "Requires-Dist: requests", "Description: in a header", "From demo",
                     "        continued", "\tcontinued", " ", "", ":no name", "not a header",
                     "Name:", "name: lower"]),
    st.text(alphabet="Na:me \t-xV1\u00e9", max_size=12))
_BREAK = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_LINE, _BREAK), max_size=14),
       st.text(alphabet="ab \n\r:", max_size=30))
def test_header_only_metadata_matches_importlib_metadata_on_any_text(tmp_path_factory, lines,
                                                                     body):
    """Line breaks of every kind, folding, stray lines, bodies: the same fields as the stdlib."""
    import importlib.metadata

    text = "".join(line + end for line, end in lines) + body
    where = tmp_path_factory.mktemp("dist")
    (where / "METADATA").write_text(text, encoding="utf-8", newline="")
    dist = importlib.metadata.PathDistribution(where)
    if not text:
        return  # the stdlib fails on an empty file (3.11); the SBOM then skips the dist
    full, headers = dist.metadata, sbom._metadata(str(dist._path))
    for name in _FIELDS[:-1]:
        assert headers.get_all(name) == full.get_all(name), (text, name)
