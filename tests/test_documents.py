"""The pydantic-free documents (mlprov._internal.documents) and the pydantic models agree.

The reference is the pydantic path as ``mlprov attest`` took it before the documents
existed (the old bodies of ``oms.manifest_statement``, ``provenance.build_provenance``,
``sbom.bom_statement`` and the ``EvidenceIndex`` dump, kept below): for arbitrary and
hostile input (quotes, newlines, NUL, U+2028, non-BMP, lone surrogates, very long
strings, wrong types, tuples, non-finite floats, bad digests), both give the same
documents (key order included), the same canonical bytes, the same bytes of
``evidence.json`` and the same refusals; signing a document signs the bytes its model
signs, and ``mlprov verify``'s reader accepts the bundle.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlprov import __version__
from mlprov._internal import documents
from mlprov._internal.documents import (
    BUILD_TYPE,
    CYCLONEDX_BOM_PREDICATE,
    DEFAULT_BUILDER_ID,
    OMS_PREDICATE_TYPE,
    SLSA_PROVENANCE_V1,
    bom_statement_document,
    descriptor,
    index_bytes,
    manifest_document,
    provenance_document,
    statement_document,
    statement_payload,
)
from mlprov._internal.intoto import STATEMENT_TYPE_V1
from mlprov.bundles import sign_document, sign_statement, verify_statement_bytes
from mlprov.errors import BundleError, InputError
from mlprov.evidence import EvidenceIndex
from mlprov.hashing import FileDigest, Manifest
from mlprov.identity import CodeRef, DataRef, IdentityInputs, compute_identity
from mlprov.oms import manifest_statement
from mlprov.provenance import build_provenance, rfc3339
from mlprov.sbom import bom_statement
from mlprov.signing import BundleSigner, KeySigner, KeyType, generate_key
from mlprov.statements import (
    ResourceDescriptor,
    Statement,
    sha256_descriptor,
    statement_from_document,
)
from mlprov.trust import Role, Trust, TrustedKey

SHA = "ab" * 32
LONG = "\u2028\"\n" * 40_000  # some 160 kB of text the JSON writers must escape
HOSTILE = ['"', "\\", "\n", "\r\n", "\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\ufeff",
           "\U0001f600", "\U0010ffff", "é", "</script>", LONG, "", " "]
SURROGATES = ["\ud800", "x\udc00y"]
texts = st.one_of(st.text(max_size=8), st.sampled_from(HOSTILE),
                  st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map("".join))
hostile_texts = st.one_of(texts, st.sampled_from(SURROGATES))
plain_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                          st.floats(allow_nan=False, allow_infinity=False), texts)


class Text(str):
    """A str subclass (pydantic writes it as a str)."""


class Level(enum.IntEnum):
    LOW = 1


odd_scalars = st.one_of(st.integers(), st.floats(), st.sampled_from(SURROGATES),
                        st.binary(max_size=3), st.just(()), st.just((1, "a")),
                        st.sampled_from([Text("t"), Text("\u2028"), Level.LOW, 2.0**60]))
plain_values = st.recursive(plain_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=10)
any_values = st.recursive(st.one_of(plain_scalars, odd_scalars), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner),
    st.dictionaries(hostile_texts, inner, max_size=3)), max_leaves=10)
hexes = st.one_of(st.just(SHA), st.text("0123456789abcdef", min_size=64, max_size=64))
digests = st.one_of(hexes, st.just("AB" * 32), st.just("ab" * 31), st.just(""),
                    st.sampled_from(SURROGATES), st.integers(), st.none())


# -- the reference: the pydantic path as it was ------------------------------------------------

def old_manifest_statement(manifest: Manifest) -> Statement:
    serialization: dict[str, Any] = {"method": "files", "hash_type": "sha256",
                                     "allow_symlinks": manifest.allow_symlinks}
    if manifest.ignore_paths:
        serialization["ignore_paths"] = list(manifest.ignore_paths)
    resources = [{"name": f.path, "algorithm": "sha256", "digest": f.sha256}
                 for f in manifest.files]
    return Statement(subject=[sha256_descriptor(manifest.name, manifest.root)],
                     predicate_type=OMS_PREDICATE_TYPE,
                     predicate={"serialization": serialization, "resources": resources})


def old_build_provenance(*, name: str, root: str, inputs: IdentityInputs,
                         started_on: dt.datetime, finished_on: dt.datetime,
                         builder_id: str = DEFAULT_BUILDER_ID, invocation_id: str | None = None,
                         byproducts: list[ResourceDescriptor] | None = None,
                         parents: list[ResourceDescriptor] | None = None) -> Statement:
    dependencies: list[ResourceDescriptor] = []
    code = inputs.code
    dependencies.append(ResourceDescriptor(
        name="code", uri=f"{code.uri}@{code.commit}" if code.uri else None,
        digest={"gitCommit": code.commit},
        annotations={"dirty": True} if code.dirty else None))
    for dataset in inputs.data:
        dependencies.append(sha256_descriptor(f"dataset:{dataset.name}", dataset.sha256,
                                              uri=dataset.uri))
    dependencies.extend(parents or [])
    external = {"name": name, **inputs.canonical_inputs()}
    metadata: dict[str, Any] = {"startedOn": rfc3339(started_on),
                                "finishedOn": rfc3339(finished_on)}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    run_details: dict[str, Any] = {
        "builder": {"id": builder_id, "version": {"mlprov": __version__}},
        "metadata": metadata,
    }
    if byproducts:
        run_details["byproducts"] = [b.to_json_dict() for b in byproducts]
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {
                "identity": compute_identity(inputs),
                "python": platform.python_version(),
                "platform": f"{sys.platform}-{platform.machine()}",
            },
            "resolvedDependencies": [d.to_json_dict() for d in dependencies],
        },
        "runDetails": run_details,
    }
    return Statement(subject=[sha256_descriptor(name, root)],
                     predicate_type=SLSA_PROVENANCE_V1, predicate=predicate)


def old_bom_statement(bom: Any, *, name: Any, root: Any) -> Statement:
    return Statement(subject=[sha256_descriptor(name, root)],
                     predicate_type=CYCLONEDX_BOM_PREDICATE, predicate=bom)


def old_index_bytes(**fields: Any) -> bytes:
    return EvidenceIndex(**fields).model_dump_json(by_alias=True, indent=2).encode() + b"\n"


# -- helpers -----------------------------------------------------------------------------------

def outcome(call: Any) -> tuple[str, Any]:
    """What a call gives: its value (key order kept), or its error's type and message."""
    try:
        value = call()
        if isinstance(value, Statement | ResourceDescriptor):
            value = value.to_json_dict()
    except Exception as exc:  # the refusals compared are those of pydantic and mlprov
        return "error", (type(exc).__name__, str(exc))
    if isinstance(value, dict):
        return "value", _ordered(value)
    return "value", value


