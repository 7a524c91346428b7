"""The pydantic-free reader (mlprov._internal.intoto) and the pydantic models agree.

For arbitrary and hostile documents (wrong types, aliases and Python names, both at
once, lone surrogates, bad digests, extra fields, empty lists), the reader accepts
exactly what ``Statement`` / the bundle schemas accept, and yields the same fields;
where it refuses, verification words the model's own error.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlprov._internal.intoto import (
    STATEMENT_TYPE_V1,
    read_bundle,
    read_envelope,
    read_statement,
)
from mlprov._signing.schemas import BundleModel, EnvelopeModel
from mlprov.bundles import BUNDLE_MEDIA_TYPE, VerifiedStatement, _read_statement
from mlprov.errors import BundleError
from mlprov.statements import PAYLOAD_TYPE_IN_TOTO, Statement, parse_statement

SHA = "ab" * 32
BAD_TEXT = ["\ud800", "x\udc00y", ""]
texts = st.one_of(st.text(max_size=6), st.sampled_from(BAD_TEXT))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=8)


extras = st.dictionaries(texts, json_values, max_size=2)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]],
            fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """A well-formed document with up to three edits: a field set to one of its own
    values or to any JSON value, a field dropped, an unknown (maybe unpaired) key added."""
    document = dict(draw(valid))
    keys = st.one_of(st.sampled_from(sorted(fields)), texts)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["own", "any", "drop"]))
        key = draw(keys)
        if action == "drop":
            document.pop(key, None)
        elif action == "own" and key in fields:
            document[key] = draw(fields[key])
        else:
            document[key] = draw(json_values)
    return document


def documents(required: dict[str, st.SearchStrategy[Any]],
              optional: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid-looking documents (fields by alias or by Python name, extras), then edits."""
    valid = st.tuples(st.fixed_dictionaries(required, optional=optional), extras).map(
        lambda pair: {**pair[1], **pair[0]})
    return mutated(valid, {**required, **optional})


good_digests = st.one_of(st.just({"sha256": SHA}),
                         st.fixed_dictionaries({"sha512": st.just("ab" * 64)},
                                               optional={"gitCommit": texts, "sha1": texts}))
digest_sets = st.one_of(
    good_digests,
    st.dictionaries(st.sampled_from(["sha256", "sha512", "sha1", "gitCommit", "\ud800"]),
                    st.one_of(st.just(SHA), st.just("ab" * 64), st.just("a" * 40),
                              st.just(SHA.upper()), st.just(SHA + "\n"), texts,
                              st.integers()), max_size=3))
descriptors = documents({"digest": digest_sets}, {
    "name": texts, "uri": texts, "content": texts, "downloadLocation": texts,
    "download_location": texts, "mediaType": texts, "media_type": st.one_of(texts, st.none()),
    "annotations": st.one_of(st.none(), st.dictionaries(texts, json_values, max_size=2))})
statements = documents({
    "subject": st.lists(descriptors, min_size=1, max_size=3),
    "predicateType": st.one_of(st.just("https://example.com/p/v1"), texts),
}, {
    "_type": st.sampled_from([STATEMENT_TYPE_V1, "https://in-toto.io/Statement/v0.1"]),
    "type_": st.sampled_from([STATEMENT_TYPE_V1, "v1"]),
    "predicate_type": st.one_of(st.just("https://example.com/p/v1"), texts),
    "predicate": st.dictionaries(texts, json_values, max_size=3)})
signatures = documents({"sig": st.one_of(st.just("c2ln"), texts)},
                       {"keyid": st.one_of(st.none(), texts)})
envelopes = documents({"payload": texts, "payloadType": st.one_of(st.just("t"), texts),
                       "signatures": st.lists(signatures, min_size=1, max_size=2)},
                      {"payload_type": texts})
bundles = documents({"mediaType": st.one_of(st.just(BUNDLE_MEDIA_TYPE), texts),
                     "verificationMaterial": st.dictionaries(texts, json_values, max_size=2),
                     "dsseEnvelope": envelopes},
                    {"media_type": texts,
                     "verification_material": st.dictionaries(texts, json_values, max_size=2),
                     "dsse_envelope": envelopes})

