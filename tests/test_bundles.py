"""Signed statement files: Sigstore bundles, DSSE envelopes, in-toto JSONL (mlprov.bundles)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlprov.bundles import (
    BUNDLE_MEDIA_TYPE,
    read_envelopes,
    sign_statement,
    verify_statement_file,
)
from mlprov.errors import BundleError, SignatureError
from mlprov.signing import KeySigner, KeyType, generate_key, pae
from mlprov.statements import PAYLOAD_TYPE_IN_TOTO, Statement, sha256_descriptor
from mlprov.trust import Role, Trust, TrustedKey

PREDICATE = "https://example.com/predicate/v1"
DIGEST = "a" * 64


def make_signer(key_type: KeyType = KeyType.ECDSA_P256) -> KeySigner:
    return KeySigner(generate_key(key_type))


def trust_of(*entries: tuple[str, KeySigner, set[Role]]) -> Trust:
    return Trust(keys=tuple(TrustedKey(name=name, key=signer.public_key, roles=frozenset(roles))
                            for name, signer, roles in entries), source="test-trust")


def statement(predicate_type: str = PREDICATE, **predicate: Any) -> Statement:
    return Statement(subject=[sha256_descriptor("model", DIGEST)],
                     predicate_type=predicate_type, predicate=predicate or {"k": 1})


def envelope(signer: KeySigner, payload: bytes,
             payload_type: str = PAYLOAD_TYPE_IN_TOTO, keyid: str = "") -> dict[str, Any]:
    """Sign ``payload`` by hand, DSSE style."""
    sig = signer.sign(pae(payload_type, payload))
    return {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
            "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": keyid}]}


def write(tmp_path: Path, data: bytes | str | dict[str, Any] | list[Any],
          name: str = "s.sigstore.json") -> Path:
    path = tmp_path / name
    if isinstance(data, dict | list):
        data = json.dumps(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def ci() -> KeySigner:
    return make_signer()


@pytest.fixture
def builder_trust(ci: KeySigner) -> Trust:
    return trust_of(("ci", ci, {Role.BUILDER}))


# --- what sign_statement writes -------------------------------------------------------------

def test_sign_statement_writes_sigstore_bundle_v03(ci: KeySigner):
    stmt = statement()
    document = json.loads(sign_statement(stmt, ci))
    assert document["mediaType"] == BUNDLE_MEDIA_TYPE == \
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = document["verificationMaterial"]
    assert material == {"publicKey": {"hint": ci.public_key.keyid}, "tlogEntries": []}
    env = document["dsseEnvelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert len(env["signatures"]) == 1
    # protobuf-specs: for DSSE content the hint equals the envelope keyid.
    assert env["signatures"][0]["keyid"] == ci.public_key.keyid
    payload = base64.b64decode(env["payload"], validate=True)
    assert payload == stmt.canonical_bytes()
    sig = base64.b64decode(env["signatures"][0]["sig"], validate=True)
    assert ci.public_key.verify(sig, pae(PAYLOAD_TYPE_IN_TOTO, payload))
    assert set(document) == {"mediaType", "verificationMaterial", "dsseEnvelope"}


@pytest.mark.parametrize("key_type", list(KeyType))
def test_verify_happy_path(tmp_path: Path, key_type: KeyType):
    signer = make_signer(key_type)
    stmt = statement()
    path = write(tmp_path, sign_statement(stmt, signer))
    verified = verify_statement_file(path, trust_of(("ci", signer, {Role.BUILDER})),
                                     Role.BUILDER, predicate_type=PREDICATE)
    assert verified.signer.name == "ci"
    assert verified.statement == stmt
    assert verified.payload == stmt.canonical_bytes()
    assert verified.path == path
    import hashlib
    assert verified.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- signer and role ------------------------------------------------------------------------

def test_signature_by_untrusted_key(tmp_path: Path, builder_trust: Trust):
    path = write(tmp_path, sign_statement(statement(), make_signer()))
    with pytest.raises(SignatureError, match="not signed by any key trusted by test-trust"):
        verify_statement_file(path, builder_trust, Role.BUILDER)


def test_trusted_key_without_the_role(tmp_path: Path, ci: KeySigner):
    trust = trust_of(("alice", ci, {Role.REVIEWER}))
    path = write(tmp_path, sign_statement(statement(), ci))
    with pytest.raises(SignatureError, match="alice, which lacks the builder role"):
        verify_statement_file(path, trust, Role.BUILDER)
    assert verify_statement_file(path, trust, Role.REVIEWER).signer.name == "alice"


def test_same_key_under_two_names_uses_the_entry_with_the_role(tmp_path: Path, ci: KeySigner):
    trust = trust_of(("as-reviewer", ci, {Role.REVIEWER}), ("as-builder", ci, {Role.BUILDER}))
    path = write(tmp_path, sign_statement(statement(), ci))
    assert verify_statement_file(path, trust, Role.BUILDER).signer.name == "as-builder"


def test_tampered_payload(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    payload = base64.b64decode(document["dsseEnvelope"]["payload"])
    tampered = payload.replace(DIGEST.encode(), b"b" * 64)
    assert tampered != payload
    document["dsseEnvelope"]["payload"] = base64.b64encode(tampered).decode()
    with pytest.raises(SignatureError):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_tampered_payload_type(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    document["dsseEnvelope"]["payloadType"] = "application/vnd.in-toto.provenance+json"
    with pytest.raises(SignatureError):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_tampered_signature(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    sig = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    document["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(SignatureError):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_urlsafe_unpadded_base64_accepted(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    env = document["dsseEnvelope"]
    for field, holder in (("payload", env), ("sig", env["signatures"][0])):
        raw = base64.b64decode(holder[field])
        holder[field] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


# --- hints are only hints -------------------------------------------------------------------

def test_hint_naming_another_key_still_verifies_by_the_real_key(tmp_path: Path, ci: KeySigner):
    other = make_signer()
    trust = trust_of(("other", other, {Role.BUILDER}), ("ci", ci, {Role.BUILDER}))
    document = json.loads(sign_statement(statement(), ci))
    document["verificationMaterial"]["publicKey"]["hint"] = other.public_key.keyid
    document["dsseEnvelope"]["signatures"][0]["keyid"] = other.public_key.keyid
    verified = verify_statement_file(write(tmp_path, document), trust, Role.BUILDER)
    assert verified.signer.name == "ci"


def test_hint_cannot_make_an_untrusted_key_trusted(tmp_path: Path, ci: KeySigner,
                                                   builder_trust: Trust):
    attacker = make_signer()
    document = json.loads(sign_statement(statement(), attacker))
    document["verificationMaterial"]["publicKey"]["hint"] = ci.public_key.keyid
    document["dsseEnvelope"]["signatures"][0]["keyid"] = ci.public_key.keyid
    with pytest.raises(SignatureError, match="not signed by any key trusted"):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_hint_cannot_borrow_a_role(tmp_path: Path, ci: KeySigner):
    reviewer = make_signer()
    trust = trust_of(("ci", ci, {Role.BUILDER}), ("alice", reviewer, {Role.REVIEWER}))
    document = json.loads(sign_statement(statement(), reviewer))
    document["verificationMaterial"]["publicKey"]["hint"] = ci.public_key.keyid
    with pytest.raises(SignatureError, match="alice, which lacks the builder role"):
        verify_statement_file(write(tmp_path, document), trust, Role.BUILDER)


def test_missing_or_null_hint_and_keyid(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    document["verificationMaterial"]["publicKey"] = {}
    del document["dsseEnvelope"]["signatures"][0]["keyid"]
    assert verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)
    document["verificationMaterial"]["publicKey"] = {"hint": None}
    document["dsseEnvelope"]["signatures"][0]["keyid"] = None
    assert verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


# --- malformed files ------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"",
    b"not json at all",
    b"[1, 2, 3]",
    b"[\n  {\"payloadType\": \"x\"}\n]\n",
    b"\"a string\"",
    b"null",
    b"{\"unrelated\": true}",
    b"{\"payload\": NaN, \"payloadType\": \"x\", \"signatures\": []}",
    b"\xff\xfe\x00garbage",
])
def test_malformed_files_are_bundle_errors(tmp_path: Path, builder_trust: Trust,
                                           content: bytes):
    with pytest.raises(BundleError) as info:
        verify_statement_file(write(tmp_path, content), builder_trust, Role.BUILDER)
    assert "\n" not in str(info.value)


def test_truncated_bundle(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    data = sign_statement(statement(), ci)
    for cut in (1, len(data) // 2, len(data) - 3):
        with pytest.raises(BundleError):
            verify_statement_file(write(tmp_path, data[:cut]), builder_trust, Role.BUILDER)


def test_missing_file(tmp_path: Path, builder_trust: Trust):
    with pytest.raises(BundleError, match="evidence file missing"):
        verify_statement_file(tmp_path / "nope.json", builder_trust, Role.BUILDER)


def test_unknown_media_type(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    document["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.9+json"
    with pytest.raises(BundleError, match="unknown bundle media type"):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


@pytest.mark.parametrize("media_type", [
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
])
def test_older_media_type_spellings_accepted(tmp_path: Path, ci: KeySigner,
                                             builder_trust: Trust, media_type: str):
    document = json.loads(sign_statement(statement(), ci))
    document["mediaType"] = media_type
    assert verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


@pytest.mark.parametrize("material", [
    {"certificate": {"rawBytes": "MIIB"}, "tlogEntries": []},
    {"x509CertificateChain": {"certificates": [{"rawBytes": "MIIB"}]}, "tlogEntries": []},
])
def test_keyless_bundle_has_a_clear_error(tmp_path: Path, ci: KeySigner, builder_trust: Trust,
                                          material: dict[str, Any]):
    # A key-only trust cannot vouch for a certificate bundle (tests/sigstore/ covers the rest).
    document = json.loads(sign_statement(statement(), ci))
    document["verificationMaterial"] = material
    with pytest.raises(SignatureError, match=r"keyless-signed .* trusts no Sigstore identity"):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_message_signature_bundle_rejected(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    document = json.loads(sign_statement(statement(), ci))
    del document["dsseEnvelope"]
    document["messageSignature"] = {"messageDigest": {"algorithm": "SHA2_256", "digest": "AA=="},
                                    "signature": "AA=="}
    with pytest.raises(BundleError, match="no DSSE envelope"):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


@pytest.mark.parametrize("mutate", [
    lambda d: d["dsseEnvelope"].update(signatures=[]),
    lambda d: d["dsseEnvelope"].pop("payloadType"),
    lambda d: d["dsseEnvelope"]["signatures"][0].update(sig=""),
    lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="!!not base64!!"),
    lambda d: d["dsseEnvelope"].update(payload="%%%"),
    lambda d: d.update(verificationMaterial="oops"),
    lambda d: d.update(dsseEnvelope=[]),
])
def test_malformed_envelope_fields(tmp_path: Path, ci: KeySigner, builder_trust: Trust, mutate):
    document = json.loads(sign_statement(statement(), ci))
    mutate(document)
    with pytest.raises(BundleError):
        verify_statement_file(write(tmp_path, document), builder_trust, Role.BUILDER)


def test_duplicate_json_keys_in_the_bundle(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    text = sign_statement(statement(), ci).decode()
    # Indented output (multi-line) and the compact form both.
    dup = text.replace('"mediaType":', '"mediaType": "x", "mediaType":', 1)
    with pytest.raises(BundleError, match="duplicate key 'mediaType'"):
        verify_statement_file(write(tmp_path, dup), builder_trust, Role.BUILDER)
    compact = json.dumps(json.loads(text))
    dup = compact.replace('"mediaType":', '"mediaType": "x", "mediaType":', 1)
    with pytest.raises(BundleError, match="duplicate key 'mediaType'"):
        verify_statement_file(write(tmp_path, dup), builder_trust, Role.BUILDER)


def test_duplicate_json_keys_in_the_signed_payload(tmp_path: Path, ci: KeySigner,
                                                   builder_trust: Trust):
    payload = (b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"' + PREDICATE.encode()
               + b'","predicateType":"https://slsa.dev/provenance/v1","subject":[{"digest":'
               b'{"sha256":"' + DIGEST.encode() + b'"}}]}')
    with pytest.raises(BundleError, match="duplicate key 'predicateType'"):
        verify_statement_file(write(tmp_path, envelope(ci, payload)), builder_trust,
                              Role.BUILDER)


# --- other container formats ----------------------------------------------------------------

def test_plain_dsse_envelope_verifies(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    stmt = statement()
    path = write(tmp_path, envelope(ci, stmt.canonical_bytes()), "s.dsse.json")
    verified = verify_statement_file(path, builder_trust, Role.BUILDER, predicate_type=PREDICATE)
    assert verified.statement == stmt


def test_plain_dsse_envelope_with_two_signatures(tmp_path: Path, ci: KeySigner,
                                                 builder_trust: Trust):
    payload = statement().canonical_bytes()
    document = envelope(make_signer(), payload)
    document["signatures"] += envelope(ci, payload)["signatures"]
    assert verify_statement_file(write(tmp_path, document), builder_trust,
                                 Role.BUILDER).signer.name == "ci"


def test_intoto_jsonl_ignores_junk_lines(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    other = statement("https://example.com/other/v1")
    wanted = statement(PREDICATE, wanted=True)
    lines = [
        "this line is not JSON",
        json.dumps({"some": "object"}),
        json.dumps([1, 2]),
        json.dumps(envelope(ci, other.canonical_bytes())),
        json.dumps(envelope(make_signer(), wanted.canonical_bytes())),  # untrusted signer
        "",
        json.dumps(envelope(ci, wanted.canonical_bytes())),
        "{truncated",
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", "model.intoto.jsonl")
    verified = verify_statement_file(path, builder_trust, Role.BUILDER, predicate_type=PREDICATE)
    assert verified.statement == wanted
    # Order does not matter.
    path = write(tmp_path, "\n".join(reversed(lines)) + "\n", "model.intoto.jsonl")
    assert verify_statement_file(path, builder_trust, Role.BUILDER,
                                 predicate_type=PREDICATE).statement == wanted


def test_intoto_jsonl_without_a_matching_envelope(tmp_path: Path, ci: KeySigner,
                                                  builder_trust: Trust):
    lines = ["junk", json.dumps(envelope(ci, statement("https://x/other").canonical_bytes()))]
    path = write(tmp_path, "\n".join(lines), "m.intoto.jsonl")
    with pytest.raises(BundleError, match="predicate type"):
        verify_statement_file(path, builder_trust, Role.BUILDER, predicate_type=PREDICATE)
    with pytest.raises(BundleError):
        verify_statement_file(write(tmp_path, "junk\nmore junk\n", "j.intoto.jsonl"),
                              builder_trust, Role.BUILDER)


def test_intoto_jsonl_skips_non_in_toto_payloads(tmp_path: Path, ci: KeySigner,
                                                 builder_trust: Trust):
    stmt = statement()
    lines = [json.dumps(envelope(ci, stmt.canonical_bytes(), "application/json")),
             json.dumps(envelope(ci, b"not a statement")),
             json.dumps(envelope(ci, stmt.canonical_bytes()))]
    path = write(tmp_path, "\n".join(lines), "m.intoto.jsonl")
    assert verify_statement_file(path, builder_trust, Role.BUILDER).statement == stmt


def test_read_envelopes_returns_hints(ci: KeySigner):
    bundle = sign_statement(statement(), ci)
    [(env, hint)] = read_envelopes(bundle, what="b")
    assert hint == ci.public_key.keyid
    assert env.payload_type == PAYLOAD_TYPE_IN_TOTO


# --- payload and predicate types ------------------------------------------------------------

@pytest.mark.parametrize("payload_type", [
    "application/json", "http://example.com/HelloWorld", "application/vnd.in-toto+jsonx",
])
def test_other_payload_types_rejected(tmp_path: Path, ci: KeySigner, builder_trust: Trust,
                                      payload_type: str):
    path = write(tmp_path, envelope(ci, statement().canonical_bytes(), payload_type))
    with pytest.raises(BundleError, match="payload type"):
        verify_statement_file(path, builder_trust, Role.BUILDER)


def test_predicate_specific_in_toto_payload_type_accepted(tmp_path: Path, ci: KeySigner,
                                                          builder_trust: Trust):
    path = write(tmp_path, envelope(ci, statement().canonical_bytes(),
                                    "application/vnd.in-toto.provenance+json"))
    assert verify_statement_file(path, builder_trust, Role.BUILDER)


def test_payload_type_checked_after_the_signature(tmp_path: Path, builder_trust: Trust):
    path = write(tmp_path, envelope(make_signer(), b"whatever", "application/json"))
    with pytest.raises(SignatureError):
        verify_statement_file(path, builder_trust, Role.BUILDER)


def test_predicate_type_mismatch(tmp_path: Path, ci: KeySigner, builder_trust: Trust):
    path = write(tmp_path, sign_statement(statement("https://slsa.dev/provenance/v1"), ci))
    with pytest.raises(BundleError, match=re.escape("predicate type 'https://slsa.dev/provenance/v1'")):
        verify_statement_file(path, builder_trust, Role.BUILDER, predicate_type=PREDICATE)


@pytest.mark.parametrize("payload", [
    b"not json",
    b'{"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": "'
    + DIGEST.encode() + b'"}}], "predicateType": "x"}',
    b'{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "x"}',
    b"[]",
])
def test_signed_payload_that_is_not_a_statement(tmp_path: Path, ci: KeySigner,
                                                builder_trust: Trust, payload: bytes):
    with pytest.raises(BundleError):
        verify_statement_file(write(tmp_path, envelope(ci, payload)), builder_trust,
                              Role.BUILDER)


def test_verified_payload_is_the_exact_signed_bytes(tmp_path: Path, ci: KeySigner,
                                                    builder_trust: Trust):
    payload = (b'{ "predicateType" : "' + PREDICATE.encode() + b'",\n "subject": [{"digest":'
               b' {"sha256": "' + DIGEST.encode() + b'"}}],\n'
               b'"_type": "https://in-toto.io/Statement/v1", "extra": 1}')
    verified = verify_statement_file(write(tmp_path, envelope(ci, payload)), builder_trust,
                                     Role.BUILDER)
    assert verified.payload == payload