def _ordered(value: Any) -> Any:
    """A document with its key order made part of equality."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def canonical_outcome(call: Any) -> tuple[str, Any]:
    """The canonical bytes of a call's document, or its error."""
    def go() -> bytes:
        value = call()
        if isinstance(value, Statement):
            return value.canonical_bytes()
        from mlprov.canonical import canonical_json

        return canonical_json(value)
    return outcome(go)


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a document leaves the plain domain (asks a pydantic model)."""
    def refuse() -> Any:
        raise AssertionError("the plain path asked a pydantic model")
    monkeypatch.setattr(documents, "_models", refuse)


def is_plain_text(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


# -- no pydantic -------------------------------------------------------------------------------

def test_importing_documents_loads_no_pydantic():
    code = ("import sys, mlprov._internal.documents\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'pydantic_core')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert done.stdout.strip() == "[]"


def test_building_and_signing_documents_loads_no_pydantic(tmp_path: Path):
    code = f"""
import datetime as dt, sys
from dataclasses import dataclass
from mlprov._internal import documents as d
from mlprov._signing.key import KeySigner
from mlprov.hashing import hash_path
from cryptography.hazmat.primitives.asymmetric import ed25519

@dataclass(frozen=True)
class Code:
    commit: str
    uri: str | None
    dirty: bool

