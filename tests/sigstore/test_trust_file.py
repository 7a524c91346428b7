"""The trust file's ``sigstore:`` identities and ``trusted_root:``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlprov.errors import TrustError
from mlprov.signing import KeyType, generate_key, write_key_pair
from mlprov.trust import IdentityRule, Role, load_trust
from tests.sigstore.conftest import SUBJECT
from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore

RULE = f"{{issuer: {GITHUB_ISSUER}, subject: '{SUBJECT}', roles: [builder]}}"


def trust_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text("version: 1\n" + body)
    return path


def test_sigstore_only_trust_file(tmp_path: Path):
    trust = load_trust(trust_file(tmp_path, f"sigstore:\n  - {RULE}\n"))
    assert trust.keys == ()
    assert trust.sigstore == (IdentityRule(issuer=GITHUB_ISSUER, subject=SUBJECT,
                                           roles=frozenset({Role.BUILDER})),)
    assert trust.trusted_root is None and trust.offline is None


def test_mixed_keys_and_identities_with_a_trusted_root(tmp_path: Path, instance: FakeSigstore):
    write_key_pair(generate_key(KeyType.ED25519), tmp_path / "alice.key", None)
    instance.write_trusted_root(tmp_path / "root.json")
    trust = load_trust(trust_file(tmp_path, f"""\
keys:
  - {{name: alice, public_key: alice.key.pub, roles: [reviewer]}}
sigstore:
  - name: ci
    issuer: {GITHUB_ISSUER}
    subject_regex: 'https://github\\.com/o/r/\\.github/workflows/train\\.yml@refs/tags/v.*'
    roles: [builder, evaluator]
trusted_root: root.json
"""), offline=True)
    assert [k.name for k in trust.keys] == ["alice"]
    [rule] = trust.sigstore
    assert rule.label == "ci" and rule.roles == {Role.BUILDER, Role.EVALUATOR}
    assert rule.matches("https://github.com/o/r/.github/workflows/train.yml@refs/tags/v1.2",
                        GITHUB_ISSUER)
    assert not rule.matches(SUBJECT, GITHUB_ISSUER)
    assert trust.trusted_root == tmp_path / "root.json" and trust.is_offline


@pytest.mark.parametrize(("body", "message"), [
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, roles: [builder]}}\n",
     "give exactly one of 'subject' or 'subject_regex'"),
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject: a, subject_regex: b, "
     "roles: [builder]}\n", "give exactly one of 'subject' or 'subject_regex'"),
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject_regex: '(', roles: [builder]}}\n",
     "subject_regex is not a valid regular expression"),
    # re.compile raises OverflowError here, not re.error: a refusal still, not a crash.
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject_regex: 'a{{99999999999999999999}}', "
     "roles: [builder]}\n", "^trust file .*: sigstore.0: subject_regex is not a valid regular "
     "expression: the repetition number is too large$"),
    ("sigstore:\n  - {subject: a, roles: [builder]}\n", "sigstore.0.issuer"),
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject: a, roles: []}}\n",
     "sigstore.0.roles"),
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject: a, roles: [admin]}}\n",
     "sigstore.0.roles.0"),
    (f"sigstore:\n  - {{issuer: {GITHUB_ISSUER}, subject: a, roles: [builder], "
     "san: x}\n", "sigstore.0.san"),
    ("trusted_root: root.json\nkeys: []\n", "trusts no signer"),
    (f"sigstore:\n  - {{name: ci, {RULE[1:]}\n  - {{name: ci, {RULE[1:]}\n",
     "names signer 'ci' twice"),
    (f"sigstore:\n  - {RULE}\ntrusted_root: missing.json\n", "missing.json not found"),
])
def test_bad_sigstore_entries(tmp_path: Path, body: str, message: str):
    with pytest.raises(TrustError, match=message):
        load_trust(trust_file(tmp_path, body))


def test_trusted_root_without_identities(tmp_path: Path):
    write_key_pair(generate_key(KeyType.ED25519), tmp_path / "ci.key", None)
    body = ("keys:\n  - {name: ci, public_key: ci.key.pub, roles: [builder]}\n"
            "trusted_root: root.json\n")
    with pytest.raises(TrustError, match="names a trusted_root but no sigstore identity"):
        load_trust(trust_file(tmp_path, body))


def test_key_and_identity_names_share_one_namespace(tmp_path: Path):
    write_key_pair(generate_key(KeyType.ED25519), tmp_path / "ci.key", None)
    body = (f"keys:\n  - {{name: ci, public_key: ci.key.pub, roles: [builder]}}\n"
            f"sigstore:\n  - {{name: ci, {RULE[1:]}\n")
    with pytest.raises(TrustError, match="names signer 'ci' twice"):
        load_trust(trust_file(tmp_path, body))


@pytest.mark.parametrize("content", ["{not json", '{"mediaType": "something/else"}',
                                     '{"mediaType": "application/vnd.dev.sigstore.trustedroot'
                                     '+json;version=0.1", "tlogs": []}'])
def test_unusable_trusted_root_is_a_trust_error(tmp_path: Path, content: str):
    (tmp_path / "root.json").write_text(content)
    with pytest.raises(TrustError, match=r"root\.json is not a (usable )?Sigstore trusted root"):
        load_trust(trust_file(tmp_path, f"sigstore:\n  - {RULE}\ntrusted_root: root.json\n"))


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("true", True), ("0", False),
                                                ("", False)])
def test_offline_environment_variable(tmp_path: Path, monkeypatch, value: str, offline: bool):
    monkeypatch.setenv("MLPROV_OFFLINE", value)
    trust = load_trust(trust_file(tmp_path, f"sigstore:\n  - {RULE}\n"))
    assert trust.is_offline is offline
    assert load_trust(trust_file(tmp_path, f"sigstore:\n  - {RULE}\n"), offline=True).is_offline