MANY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


def _validated(model: Any, document: Any) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError:
        return None


@MANY
@given(st.one_of(statements, json_values))
def test_the_reader_accepts_exactly_the_statements_the_model_accepts(document: Any):
    lean, model = read_statement(document), _validated(Statement, document)
    assert (lean is None) == (model is None), (document, model)
    if lean is not None:
        assert lean.predicate_type == model.predicate_type
        assert lean.predicate == model.predicate
        assert [(s.name, s.digest) for s in lean.subject] == \
            [(s.name, s.digest) for s in model.subject]
        assert lean.subject_sha256() == model.subject_sha256()


@MANY
@given(st.one_of(envelopes, json_values))
def test_the_reader_accepts_exactly_the_envelopes_the_schema_accepts(document: Any):
    lean, model = read_envelope(document), _validated(EnvelopeModel, document)
    assert (lean is None) == (model is None), (document, model)
    if lean is not None:
        assert (lean.payload, lean.payload_type) == (model.payload, model.payload_type)
        assert [(s.sig, s.keyid) for s in lean.signatures] == \
            [(s.sig, s.keyid) for s in model.signatures]


@MANY
@given(st.one_of(bundles, json_values))
def test_the_reader_accepts_exactly_the_bundles_the_schema_accepts(document: Any):
    lean, model = read_bundle(document), _validated(BundleModel, document)
    assert (lean is None) == (model is None), (document, model)
    if lean is not None:
        assert lean.media_type == model.media_type
        assert lean.verification_material == model.verification_material
        assert lean.dsse_envelope.payload_type == model.dsse_envelope.payload_type
        assert [s.sig for s in lean.dsse_envelope.signatures] == \
            [s.sig for s in model.dsse_envelope.signatures]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(statements)
def test_verification_reads_signed_bytes_as_parse_statement_does(document: dict[str, Any]):
    """Same statement, or the same error message, from the exact payload bytes."""
    payload = json.dumps(document).encode()
    try:
        expected: Statement | str = parse_statement(payload, what="p payload")
    except BundleError as exc:
        expected = str(exc)
    try:
        fields = _read_statement(payload, "p payload")
    except BundleError as exc:
        assert str(exc) == expected
        return
    assert isinstance(expected, Statement)
    verified = VerifiedStatement(parsed=fields, payload=payload, signer=None,  # type: ignore[arg-type]
                                 path=Path("p"), file_sha256="")
    assert verified.statement == expected


@pytest.mark.parametrize(("document", "where"), [
    ({"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": {"publicKey": {}},
      "dsseEnvelope": {"payload": "", "payloadType": "t", "signatures": []}},
     "dsseEnvelope.signatures: List should have at least 1 item"),
    ({"payload": "", "payloadType": "t", "signatures": [{"sig": ""}]},
     "signatures.0.sig: String should have at least 1 character"),
])
def test_a_refused_envelope_is_worded_by_the_schema(document: dict[str, Any], where: str):
    from mlprov.bundles import read_envelopes

    with pytest.raises(BundleError, match=f"s.json is malformed: {where}"):
        read_envelopes(json.dumps(document).encode(), what="s.json")


def test_an_accepted_envelope_reads_the_same_fields():
    from mlprov.bundles import read_envelopes

    payload = base64.b64encode(b"{}").decode()
    document = {"mediaType": BUNDLE_MEDIA_TYPE,
                "verificationMaterial": {"publicKey": {"hint": "k"}},
                "dsseEnvelope": {"payload": payload, "payloadType": PAYLOAD_TYPE_IN_TOTO,
                                 "signatures": [{"sig": "c2ln", "keyid": None, "x": 1}]},
                "extra": True}
    [(envelope, hint)] = read_envelopes(json.dumps(document).encode(), what="s.json")
    assert hint == "k"
    assert (envelope.payload, envelope.payload_type, envelope.signatures[0].sig) == \
        (payload, PAYLOAD_TYPE_IN_TOTO, "c2ln")