@dataclass(frozen=True)
class Data:
    name: str
    sha256: str
    uri: str | None

@dataclass(frozen=True)
class Inputs:
    code: Code
    data: tuple[Data, ...]
    def canonical_inputs(self):
        return {{"code": {{"commit": self.code.commit, "dirty": self.code.dirty}},
                 "data": [{{"digest": "sha256:" + x.sha256, "name": x.name}} for x in self.data],
                 "config": {{"lr": 0.1}}, "seeds": {{"torch": 7}}}}

manifest = hash_path({str(tmp_path)!r})
inputs = Inputs(Code("a" * 40, "git+https://x/y", False), (Data("train", "{SHA}", None),))
now = dt.datetime.now(dt.UTC)
signer = KeySigner(ed25519.Ed25519PrivateKey.generate())
prov = d.provenance_document(name="m", root=manifest.root, inputs=inputs, started_on=now,
                             finished_on=now, parents=[d.descriptor("p", "{SHA}")])
for document in (d.manifest_document(manifest), prov,
                 d.bom_statement_document({{"bomFormat": "CycloneDX"}}, name="m",
                                          root=manifest.root)):
    signer.sign_document(document)
d.index_bytes(name="m", identity="i", root_digest="r", files={{"a": "b"}}, mlprov_version="0")
print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))
"""
    (tmp_path / "w.bin").write_bytes(b"weights")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- descriptors and statements ----------------------------------------------------------------

extra_keys = st.one_of(st.sampled_from(["uri", "content", "downloadLocation", "download_location",
                                        "mediaType", "media_type", "annotations", "digest"]),
                       hostile_texts)


@SETTINGS
@given(name=st.one_of(hostile_texts, st.none(), st.integers()), sha256=digests,
       extra=st.dictionaries(extra_keys, st.one_of(any_values, hostile_texts), max_size=3))
def test_descriptor_is_the_models(name: Any, sha256: Any, extra: dict[str, Any]):
    assert outcome(lambda: descriptor(name, sha256, **extra)) \
        == outcome(lambda: sha256_descriptor(name, sha256, **extra))


@SETTINGS
@given(name=texts, uri=st.one_of(st.none(), texts))
def test_descriptor_of_plain_input_needs_no_model(no_model: None, name: str, uri: str | None):
    assert descriptor(name, SHA, uri=uri) == sha256_descriptor(name, SHA, uri=uri).to_json_dict()


descriptor_dicts = st.one_of(
    st.builds(lambda n, d, x: {"name": n, "digest": {"sha256": d}, **x}, hostile_texts, digests,
              st.dictionaries(extra_keys, st.one_of(any_values, hostile_texts), max_size=2)),
    st.dictionaries(extra_keys, any_values, max_size=3), any_values)


@SETTINGS
@given(subject=st.one_of(st.lists(descriptor_dicts, max_size=3), any_values),
       predicate_type=st.one_of(hostile_texts, st.integers(), st.none()),
       predicate=st.one_of(st.dictionaries(hostile_texts, any_values, max_size=4), any_values))
def test_statement_document_is_the_models(subject: Any, predicate_type: Any, predicate: Any):
    new = outcome(lambda: statement_document(subject, predicate_type, predicate))
    old = outcome(lambda: Statement(subject=subject, predicate_type=predicate_type,
                                    predicate=predicate))
    assert new == old


@SETTINGS
@given(name=texts, predicate=st.dictionaries(texts, plain_values, max_size=4))
def test_statement_document_of_plain_input_needs_no_model(no_model: None, name: str,
                                                          predicate: dict[str, Any]):
    document = statement_document([descriptor(name, SHA)], "https://x/v1", predicate)
    model = Statement(subject=[sha256_descriptor(name, SHA)], predicate_type="https://x/v1",
                      predicate=predicate)
    assert _ordered(document) == _ordered(model.to_json_dict())


# -- the OMS manifest --------------------------------------------------------------------------

manifests = st.builds(
    lambda name, files, ignore, symlinks: Manifest(
        name=name, files=tuple(FileDigest(path, sha256, 1) for path, sha256 in files),
        ignore_paths=tuple(ignore), allow_symlinks=symlinks),
    name=hostile_texts,
    files=st.lists(st.tuples(st.one_of(hostile_texts, st.sampled_from([Text("p"), None, 7])),
                             st.one_of(hexes, st.just(Text(SHA)))),
                   max_size=4),
    ignore=st.lists(hostile_texts, max_size=2), symlinks=st.booleans())


@SETTINGS
@given(manifest=manifests)
def test_manifest_document_is_the_models(manifest: Manifest):
    new = outcome(lambda: manifest_document(manifest))
    assert new == outcome(lambda: old_manifest_statement(manifest))
    assert new == outcome(lambda: manifest_statement(manifest))
    assert canonical_outcome(lambda: manifest_document(manifest)) \
        == canonical_outcome(lambda: old_manifest_statement(manifest))


def test_manifest_document_of_a_hashed_tree_needs_no_model(no_model: None, tmp_path: Path):
    from mlprov.hashing import hash_path

    for name in ("w.bin", 'q"uote', "line\nbreak", "\u2028", "\U0001f600.safetensors"):
        (tmp_path / name).write_bytes(name.encode())
    manifest = hash_path(tmp_path)
    assert _ordered(manifest_document(manifest)) \
        == _ordered(old_manifest_statement(manifest).to_json_dict())


# -- provenance --------------------------------------------------------------------------------

codes = st.builds(CodeRef, commit=st.sampled_from(["a" * 40, "b" * 64]),
                  uri=st.one_of(st.none(), texts, st.sampled_from(SURROGATES)),
                  dirty=st.booleans())
datasets = st.lists(st.builds(DataRef, name=texts.filter(bool),
                              digest=hexes.map("sha256:".__add__),
                              uri=st.one_of(st.none(), hostile_texts)),
                    max_size=3, unique_by=lambda d: d.name)
inputs_st = st.builds(IdentityInputs, code=codes, data=datasets,
                      config=st.dictionaries(hostile_texts, any_values, max_size=3),
                      seeds=st.dictionaries(texts, st.integers(-(2**53) + 1, 2**53 - 1),
                                            max_size=2))
moments = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1),
                       timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5))]))
resource_descriptors = st.lists(st.builds(
    lambda name, sha, uri, ann: ResourceDescriptor(name=name, digest={"sha256": sha}, uri=uri,
                                                   annotations=ann),
    hostile_texts, hexes, st.one_of(st.none(), texts),
    st.one_of(st.none(), st.dictionaries(texts, plain_values, max_size=2))), max_size=2)


@SETTINGS
@given(name=st.one_of(hostile_texts, st.integers()), root=digests, inputs=inputs_st,
       started=moments, finished=moments,
       builder_id=st.one_of(hostile_texts, st.just(DEFAULT_BUILDER_ID)),
       invocation_id=st.one_of(st.none(), hostile_texts),
       byproducts=st.one_of(st.none(), resource_descriptors),
       parents=st.one_of(st.none(), resource_descriptors))
def test_provenance_document_is_the_models(name: Any, root: Any, inputs: IdentityInputs,
                                           started: dt.datetime, finished: dt.datetime,
                                           builder_id: str, invocation_id: str | None,
                                           byproducts: list[ResourceDescriptor] | None,
                                           parents: list[ResourceDescriptor] | None):
    args = dict(name=name, root=root, inputs=inputs, started_on=started, finished_on=finished,
                builder_id=builder_id, invocation_id=invocation_id)
    as_json = dict(byproducts=None if byproducts is None else [b.to_json_dict()
                                                                for b in byproducts],
                   parents=None if parents is None else [p.to_json_dict() for p in parents])
    new = outcome(lambda: provenance_document(**args, **as_json))
    old = outcome(lambda: old_build_provenance(**args, byproducts=byproducts, parents=parents))
    assert new == old
    assert new == outcome(lambda: build_provenance(**args, byproducts=byproducts,
                                                   parents=parents))
    assert canonical_outcome(lambda: provenance_document(**args, **as_json)) \
        == canonical_outcome(lambda: old_build_provenance(**args, byproducts=byproducts,
                                                          parents=parents))


def test_build_provenance_still_wants_identity_inputs():
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(Exception, match="IdentityInputs") as refused:
        build_provenance(name="m", root=SHA, inputs=object(),  # type: ignore[arg-type]
                         started_on=now, finished_on=now)
    assert not isinstance(refused.value, AttributeError)


plain_inputs = st.builds(
    IdentityInputs,
    code=st.builds(CodeRef, commit=st.just("c" * 40), uri=st.one_of(st.none(), texts),
                   dirty=st.booleans()),
    data=st.lists(st.builds(DataRef, name=texts.filter(bool), digest=hexes.map("sha256:".__add__),
                            uri=st.one_of(st.none(), texts)), max_size=3,
                  unique_by=lambda d: d.name),
    config=st.dictionaries(texts, plain_values, max_size=3),
    seeds=st.dictionaries(texts, st.integers(-(2**53) + 1, 2**53 - 1), max_size=2))


@SETTINGS
@given(name=texts, inputs=plain_inputs, started=moments)
def test_provenance_of_plain_inputs_needs_no_model(no_model: None, name: str,
                                                   inputs: IdentityInputs,
                                                   started: dt.datetime):
    document = provenance_document(name=name, root=SHA, inputs=inputs, started_on=started,
                                   finished_on=started, parents=[descriptor("p", SHA)])
    model = old_build_provenance(name=name, root=SHA, inputs=inputs, started_on=started,
                                 finished_on=started, parents=[sha256_descriptor("p", SHA)])
    assert _ordered(document) == _ordered(model.to_json_dict())


# -- the SBOM statement ------------------------------------------------------------------------

@SETTINGS
@given(bom=st.one_of(st.dictionaries(hostile_texts, any_values, max_size=4), any_values),
       name=st.one_of(hostile_texts, st.none()), root=digests)
def test_bom_statement_document_is_the_models(bom: Any, name: Any, root: Any):
    new = outcome(lambda: bom_statement_document(bom, name=name, root=root))
    assert new == outcome(lambda: old_bom_statement(bom, name=name, root=root))
    assert new == outcome(lambda: bom_statement(bom, name=name, root=root))


def test_attest_of_a_real_model_stays_on_the_plain_path(no_model: None, tmp_path: Path):
    """mlprov's own inputs (a real manifest, provenance, BOM) never ask the model."""
    from mlprov.attestation import attest
    from mlprov.signing import write_key_pair

    model = tmp_path / "model"
    model.mkdir()
    for name in ("weights.bin", 'q"uote', "line\nbreak", "\u2028", "\U0001f600.json"):
        (model / name).write_bytes(name.encode())
    key = tmp_path / "k"
    write_key_pair(generate_key(KeyType.ED25519), key, None)
    data = tmp_path / "train.csv"
    data.write_text("a,b\n")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"metrics": {"accuracy": 0.9}}')
    parent_model = tmp_path / "parent"
    parent_model.mkdir()
    (parent_model / "w").write_bytes(b"parent")
    attest(parent_model, name="base", key=key, out=tmp_path / "parent-ev", commit="b" * 40)
    result = attest(model, name="m-1", key=key, out=tmp_path / "ev", commit="a" * 40,
                    config={"lr": 0.01, "layers": [1, 2], "q": 'x"\u2028'}, seeds={"torch": 1},
                    data=[f"train={data}"], parents=[f"base={tmp_path / 'parent-ev'}"],
                    metrics=metrics)
    # Ed25519 signs deterministically: signing each signed payload again as a document
    # gives the very bundle attest wrote, and index_bytes the very evidence.json.
    from mlprov.canonical import loads_strict
    from mlprov.hashing import default_ignore_paths, hash_path
    from mlprov.signing import load_private_key

    evidence = tmp_path / "ev"
    signer = load_private_key(key)
    for name in ("model.sig", "provenance.sigstore.json", "sbom.sigstore.json"):
        bundle = (evidence / name).read_bytes()
        payload = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])
        assert sign_document(loads_strict(payload, what=name), signer) == bundle
    manifest = hash_path(model, ignore_paths=default_ignore_paths(model, evidence))
    oms = (evidence / "model.sig").read_bytes()
    assert signer.sign_document(manifest_document(manifest)) == oms
    index = json.loads((evidence / "evidence.json").read_bytes())
    assert index_bytes(name=index["name"], identity=index["identity"],
                       root_digest=index["rootDigest"], files=index["files"],
                       mlprov_version=index["mlprovVersion"]) \
        == (evidence / "evidence.json").read_bytes()
    assert result.root_digest == manifest.root


