"""Keyless (certificate) bundles verified by the real sigstore Verifier, offline.

Each bundle is made by a Sigstore instance the test builds (fake_instance.py);
``mlprov.bundles.verify_statement_file`` hands it to
``sigstore.verify.Verifier(trusted_root=...).verify_dsse`` with the trust file's
identity rules, then checks payload type and predicate as for key bundles.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from mlprov.bundles import read_envelopes, sign_statement, verify_statement_file
from mlprov.errors import BundleError, SignatureError, TrustError
from mlprov.signing import KeySigner, KeyType, generate_key
from mlprov.statements import PAYLOAD_TYPE_IN_TOTO
from mlprov.trust import Role, Trust, TrustedKey
from tests.sigstore.conftest import SUBJECT, builder_rule, keyless_trust, statement
from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore, now

GITHUB_CLAIMS = {"repository": "o/r", "ref": "refs/heads/main", "sha": "f" * 40,
                 "workflow": "train", "trigger": "push",
                 "runInvocationUri": "https://github.com/o/r/actions/runs/42/attempts/1"}


def keyless(instance: FakeSigstore, *, subject: str = SUBJECT, issuer: str = GITHUB_ISSUER,
            payload: bytes | None = None, **kw: object) -> dict[str, object]:
    data = payload if payload is not None else statement().canonical_bytes()
    return instance.sign_bundle(data, subject=subject, issuer=issuer, **kw)  # type: ignore[arg-type]


def test_right_identity_passes(instance: FakeSigstore, root_file: Path, write_bundle):
    path = write_bundle(keyless(instance, github=GITHUB_CLAIMS))
    verified = verify_statement_file(path, keyless_trust(root_file, builder_rule(name="ci")),
                                     Role.BUILDER, predicate_type="https://slsa.dev/provenance/v1")
    assert verified.statement.predicate == {"k": 1}
    assert verified.payload == statement().canonical_bytes()  # the exact signed bytes
    signer = verified.signer
    assert (signer.name, signer.roles) == ("ci", frozenset({Role.BUILDER}))
    assert signer.identity is not None
    assert (signer.identity.subject, signer.identity.issuer) == (SUBJECT, GITHUB_ISSUER)
    assert signer.identity.github == {
        "repository": "o/r", "ref": "refs/heads/main", "sha": "f" * 40, "workflow": "train",
        "trigger": "push", "runUri": "https://github.com/o/r/actions/runs/42/attempts/1"}
    assert signer.identity.log_index == 0 and signer.identity.integrated_time
    # What policy input and inspect get: JSON with the identity, backwards compatible keys.
    document = signer.to_json_dict()
    assert document["name"] == "ci" and document["roles"] == ["builder"]
    assert document["kind"] == "sigstore"
    assert document["sigstore"]["github"]["repository"] == "o/r"
    assert document["sigstore"]["claims"]["githubWorkflowRef"] == "refs/heads/main"
    assert "signed by ci (Sigstore https://github.com/o/r/" in f"signed by {signer.describe()}"


def test_name_defaults_to_the_certificate_subject(instance, root_file, write_bundle):
    verified = verify_statement_file(write_bundle(keyless(instance)), keyless_trust(root_file),
                                     Role.BUILDER)
    assert verified.signer.name == SUBJECT
    assert verified.signer.identity is not None and verified.signer.identity.github is None


def test_email_identity(instance, root_file, write_bundle):
    google = "https://accounts.google.com"
    path = write_bundle(keyless(instance, subject="alice@example.com", issuer=google))
    rule = builder_rule(subject="alice@example.com", issuer=google,
                        roles=frozenset({Role.REVIEWER}), name="alice")
    verified = verify_statement_file(path, keyless_trust(root_file, rule), Role.REVIEWER)
    assert verified.signer.name == "alice"


@pytest.mark.parametrize(("pattern", "ok"), [
    (r"https://github\.com/o/r/\.github/workflows/train\.yml@refs/(heads|tags)/.+", True),
    # Must match the whole subject: a prefix pattern does not trust look-alikes.
    (r"https://github\.com/o/r", False),
    (r"https://github\.com/o/r/\.github/workflows/train\.yml@refs/tags/v.*", False),
])
def test_subject_regex_matches_the_whole_subject(instance, root_file, write_bundle,
                                                 pattern: str, ok: bool):
    trust = keyless_trust(root_file, builder_rule(subject=None, subject_regex=pattern))
    path = write_bundle(keyless(instance))
    if ok:
        assert verify_statement_file(path, trust, Role.BUILDER).signer.name == SUBJECT
    else:
        with pytest.raises(SignatureError, match="which no sigstore identity in test-trust"):
            verify_statement_file(path, trust, Role.BUILDER)


def test_wrong_subject_fails(instance, root_file, write_bundle):
    path = write_bundle(keyless(instance, subject="https://github.com/evil/r/.github/"
                                                  "workflows/train.yml@refs/heads/main"))
    with pytest.raises(SignatureError) as caught:
        verify_statement_file(path, keyless_trust(root_file, builder_rule(name="ci")),
                              Role.BUILDER)
    message = str(caught.value)
    assert message.startswith("s.sigstore.json carries a certificate for "
                              "https://github.com/evil/r/")
    assert f"rule 'ci' expects {SUBJECT}" in message
    assert "\n" not in message


def test_wrong_issuer_fails(instance, root_file, write_bundle):
    path = write_bundle(keyless(instance, issuer="https://token.evil.example"))
    with pytest.raises(SignatureError, match=r"issuer https://token\.evil\.example\), which no "
                                             r"sigstore identity .* expects issuer "
                                             r"https://token\.actions"):
        verify_statement_file(path, keyless_trust(root_file, builder_rule(name="ci")),
                              Role.BUILDER)


def test_tampered_payload_fails(instance, root_file, write_bundle):
    document = keyless(instance)
    evil = statement(digest="b" * 64).canonical_bytes()
    document["dsseEnvelope"]["payload"] = base64.b64encode(evil).decode()  # type: ignore[index]
    with pytest.raises(SignatureError, match="signature does not match the signed payload"):
        verify_statement_file(write_bundle(document), keyless_trust(root_file), Role.BUILDER)


def test_tampered_log_entry_fails(instance, root_file, write_bundle):
    document = keyless(instance)
    entry = document["verificationMaterial"]["tlogEntries"][0]  # type: ignore[index]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 60)
    with pytest.raises(SignatureError, match="transparency-log entry does not verify"):
        verify_statement_file(write_bundle(document), keyless_trust(root_file), Role.BUILDER)


def test_bundle_from_another_trust_root_fails(other_instance, root_file, write_bundle):
    path = write_bundle(keyless(other_instance))
    with pytest.raises(SignatureError, match=r"certificate does not chain to a Fulcio CA of "
                                             r"trusted root .*trusted_root\.json"):
        verify_statement_file(path, keyless_trust(root_file), Role.BUILDER)


def test_certificate_expired_at_signing_fails(instance, root_file, write_bundle):
    start = now() - dt.timedelta(hours=2)
    path = write_bundle(keyless(instance, not_before=start,
                                not_after=start + dt.timedelta(minutes=10)))
    with pytest.raises(SignatureError, match=r"certificate was not valid \(expired\) when "
                                             "the signature was logged"):
        verify_statement_file(path, keyless_trust(root_file), Role.BUILDER)


def test_signature_counts_only_for_the_matched_rules_roles(instance, root_file, write_bundle):
    path = write_bundle(keyless(instance))
    reviewer_only = builder_rule(roles=frozenset({Role.REVIEWER}), name="ci-as-reviewer")
    with pytest.raises(SignatureError, match="trust rule 'ci-as-reviewer' lacks the builder "
                                             "role"):
        verify_statement_file(path, keyless_trust(root_file, reviewer_only), Role.BUILDER)
    # Another rule for someone else holding the role lends it nothing.
    someone_else = builder_rule(subject="https://github.com/x/y/.github/workflows/a.yml@x")
    with pytest.raises(SignatureError, match="lacks the builder role"):
        verify_statement_file(path, keyless_trust(root_file, reviewer_only, someone_else),
                              Role.BUILDER)
    # Two rules for the same identity: the one holding the role is the one that counts.
    builder = builder_rule(name="ci-builder")
    verified = verify_statement_file(path, keyless_trust(root_file, reviewer_only, builder),
                                     Role.BUILDER)
    assert (verified.signer.name, verified.signer.roles) == ("ci-builder",
                                                             frozenset({Role.BUILDER}))


def test_payload_type_still_checked(instance, root_file, write_bundle):
    path = write_bundle(keyless(instance, payload_type="text/plain"))
    with pytest.raises(BundleError, match="payload type 'text/plain'"):
        verify_statement_file(path, keyless_trust(root_file), Role.BUILDER)


def test_predicate_type_still_checked(instance, root_file, write_bundle):
    with pytest.raises(BundleError, match=r"expected 'https://model_signing/signature/v1\.0'"):
        verify_statement_file(write_bundle(keyless(instance)), keyless_trust(root_file),
                              Role.BUILDER,
                              predicate_type="https://model_signing/signature/v1.0")


def test_key_only_trust_names_the_claimed_identity(instance, write_bundle):
    key = KeySigner(generate_key(KeyType.ECDSA_P256))
    trust = Trust(keys=(TrustedKey("ci", key.public_key, frozenset(Role)),), source="ci.pub")
    with pytest.raises(SignatureError, match=f"keyless-signed with a certificate for {SUBJECT} "
                                             r"\(https://token.actions.githubusercontent.com\), "
                                             "and ci.pub trusts no Sigstore identity"):
        verify_statement_file(write_bundle(keyless(instance)), trust, Role.BUILDER)


def test_malformed_certificate_bundle(instance, root_file, write_bundle):
    document = keyless(instance)
    document["verificationMaterial"]["tlogEntries"] = []  # type: ignore[index]
    with pytest.raises(BundleError, match="not a valid Sigstore bundle: expected exactly one "
                                          "log entry"):
        verify_statement_file(write_bundle(document), keyless_trust(root_file), Role.BUILDER)


def test_mixed_key_and_keyless_in_one_trust_and_one_jsonl(instance, root_file, tmp_path):
    key = KeySigner(generate_key(KeyType.ECDSA_P256))
    trust = Trust(keys=(TrustedKey("reviewer-key", key.public_key,
                                   frozenset({Role.REVIEWER})),),
                  source="mixed", sigstore=(builder_rule(name="ci"),), trusted_root=root_file,
                  offline=True)
    keyless_line = json.dumps(keyless(instance))
    key_line = json.dumps(json.loads(sign_statement(statement(digest="c" * 64), key)))
    path = tmp_path / "mixed.intoto.jsonl"
    path.write_text(f"{key_line}\n{keyless_line}\n")
    assert [hint is None for _, hint in read_envelopes(path.read_bytes(), what="x")] == [
        False, True]
    assert verify_statement_file(path, trust, Role.BUILDER).signer.name == "ci"
    assert verify_statement_file(path, trust, Role.REVIEWER).signer.name == "reviewer-key"
    with pytest.raises(SignatureError):
        verify_statement_file(path, trust, Role.EVALUATOR)


def test_client_trust_config_as_trusted_root(instance, tmp_path, write_bundle):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(instance.client_trust_config()))
    assert verify_statement_file(write_bundle(keyless(instance)), keyless_trust(config),
                                 Role.BUILDER)


def test_public_good_root_offline_uses_the_shipped_root(instance, write_bundle):
    # No trusted_root: the public-good instance, from the root sigstore-python ships;
    # sockets are closed, so this proves it needs no network. Our CA is not in it.
    with pytest.raises(SignatureError, match="does not chain to a Fulcio CA of the Sigstore "
                                             "public-good trusted root"):
        verify_statement_file(write_bundle(keyless(instance)), keyless_trust(None, offline=True),
                              Role.BUILDER)


def test_offline_from_the_environment(instance, write_bundle, monkeypatch):
    monkeypatch.setenv("MLPROV_OFFLINE", "1")
    trust = keyless_trust(None, offline=None)
    assert trust.is_offline
    with pytest.raises(SignatureError, match="public-good trusted root"):
        verify_statement_file(write_bundle(keyless(instance)), trust, Role.BUILDER)


def test_public_good_root_online_without_network_is_a_clear_error(instance, write_bundle):
    from mlprov._signing import verify_keyless

    verify_keyless._public_good_verifier.cache_clear()
    with pytest.raises(TrustError, match="cannot load the Sigstore public-good trusted root") \
            as caught:
        verify_statement_file(write_bundle(keyless(instance)), keyless_trust(None, offline=False),
                              Role.BUILDER)
    assert "--offline" in caught.value.diagnostics()


def test_payload_is_the_exact_signed_bytes_not_reserialised(instance, root_file, write_bundle):
    # Non-canonical JSON (spaces, key order) verifies and is kept byte for byte.
    payload = json.dumps({"predicate": {"k": 1}, "predicateType": "x",
                          "subject": [{"digest": {"sha256": "a" * 64}, "name": "m"}],
                          "_type": "https://in-toto.io/Statement/v1"}, indent=1).encode()
    verified = verify_statement_file(write_bundle(keyless(instance, payload=payload)),
                                     keyless_trust(root_file), Role.BUILDER)
    assert verified.payload == payload
    assert verified.statement.predicate_type == "x"
    assert PAYLOAD_TYPE_IN_TOTO == "application/vnd.in-toto+json"
