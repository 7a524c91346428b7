"""in-toto statements, SLSA provenance and the OMS manifest (statements, provenance, oms)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from mlprov.errors import BundleError, UnsafePathError
from mlprov.hashing import FileDigest, Manifest, root_digest
from mlprov.identity import CodeRef, DataRef, IdentityInputs, compute_identity
from mlprov.oms import OMS_PREDICATE_TYPE, manifest_statement, read_signed_manifest
from mlprov.provenance import (
    BUILD_TYPE,
    DEFAULT_BUILDER_ID,
    SLSA_PROVENANCE_V1,
    build_provenance,
    read_provenance,
    rfc3339,
)
from mlprov.statements import (
    STATEMENT_TYPE_V1,
    ResourceDescriptor,
    Statement,
    parse_statement,
    sha256_descriptor,
)
from tests.conftest import COMMIT

A = "a" * 64
B = "b" * 64


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- ResourceDescriptor ---------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"uri": "https://example.com/x"},
    {"digest": {"sha256": A}},
    {"content": "aGVsbG8="},
    {"name": "x", "digest": {"gitCommit": COMMIT}},
    {"digest": {"dirHash": "abc123"}},
])
def test_descriptor_needs_one_locator(fields: dict[str, Any]):
    assert ResourceDescriptor.model_validate(fields)


@pytest.mark.parametrize("fields", [
    {},
    {"name": "only-a-name"},
    {"name": "x", "mediaType": "text/plain", "annotations": {"a": 1}},
    {"downloadLocation": "https://example.com/x"},
])
def test_descriptor_without_locator_rejected(fields: dict[str, Any]):
    with pytest.raises(ValidationError, match="one of uri, digest, content"):
        ResourceDescriptor.model_validate(fields)


@pytest.mark.parametrize("digest", [
    {"sha256": A.upper()},
    {"sha256": A[:-1]},
    {"sha256": A + "0"},
    {"sha256": "g" * 64},
    {"sha256": "sha256:" + A[7:]},
    {"sha256": ""},
    {"sha512": A},
    {"sha1": A},
])
def test_bad_hex_digests_rejected(digest: dict[str, str]):
    with pytest.raises(ValidationError, match="bad sha"):
        ResourceDescriptor(digest=digest)


def test_descriptor_camel_case_aliases():
    rd = ResourceDescriptor.model_validate({"uri": "u", "mediaType": "m",
                                            "downloadLocation": "d"})
    assert (rd.media_type, rd.download_location) == ("m", "d")
    assert rd.to_json_dict() == {"uri": "u", "mediaType": "m", "downloadLocation": "d"}


# --- Statement ------------------------------------------------------------------------------

def test_statement_json_form():
    stmt = Statement(subject=[sha256_descriptor("m", A)], predicate_type="https://x/p",
                     predicate={"n": 3})
    assert stmt.to_json_dict() == {"_type": STATEMENT_TYPE_V1,
                                   "subject": [{"name": "m", "digest": {"sha256": A}}],
                                   "predicateType": "https://x/p", "predicate": {"n": 3}}
    # RFC 8785: sorted keys, no whitespace; ints stay ints.
    assert stmt.canonical_bytes() == (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"n":3},'
        b'"predicateType":"https://x/p","subject":[{"digest":{"sha256":"' + A.encode()
        + b'"},"name":"m"}]}')


@pytest.mark.parametrize("subject", [
    [],
    [{"name": "m", "uri": "https://example.com/m"}],
    [{"digest": {"sha256": A}}, {"name": "no-digest", "uri": "u"}],
    [{"name": "m", "digest": {}, "uri": "u"}],
])
def test_statement_subjects_need_digests(subject: list[dict[str, Any]]):
    with pytest.raises(ValidationError):
        Statement.model_validate({"_type": STATEMENT_TYPE_V1, "subject": subject,
                                  "predicateType": "https://x/p"})


def test_statement_type_must_be_v1():
    with pytest.raises(ValidationError):
        Statement.model_validate({"_type": "https://in-toto.io/Statement/v0.1",
                                  "subject": [{"digest": {"sha256": A}}],
                                  "predicateType": "https://x/p"})


def test_predicate_is_optional():
    stmt = parse_statement(json.dumps({"_type": STATEMENT_TYPE_V1,
                                       "subject": [{"digest": {"sha256": A}}],
                                       "predicateType": "https://x/p"}).encode(), what="p")
    assert stmt.predicate == {}


def test_unknown_fields_are_ignored_when_reading():
    payload = json.dumps({
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": "m", "digest": {"sha256": A, "vendorHash": "zz"},
                     "vendor_extra": {"x": 1}}],
        "predicateType": "https://x/p",
        "predicate": {"anything": [1, 2]},
        "acme_extension": True,
    }).encode()
    stmt = parse_statement(payload, what="p")
    assert stmt.subject_sha256() == {A}
    assert stmt.predicate == {"anything": [1, 2]}


@pytest.mark.parametrize("payload", [
    b"", b"[]", b"not json", b'{"_type": 1}',
    b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "'
    + A.encode() + b'"}}], "predicateType": "x", "predicateType": "y"}',
    b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "'
    + A.encode() + b'"}}], "predicateType": "x", "predicate": {"n": NaN}}',
])
def test_parse_statement_errors_are_bundle_errors(payload: bytes):
    with pytest.raises(BundleError) as info:
        parse_statement(payload, what="the payload")
    assert "the payload" in str(info.value)
    assert "\n" not in str(info.value)


def test_subject_sha256():
    stmt = Statement(subject=[sha256_descriptor("a", A), sha256_descriptor("b", B),
                              ResourceDescriptor(name="c", digest={"gitCommit": COMMIT})],
                     predicate_type="p")
    assert stmt.subject_sha256() == {A, B}


# --- SLSA provenance ------------------------------------------------------------------------

def inputs() -> IdentityInputs:
    return IdentityInputs(
        code=CodeRef(commit=COMMIT, uri="git+https://example.com/acme/llm"),
        data=[DataRef(name="train", digest=f"sha256:{A}", uri="hf://datasets/acme/x@r1"),
              DataRef(name="eval", digest=f"sha256:{B}")],
        config={"lr": 0.001, "epochs": 3, "layers": [1, 2]}, seeds={"torch": 1234})


START = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
FINISH = dt.datetime(2026, 1, 1, 5, 0, 0, tzinfo=dt.UTC)


def provenance(**overrides: Any) -> Statement:
    arguments: dict[str, Any] = {"name": "acme-llm", "root": A, "inputs": inputs(),
                                 "started_on": START, "finished_on": FINISH,
                                 "invocation_id": "run-42"}
    arguments.update(overrides)
    return build_provenance(**arguments)


def test_build_provenance_shape():
    stmt = provenance(byproducts=[sha256_descriptor("metrics", B)])
    assert stmt.predicate_type == SLSA_PROVENANCE_V1 == "https://slsa.dev/provenance/v1"
    assert stmt.subject == [sha256_descriptor("acme-llm", A)]
    definition = stmt.predicate["buildDefinition"]
    assert definition["buildType"] == BUILD_TYPE
    assert definition["externalParameters"]["name"] == "acme-llm"
    assert definition["internalParameters"]["identity"] == compute_identity(inputs())
    deps = definition["resolvedDependencies"]
    assert deps[0] == {"name": "code", "uri": f"git+https://example.com/acme/llm@{COMMIT}",
                       "digest": {"gitCommit": COMMIT}}
    assert {d["name"] for d in deps[1:]} == {"dataset:train", "dataset:eval"}
    run = stmt.predicate["runDetails"]
    assert run["builder"]["id"] == DEFAULT_BUILDER_ID
    assert run["metadata"] == {"startedOn": "2026-01-01T00:00:00Z",
                               "finishedOn": "2026-01-01T05:00:00Z", "invocationId": "run-42"}
    assert run["byproducts"] == [{"name": "metrics", "digest": {"sha256": B}}]
    # Integers stay integers in what is signed.
    assert b'"epochs":3,' in stmt.canonical_bytes()


def test_rfc3339_is_utc_z():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339(dt.datetime(2026, 1, 1, 2, 0, 0, tzinfo=plus_two)) == "2026-01-01T00:00:00Z"


def test_provenance_round_trips_through_read_provenance():
    stmt = provenance(builder_id="https://ci.example.com/builder@v1")
    parsed = parse_statement(stmt.canonical_bytes(), what="prov")
    assert parsed == stmt
    prov = read_provenance(parsed, what="prov")
    assert prov.name == "acme-llm"
    assert prov.inputs == inputs()
    assert prov.identity == compute_identity(inputs())
    assert prov.builder_id == "https://ci.example.com/builder@v1"
    assert (prov.invocation_id, prov.started_on, prov.finished_on) == (
        "run-42", "2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z")


def test_read_provenance_ignores_unknown_fields_outside_external_parameters():
    document = provenance().to_json_dict()
    document["predicate"]["runDetails"]["acme_extra"] = 1
    document["predicate"]["buildDefinition"]["internalParameters"]["gpu"] = "a100"
    prov = read_provenance(Statement.model_validate(document), what="p")
    assert prov.name == "acme-llm"


def mutated(change) -> Statement:
    document = copy.deepcopy(provenance().to_json_dict())
    change(document["predicate"])
    return Statement.model_validate(document)


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda p: p["buildDefinition"]["externalParameters"].update(extra_flag="--yolo"),
     "extra_flag"),
    (lambda p: p["buildDefinition"]["externalParameters"]["code"].update(branch="main"),
     "branch"),
    (lambda p: p["buildDefinition"].update(buildType="https://slsa-framework.github.io/x"),
     "unknown build type"),
    (lambda p: p["buildDefinition"]["externalParameters"].pop("name"), "name"),
    (lambda p: p["buildDefinition"]["internalParameters"].pop("identity"), "identity"),
    (lambda p: p["runDetails"].pop("builder"), "builder"),
    (lambda p: p.pop("buildDefinition"), "buildDefinition"),
    (lambda p: p["buildDefinition"].update(externalParameters=["name", "xy"]),
     "externalParameters"),
    (lambda p: p["buildDefinition"].update(externalParameters="ab"), "externalParameters"),
    (lambda p: p["buildDefinition"]["externalParameters"].update(name=7), "name"),
    (lambda p: p["buildDefinition"]["internalParameters"].update(identity=["x"]), "identity"),
    (lambda p: p["runDetails"].update(metadata=[1]), "metadata"),
    (lambda p: p["buildDefinition"]["externalParameters"]["seeds"].update(torch="x"), "seeds"),
])
def test_read_provenance_rejects(change, pattern: str):
    with pytest.raises(BundleError, match=pattern) as info:
        read_provenance(mutated(change), what="prov.json")
    assert str(info.value).startswith("prov.json: ")
    assert "\n" not in str(info.value)


def test_read_provenance_rejects_other_predicate_type():
    stmt = Statement(subject=[sha256_descriptor("m", A)], predicate_type=OMS_PREDICATE_TYPE,
                     predicate=provenance().predicate)
    with pytest.raises(BundleError, match=re.escape("is not 'https://slsa.dev/provenance/v1'")):
        read_provenance(stmt, what="p")


# --- OMS manifest ---------------------------------------------------------------------------

def oms_statement(resources: list[dict[str, Any]], *, root: str | None = None,
                  serialization: dict[str, Any] | None = None, name: str = "model") -> Statement:
    if root is None:
        root = root_digest(r["digest"] for r in resources)
    return Statement(subject=[sha256_descriptor(name, root)], predicate_type=OMS_PREDICATE_TYPE,
                     predicate={"serialization": serialization or {
                         "method": "files", "hash_type": "sha256", "allow_symlinks": False,
                         "ignore_paths": [".git", ".gitignore"]},
                         "resources": resources})


def res(name: str, digest: str = A, algorithm: str = "sha256") -> dict[str, str]:
    return {"name": name, "algorithm": algorithm, "digest": digest}


def test_manifest_statement_round_trips():
    manifest = Manifest(name="model", files=(FileDigest("a/b.bin", A, 1),
                                             FileDigest("c.txt", B, 2)),
                        ignore_paths=(".git",))
    stmt = manifest_statement(manifest)
    assert stmt.predicate["serialization"] == {"method": "files", "hash_type": "sha256",
                                               "allow_symlinks": False, "ignore_paths": [".git"]}
    signed = read_signed_manifest(parse_statement(stmt.canonical_bytes(), what="s"), what="s")
    assert signed.files == {"a/b.bin": A, "c.txt": B}
    assert signed.root == manifest.root
    assert (signed.name, signed.ignore_paths, signed.allow_symlinks) == ("model", (".git",),
                                                                          False)


def test_read_signed_manifest_accepts_oms_layout():
    stmt = oms_statement([res("w.bin", A), res("sub/a.txt", B)],
                         serialization={"ignore_paths": [".gitattributes", ".git/"],
                                        "method": "files", "allow_symlinks": True,
                                        "hash_type": "sha256"})
    signed = read_signed_manifest(stmt, what="model.sig")
    assert signed.files == {"w.bin": A, "sub/a.txt": B}
    assert signed.ignore_paths == (".gitattributes", ".git")
    assert signed.allow_symlinks is True


@pytest.mark.parametrize("name", [
    "../escape", "a/../../etc/passwd", "/etc/passwd", "a//b", "a/./b", "", "a\\b", "a/\x00",
    "..", "a/",
])
def test_read_signed_manifest_rejects_unsafe_names(name: str):
    with pytest.raises(UnsafePathError):
        read_signed_manifest(oms_statement([res("ok.bin"), res(name, B)]), what="m")


@pytest.mark.parametrize("ignore", ["../x", "/abs", "a/../../b"])
def test_read_signed_manifest_rejects_unsafe_ignore_paths(ignore: str):
    stmt = oms_statement([res("ok.bin")], serialization={
        "method": "files", "hash_type": "sha256", "ignore_paths": [ignore]})
    with pytest.raises(UnsafePathError, match="unsafe ignore path"):
        read_signed_manifest(stmt, what="m")


def test_read_signed_manifest_rejects_duplicates():
    with pytest.raises(BundleError, match=r"'a\.bin' listed twice"):
        read_signed_manifest(oms_statement([res("a.bin", A), res("a.bin", B)]), what="m")


def test_read_signed_manifest_rejects_inconsistent_root():
    with pytest.raises(BundleError, match="subject digest does not match"):
        read_signed_manifest(oms_statement([res("a.bin", A)], root=B), what="m")
    # The root is over the listed order: swapping entries changes it.
    stmt = oms_statement([res("a", A), res("b", B)], root=root_digest([B, A]))
    with pytest.raises(BundleError, match="subject digest does not match"):
        read_signed_manifest(stmt, what="m")


@pytest.mark.parametrize("resource", [
    res("a.bin", "c" * 128, "sha512"),
    res("a.bin", A, "blake2b"),
    res("a.bin", A.upper()),
    res("a.bin", A[:-2]),
    {"name": "a.bin", "digest": A},
    {"name": 5, "algorithm": "sha256", "digest": A},
    "a.bin",
])
def test_read_signed_manifest_rejects_non_sha256(resource: Any):
    with pytest.raises(BundleError, match="malformed resource"):
        read_signed_manifest(oms_statement([resource], root=A), what="m")


@pytest.mark.parametrize("serialization", [
    {"method": "shards", "hash_type": "sha256", "shard_size": 1000},
    {"method": "files", "hash_type": "blake2"},
    {"method": "files", "hash_type": "sha256", "ignore_paths": "not-a-list"},
])
def test_read_signed_manifest_rejects_unsupported_serialization(serialization: dict[str, Any]):
    with pytest.raises(BundleError):
        read_signed_manifest(oms_statement([res("a.bin")], serialization=serialization),
                             what="m")


def test_read_signed_manifest_structure():
    base = oms_statement([res("a.bin")])
    no_resources = Statement(subject=base.subject, predicate_type=OMS_PREDICATE_TYPE,
                             predicate={"serialization": base.predicate["serialization"]})
    with pytest.raises(BundleError, match="lacks serialization or resources"):
        read_signed_manifest(no_resources, what="m")
    with pytest.raises(BundleError, match="lists no files"):
        read_signed_manifest(oms_statement([], root=hashlib.sha256().hexdigest()), what="m")
    two = Statement(subject=[*base.subject, sha256_descriptor("x", B)],
                    predicate_type=OMS_PREDICATE_TYPE, predicate=base.predicate)
    with pytest.raises(BundleError, match="exactly one subject"):
        read_signed_manifest(two, what="m")