# -- evidence.json -----------------------------------------------------------------------------

index_texts = st.one_of(hostile_texts, st.integers(), st.none(), st.binary(max_size=3))


@SETTINGS
@given(name=index_texts, identity=index_texts, root=index_texts, version=index_texts,
       files=st.one_of(st.dictionaries(hostile_texts, hostile_texts, max_size=4),
                       st.dictionaries(st.integers(), texts, max_size=1), any_values))
def test_index_bytes_are_the_models(name: Any, identity: Any, root: Any, version: Any,
                                    files: Any):
    fields = dict(name=name, identity=identity, root_digest=root, files=files,
                  mlprov_version=version)
    new = outcome(lambda: index_bytes(**fields))
    old = outcome(lambda: old_index_bytes(**fields))
    if old[0] == "value" and any(not is_plain_text(str(k)) for k in files):
        # pydantic writes a lone surrogate in a file name as U+FFFD; the twin refuses it.
        assert new == ("error", ("InputError", "cannot write evidence.json: a file name is not "
                                 "valid Unicode (a lone surrogate)"))
        return
    assert new == old


@SETTINGS
@given(name=texts, files=st.dictionaries(texts, texts, max_size=5))
def test_index_bytes_of_plain_input_need_no_model(name: str, files: dict[str, str]):
    # index_bytes asks the EvidenceIndex model directly (not via _models): patch it out.
    import mlprov.evidence

    fields = dict(name=name, identity="mlid:sha256:" + SHA, root_digest="sha256:" + SHA,
                  files=files, mlprov_version=__version__)
    expected = old_index_bytes(**fields)
    real = mlprov.evidence.EvidenceIndex
    try:
        mlprov.evidence.EvidenceIndex = None  # type: ignore[assignment,misc]
        assert index_bytes(**fields) == expected
    finally:
        mlprov.evidence.EvidenceIndex = real  # type: ignore[misc]


