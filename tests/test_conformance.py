"""What mlprov writes conforms to the official in-toto and Sigstore bindings.

The bindings are test-only references (SPECS.md §4): ``in_toto_attestation``
(in-toto's generated protobufs) for the Statement and the SLSA predicate, and
``sigstore_models`` (the strict pydantic models sigstore-python and
model-signing 1.1.1 read bundles with) for the bundle.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement as ItaStatement

from mlprov.attestation import attest
from mlprov.bundles import BUNDLE_MEDIA_TYPE
from mlprov.evidence import OMS_FILE, PROVENANCE_FILE
from mlprov.identity import DataRef
from mlprov.oms import OMS_PREDICATE_TYPE
from mlprov.provenance import BUILD_TYPE, SLSA_PROVENANCE_V1
from mlprov.signing import KeyType, load_public_key
from tests.conftest import COMMIT

BUILDER_ID = "https://ci.example.com/acme/train@refs/tags/v1"


@pytest.fixture(params=[KeyType.ECDSA_P256, KeyType.ED25519], ids=lambda k: k.value)
def evidence(request: pytest.FixtureRequest, make_key, model_dir: Path, tmp_path: Path,
             ) -> tuple[Path, Any]:
    key = make_key("ci", request.param)
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"accuracy": 0.91, "epochs": 3}')
    out = tmp_path / "evidence"
    attest(model_dir, name="acme-llm", out=out, key=key.private, commit=COMMIT,
           data=[DataRef(name="train", digest="sha256:" + "1" * 64, uri="hf://d/x@r1")],
           config={"lr": 0.001, "epochs": 3}, seeds={"torch": 1234}, metrics=metrics,
           builder_id=BUILDER_ID, invocation_id="run-42")
    return out, key


def payload_of(path: Path) -> bytes:
    bundle = json.loads(path.read_bytes())
    return base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)


def parse_ita(payload: bytes) -> ItaStatement:
    proto = json_format.Parse(payload, statement_pb2.Statement(), ignore_unknown_fields=True)
    statement = ItaStatement.copy_from_pb(proto)
    statement.validate()
    return statement


@pytest.mark.parametrize("file_name", [OMS_FILE, PROVENANCE_FILE, "sbom.sigstore.json",
                                       "eval.sigstore.json"])
def test_statements_validate_with_in_toto_bindings(evidence, file_name: str):
    out, _ = evidence
    payload = payload_of(out / file_name)
    statement = parse_ita(payload)
    document = json.loads(payload)
    assert statement.pb.type == "https://in-toto.io/Statement/v1"
    assert statement.pb.predicate_type == document["predicateType"]
    assert len(statement.pb.subject) == 1
    subject = statement.pb.subject[0]
    assert dict(subject.digest) == document["subject"][0]["digest"]
    assert len(subject.digest["sha256"]) == 64


def test_oms_statement_content(evidence, model_dir: Path):
    out, _ = evidence
    statement = parse_ita(payload_of(out / OMS_FILE))
    assert statement.pb.predicate_type == OMS_PREDICATE_TYPE
    assert statement.pb.subject[0].name == model_dir.name
    predicate = json_format.MessageToDict(statement.pb.predicate)
    assert predicate["serialization"]["method"] == "files"
    assert {r["name"] for r in predicate["resources"]} == {
        "config.json", "tokenizer/vocab.txt", "weights.bin"}


def test_provenance_predicate_parses_as_slsa_v1(evidence):
    out, _ = evidence
    payload = payload_of(out / PROVENANCE_FILE)
    statement = parse_ita(payload)
    assert statement.pb.predicate_type == SLSA_PROVENANCE_V1
    predicate = json.loads(payload)["predicate"]
    provenance = json_format.ParseDict(predicate, provenance_pb2.Provenance(),
                                       ignore_unknown_fields=True)
    assert provenance.build_definition.build_type == BUILD_TYPE
    assert provenance.run_details.builder.id == BUILDER_ID
    assert provenance.run_details.metadata.invocation_id == "run-42"
    assert provenance.run_details.metadata.started_on.ToJsonString().endswith("Z")
    assert provenance.run_details.metadata.finished_on.seconds >= \
        provenance.run_details.metadata.started_on.seconds
    deps = {d.name: d for d in provenance.build_definition.resolved_dependencies}
    assert deps["code"].digest["gitCommit"] == COMMIT
    assert deps["dataset:train"].digest["sha256"] == "1" * 64
    assert deps["dataset:train"].uri == "hf://d/x@r1"
    [metrics] = provenance.run_details.byproducts
    assert metrics.name == "metrics" and len(metrics.digest["sha256"]) == 64
    # Every descriptor mlprov writes is a valid in-toto ResourceDescriptor.
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    for rd in [*provenance.build_definition.resolved_dependencies, metrics]:
        ResourceDescriptor.copy_from_pb(rd).validate()
    # Round trip: protobuf JSON reads back what mlprov wrote (string fields exactly).
    again = json_format.MessageToDict(provenance)
    assert again["buildDefinition"]["buildType"] == predicate["buildDefinition"]["buildType"]
    assert again["runDetails"]["builder"] == predicate["runDetails"]["builder"]


def test_strict_parse_without_ignore_unknown_fields(evidence):
    # mlprov writes no extension fields at the Statement level, so even the
    # bindings' strict default (which rejects unknown fields) accepts it.
    out, _ = evidence
    for file_name in (OMS_FILE, PROVENANCE_FILE):
        json_format.Parse(payload_of(out / file_name), statement_pb2.Statement())


@pytest.mark.parametrize("file_name", [OMS_FILE, PROVENANCE_FILE, "sbom.sigstore.json",
                                       "eval.sigstore.json"])
def test_bundle_parses_with_sigstore_models(evidence, file_name: str):
    from sigstore_models.bundle.v1 import Bundle

    out, key = evidence
    data = (out / file_name).read_bytes()
    bundle = Bundle.from_json(data)  # strict, extra="forbid", oneofs checked
    assert bundle.media_type == BUNDLE_MEDIA_TYPE
    assert bundle.verification_material.public_key is not None
    assert bundle.verification_material.public_key.hint == load_public_key(key.public).keyid
    assert bundle.verification_material.tlog_entries == []
    envelope = bundle.dsse_envelope
    assert envelope is not None
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert len(envelope.signatures) == 1
    assert envelope.payload == payload_of(out / file_name)


def test_bundle_reads_with_model_signing(evidence):
    from model_signing._signing import sign_sigstore_pb

    out, _ = evidence
    signature = sign_sigstore_pb.Signature.read(out / OMS_FILE)
    assert signature.bundle.media_type == BUNDLE_MEDIA_TYPE


def test_sigstore_python_bundle_model(evidence):
    # sigstore-python cannot hold publicKey bundles (SPECS.md §3.2); if a future
    # release can, the bundle must parse cleanly.
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    out, _ = evidence
    try:
        bundle = Bundle.from_json((out / PROVENANCE_FILE).read_bytes())
    except SigstoreError as exc:
        assert "expected certificate" in str(exc)
    else:
        assert bundle._inner.media_type == BUNDLE_MEDIA_TYPE


def test_in_toto_bindings_catch_a_bad_statement():
    # The check above can fail: a subject without a digest is invalid to the bindings.
    bad = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "x"}],
                      "predicateType": "https://x/p", "predicate": {"a": 1}}).encode()
    with pytest.raises(ValueError, match="digest"):
        parse_ita(bad)
