"""Keyless signing through sigstore-python, against a local Fulcio and Rekor (stub_server.py).

sigstore-python's real client (SigningContext, Signer, its Fulcio and Rekor
clients, the SCT check) runs unmodified; only the servers are local. The OIDC
token is a real ES256 JWT from a test issuer; Fulcio checks it and the CSR.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlprov.bundles import BUNDLE_MEDIA_TYPE, verify_statement_file
from mlprov.errors import InputError, SigningError
from mlprov.signing import BundleSigner, KeySigner, make_signer
from mlprov.trust import Role
from tests.sigstore.conftest import SUBJECT, builder_rule, keyless_trust, statement
from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore
from tests.sigstore.stub_server import OidcIssuer, StubServer


def sign_and_read(signer: BundleSigner, tmp_path: Path, name: str, digest: str
                  ) -> tuple[Path, dict[str, object]]:
    data = signer.sign_statement(statement(digest=digest))
    path = tmp_path / name
    path.write_bytes(data)
    return path, json.loads(data)


def test_one_session_one_certificate(stub: StubServer, issuer: OidcIssuer, trust_config: Path,
                                     tmp_path: Path):
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    assert signer.description == ("Sigstore keyless: repo:o/r:ref:refs/heads/main "
                                  f"({GITHUB_ISSUER})")
    first, one = sign_and_read(signer, tmp_path, "a.sigstore.json", "a" * 64)
    second, two = sign_and_read(signer, tmp_path, "b.sigstore.json", "b" * 64)
    assert (stub.cert_requests, stub.log_requests) == (1, 2)
    material = [d["verificationMaterial"] for d in (one, two)]
    assert material[0]["certificate"] == material[1]["certificate"]  # type: ignore[index]
    assert one["mediaType"] == BUNDLE_MEDIA_TYPE
    assert [e["kindVersion"] for e in material[0]["tlogEntries"]] == [  # type: ignore[index]
        {"kind": "dsse", "version": "0.0.1"}]
    # The ClientTrustConfig doubles as the verifier's trusted root.
    trust = keyless_trust(trust_config)
    for path, digest in ((first, "a" * 64), (second, "b" * 64)):
        verified = verify_statement_file(path, trust, Role.BUILDER)
        assert verified.statement.subject_sha256() == {digest}
        assert verified.signer.identity is not None
        assert verified.signer.identity.subject == SUBJECT
        assert verified.signer.identity.github is not None
        assert verified.signer.identity.github["runUri"].endswith("/runs/42/attempts/1")
    assert [verify_statement_file(p, trust, Role.BUILDER).signer.identity.log_index  # type: ignore[union-attr]
            for p in (first, second)] == [0, 1]


def test_a_new_session_when_the_certificate_is_about_to_expire(stub, issuer, trust_config,
                                                               tmp_path):
    import datetime as dt

    stub.cert_lifetime = dt.timedelta(seconds=20)  # inside the 30 s renewal margin
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    signer.sign_statement(statement())
    signer.sign_statement(statement())
    assert stub.cert_requests == 2


def test_ambient_github_actions_credential(stub, trust_config, tmp_path, monkeypatch):
    for name, value in stub.github_environment().items():
        monkeypatch.setenv(name, value)
    signer = make_signer(sigstore=True, trust_config=trust_config)
    path, _ = sign_and_read(signer, tmp_path, "a.sigstore.json", "a" * 64)
    signer.sign_statement(statement())
    assert stub.token_requests == 1 and stub.cert_requests == 1
    assert verify_statement_file(path, keyless_trust(trust_config), Role.BUILDER)


def test_explicit_token_wins_over_ambient(stub, issuer, trust_config, monkeypatch):
    for name, value in stub.github_environment().items():
        monkeypatch.setenv(name, value)
    make_signer(sigstore=True, identity_token=issuer.github_token(), trust_config=trust_config)
    assert stub.token_requests == 0


def test_no_token_anywhere(trust_config):
    with pytest.raises(SigningError, match="no identity token: no CI credential was "
                                           "detected") as caught:
        make_signer(sigstore=True, trust_config=trust_config)
    assert "id-token: write" in caught.value.diagnostics()


def test_github_job_without_id_token_permission(trust_config, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with pytest.raises(SigningError, match="cannot get the CI job's identity token: GitHub: "
                                           "missing or insufficient OIDC token permissions"):
        make_signer(sigstore=True, trust_config=trust_config)


@pytest.mark.parametrize(("make_token", "message"), [
    (lambda issuer: "not-a-jwt", "malformed or missing claims"),
    (lambda issuer: issuer.github_token(lifetime=-60), "malformed or missing claims|validity"),
    (lambda issuer: issuer.github_token(audience="someone-else"),
     "malformed or missing claims"),
])
def test_unusable_identity_token(issuer, trust_config, make_token, message):
    with pytest.raises(SigningError, match=f"identity token from --identity-token is "
                                           f"unusable: .*({message})"):
        make_signer(sigstore=True, identity_token=make_token(issuer), trust_config=trust_config)


def test_fulcio_refuses_a_token_it_cannot_verify(stub, trust_config):
    forged = OidcIssuer().github_token()  # same claims, another key
    signer = make_signer(sigstore=True, identity_token=forged, trust_config=trust_config)
    with pytest.raises(SigningError, match="gave no signing certificate: HTTP 401: invalid "
                                           "identity token"):
        signer.sign_statement(statement())


def test_fulcio_error_message_is_passed_on(stub, issuer, trust_config):
    stub.fail_fulcio = "fulcio is down for maintenance"
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    with pytest.raises(SigningError, match="HTTP 500: fulcio is down for maintenance"):
        signer.sign_statement(statement())


def test_unreachable_instance(issuer, instance: FakeSigstore, tmp_path):
    instance.url = "http://127.0.0.1:9"  # discard port: nothing listens
    config = tmp_path / "config.json"
    config.write_text(json.dumps(instance.client_trust_config()))
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=config)
    with pytest.raises(SigningError, match=r"cannot connect to http://127\.0\.0\.1:9/"):
        signer.sign_statement(statement())


@pytest.mark.parametrize(("content", "message"), [
    ("{}", "is not a usable Sigstore ClientTrustConfig"),
    ("not json", "is not a usable Sigstore ClientTrustConfig"),
])
def test_bad_trust_config(issuer, tmp_path, content, message):
    config = tmp_path / "config.json"
    config.write_text(content)
    with pytest.raises(InputError, match=message):
        make_signer(sigstore=True, identity_token=issuer.github_token(), trust_config=config)


def test_signer_choice_errors(tmp_path, trust_config):
    with pytest.raises(InputError, match="not both"):
        make_signer(key=tmp_path / "k", sigstore=True)
    with pytest.raises(InputError, match="needs Sigstore keyless signing"):
        make_signer(key=tmp_path / "k", staging=True)
    with pytest.raises(InputError, match="no signer given"):
        make_signer()
    with pytest.raises(InputError, match="--staging or --trust-config, not both"):
        make_signer(sigstore=True, staging=True, trust_config=trust_config)


def test_statement_sigstore_python_refuses(stub, issuer, trust_config):
    from mlprov.statements import Statement, sha256_descriptor

    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    odd = Statement(subject=[sha256_descriptor("m", "a" * 64).model_copy(
        update={"digest": {"gitCommit": "a" * 40}})], predicate_type="x", predicate={})
    with pytest.raises(SigningError, match="sigstore-python refuses the statement"):
        signer.sign_statement(odd)
    assert stub.cert_requests == 0  # refused before any certificate was asked for


# -- the signer interface: the same checks for every implementation --------------------------

@pytest.fixture(params=["key", "sigstore"])
def any_signer(request, stub, issuer, trust_config) -> BundleSigner:
    if request.param == "key":
        from mlprov.signing import KeyType, generate_key

        return KeySigner(generate_key(KeyType.ECDSA_P256))
    return make_signer(sigstore=True, identity_token=issuer.github_token(),
                       trust_config=trust_config)


def test_every_signer_makes_verifiable_v03_bundles(any_signer: BundleSigner, trust_config,
                                                   tmp_path):
    from mlprov.bundles import sign_statement
    from mlprov.trust import Trust, TrustedKey

    keys = ((TrustedKey("ci-key", any_signer.public_key, frozenset({Role.BUILDER})),)
            if isinstance(any_signer, KeySigner) else ())
    trust = Trust(keys=keys, source="mixed", sigstore=(builder_rule(name="ci"),),
                  trusted_root=trust_config, offline=True)
    path = tmp_path / "s.sigstore.json"
    path.write_bytes(sign_statement(statement(), any_signer))
    assert json.loads(path.read_bytes())["mediaType"] == BUNDLE_MEDIA_TYPE
    verified = verify_statement_file(path, trust, Role.BUILDER)
    assert verified.payload == statement().canonical_bytes()
    assert any_signer.description
    assert (verified.signer.identity is None) == isinstance(any_signer, KeySigner)


def test_every_signer_signs_documents_as_their_models(any_signer: BundleSigner, trust_config,
                                                      tmp_path):
    """A statement given as a document (no pydantic) is signed as its model would be."""
    from mlprov._internal.documents import descriptor, statement_document
    from mlprov.bundles import sign_document
    from mlprov.statements import Statement
    from mlprov.trust import Trust, TrustedKey

    keys = ((TrustedKey("ci-key", any_signer.public_key, frozenset({Role.BUILDER})),)
            if isinstance(any_signer, KeySigner) else ())
    trust = Trust(keys=keys, source="mixed", sigstore=(builder_rule(name="ci"),),
                  trusted_root=trust_config, offline=True)
    document = statement_document([descriptor('m"\u2028\U0001f600', "c" * 64)],
                                  "https://slsa.dev/provenance/v1", {"f": 1.0, "n": None})
    path = tmp_path / "d.sigstore.json"
    path.write_bytes(sign_document(document, any_signer))
    verified = verify_statement_file(path, trust, Role.BUILDER)
    assert verified.payload == Statement.model_validate(document).canonical_bytes()
    assert verified.parsed.document == document


def test_document_sigstore_python_refuses(stub, issuer, trust_config):
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    odd = {"subject": [{"name": "m", "digest": {"gitCommit": "a" * 40}}], "predicateType": "x"}
    with pytest.raises(SigningError, match="sigstore-python refuses the statement"):
        signer.sign_document(odd)
    assert stub.cert_requests == 0