# -- signing a document ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signers() -> list[KeySigner]:
    return [KeySigner(generate_key(kind)) for kind in KeyType]


def trust_of(signers: list[KeySigner]) -> Trust:
    return Trust(keys=tuple(TrustedKey(name=f"k{i}", key=s.public_key,
                                       roles=frozenset({Role.BUILDER}))
                            for i, s in enumerate(signers)), source="test-trust")


statement_docs = st.builds(
    lambda subject, predicate_type, predicate, extra, kind: {
        **({"_type": kind} if kind is not None else {}), "subject": subject,
        "predicateType": predicate_type, "predicate": predicate, **extra},
    st.one_of(st.lists(descriptor_dicts, max_size=2), any_values),
    st.one_of(hostile_texts, st.integers()),
    st.one_of(st.dictionaries(hostile_texts, any_values, max_size=3), any_values),
    st.dictionaries(st.one_of(st.sampled_from(["type_", "predicate_type", "predicate"]),
                              hostile_texts), any_values, max_size=2),
    st.one_of(st.none(), st.just(STATEMENT_TYPE_V1), hostile_texts))


good_statement_docs = st.builds(
    lambda subject, predicate_type, predicate, extra: {
        "subject": subject, "predicateType": predicate_type, "predicate": predicate, **extra},
    st.lists(st.builds(lambda name, sha, extra: {"name": name, "digest": {"sha256": sha},
                                                 **extra},
                       st.one_of(texts, st.none()), hexes,
                       st.dictionaries(st.sampled_from(["uri", "mediaType", "media_type",
                                                        "annotations", "x"]),
                                       st.one_of(st.none(), texts), max_size=2)),
             min_size=1, max_size=2),
    texts.filter(bool), st.dictionaries(texts, plain_values, max_size=3),
    st.dictionaries(st.sampled_from(["_type", "predicate_type", "x", "type_"]),
                    st.one_of(st.none(), st.just(STATEMENT_TYPE_V1), texts), max_size=2))


@SETTINGS
@given(document=st.one_of(statement_docs, good_statement_docs))
def test_signing_a_document_signs_what_its_model_signs(signers: list[KeySigner],
                                                       document: dict[str, Any]):
    signer = signers[0]  # Ed25519: deterministic signatures, whole bundles comparable
    assert signer.public_key.algorithm == "ed25519"

    def model_bytes() -> bytes:
        return statement_from_document(document, what="statement").canonical_bytes()
    expected = outcome(model_bytes)
    event(f"model: {expected[0]}")
    assert outcome(lambda: statement_payload(document)) == expected
    signed = outcome(lambda: sign_document(document, signer))
    if expected[0] == "error":
        assert signed == expected
        return
    model = statement_from_document(document, what="statement")
    assert signed == outcome(lambda: sign_statement(model, signer))
    verified = verify_statement_bytes(signed[1], trust_of(signers), Role.BUILDER, what="s")
    assert verified.payload == expected[1]


def test_every_key_kind_signs_documents_that_verify(signers: list[KeySigner]):
    document = descriptor("m", SHA)
    statement = statement_document([document], "https://x/v1", {"a": ["\u2028", 1.5, None]})
    trust = trust_of(signers)
    for signer in signers:
        bundle = sign_document(statement, signer)
        verified = verify_statement_bytes(bundle, trust, Role.BUILDER, what="s")
        assert verified.payload == Statement.model_validate(statement).canonical_bytes()
        assert verified.parsed.document == statement


def test_a_refused_document_gets_the_models_message(signers: list[KeySigner]):
    for document, message in (
            ({"subject": [], "predicateType": "x"}, "subject"),
            ({"subject": [{"digest": {"sha256": "AB"}}], "predicateType": "x"}, "sha256"),
            ({"_type": "https://in-toto.io/Statement/v0.1", "subject": [
                {"digest": {"sha256": SHA}}], "predicateType": "x"}, "_type"),
            ([], "statement")):
        with pytest.raises(BundleError, match="statement is not an in-toto Statement v1") \
                as refused:
            sign_document(document, signers[0])  # type: ignore[arg-type]
        assert message in str(refused.value)


def test_a_value_canonical_json_cannot_carry_is_refused(signers: list[KeySigner]):
    document = statement_document([descriptor("m", SHA)], "x", {"big": 2**60})
    with pytest.raises(InputError):
        sign_document(document, signers[0])


def test_an_old_style_bundle_signer_signs_documents_through_the_model():
    class OnlyStatements(BundleSigner):
        def __init__(self) -> None:
            self.seen: list[bytes] = []

        def sign_statement(self, statement: Statement) -> bytes:
            self.seen.append(statement.canonical_bytes())
            return b"bundle"

        @property
        def description(self) -> str:
            return "test"

    signer = OnlyStatements()
    document = statement_document([descriptor("m", SHA)], "x", {"f": 1.0, "n": None})
    assert sign_document(document, signer) == b"bundle"
    assert signer.seen == [Statement.model_validate(document).canonical_bytes()]
