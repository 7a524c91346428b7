"""The trust file (mlprov.trust)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlprov.errors import KeyMaterialError, TrustError
from mlprov.signing import KeyType, generate_key, load_public_key, write_key_pair
from mlprov.trust import Role, Trust, load_trust


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    for name, key_type in (("ci", KeyType.ECDSA_P256), ("alice", KeyType.ED25519)):
        write_key_pair(generate_key(key_type), folder / name, None)
    return folder


def write_trust(tmp_path: Path, text: str, name: str = "trust.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """\
version: 1
keys:
  - name: ci
    public_key: keys/ci.pub
    roles: [builder]
  - name: alice
    public_key: keys/alice.pub
    roles: [reviewer, evaluator]
"""


def test_load_trust(tmp_path: Path, keys: Path):
    trust = load_trust(write_trust(tmp_path, GOOD))
    assert [k.name for k in trust.keys] == ["ci", "alice"]
    assert trust.keys[0].roles == {Role.BUILDER}
    assert trust.keys[1].roles == {Role.REVIEWER, Role.EVALUATOR}
    assert trust.keys[0].key.keyid == load_public_key(keys / "ci.pub").keyid
    assert trust.keys[1].key.algorithm == "ed25519"
    assert trust.source == str(tmp_path / "trust.yaml")


def test_key_paths_are_relative_to_the_trust_file(tmp_path: Path, keys: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert len(load_trust(write_trust(tmp_path, GOOD)).keys) == 2
    nested = tmp_path / "conf"
    nested.mkdir()
    text = GOOD.replace("keys/", "../keys/")
    assert len(load_trust(write_trust(nested, text)).keys) == 2


def test_json_trust_file(tmp_path: Path, keys: Path):
    document = {"version": 1, "keys": [{"name": "reg", "public_key": "keys/ci.pub",
                                        "roles": ["registry"]}]}
    trust = load_trust(write_trust(tmp_path, json.dumps(document), "trust.json"))
    assert trust.keys[0].roles == {Role.REGISTRY}


def test_all_four_roles(tmp_path: Path, keys: Path):
    text = GOOD.replace("[builder]", "[builder, evaluator, reviewer, registry]")
    assert load_trust(write_trust(tmp_path, text)).keys[0].roles == set(Role)


def one_line(exc: pytest.ExceptionInfo[Exception]) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(("text", "pattern"), [
    (GOOD.replace("[builder]", "[builder, admin]"), r"keys\.0\.roles\.1"),
    (GOOD.replace("[builder]", "[]"), r"keys\.0\.roles"),
    (GOOD.replace("    roles: [builder]\n", "    roles: [builder]\n    comment: hi\n"),
     r"keys\.0\.comment"),
    ("version: 1\nowner: me\nkeys: []\n", "owner"),
    ("version: 2\n" + GOOD.split("\n", 1)[1], "version"),
    (GOOD.replace("  - name: ci\n", "  - name: ''\n"), r"keys\.0\.name"),
    (GOOD.replace("    public_key: keys/ci.pub\n", ""), r"keys\.0\.public_key"),
    ("version: 1\nkeys: []\n", "trusts no signer"),
    ("version: 1\n", "trusts no signer"),
    ("", "document"),
    ("- just\n- a list\n", "document"),
    (GOOD.replace("name: alice", "name: ci"), "'ci'"),
])
def test_bad_trust_files(tmp_path: Path, keys: Path, text: str, pattern: str):
    with pytest.raises(TrustError, match=pattern) as info:
        load_trust(write_trust(tmp_path, text))
    assert str(tmp_path / "trust.yaml") in one_line(info)


@pytest.mark.parametrize("text", [
    "version: 1\nkeys: [\n",
    "version: 1\nkeys:\n  - name: ci\n   public_key: x\n",
    "key: value\n\tbad: tab\n",
    "{unclosed: [1, 2}\n",
])
def test_malformed_yaml(tmp_path: Path, text: str):
    with pytest.raises(TrustError, match="not valid YAML") as info:
        load_trust(write_trust(tmp_path, text))
    one_line(info)


def test_missing_key_file(tmp_path: Path, keys: Path):
    with pytest.raises(KeyMaterialError, match=r"cannot read public key .*nope\.pub") as info:
        load_trust(write_trust(tmp_path, GOOD.replace("keys/ci.pub", "keys/nope.pub")))
    one_line(info)


def test_private_key_named_as_public_key(tmp_path: Path, keys: Path):
    with pytest.raises(KeyMaterialError, match="private key") as info:
        load_trust(write_trust(tmp_path, GOOD.replace("keys/ci.pub", "keys/ci")))
    one_line(info)


def test_missing_or_unreadable_trust_file(tmp_path: Path):
    with pytest.raises(TrustError, match="cannot read trust file") as info:
        load_trust(tmp_path / "absent.yaml")
    one_line(info)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(TrustError, match="not UTF-8"):
        load_trust(binary)


def test_single_key_holds_every_role(keys: Path):
    trust = Trust.single_key(keys / "ci.pub")
    [only] = trust.keys
    assert only.roles == set(Role) == {Role.BUILDER, Role.EVALUATOR, Role.REVIEWER,
                                       Role.REGISTRY}
    assert only.key.keyid == load_public_key(keys / "ci.pub").keyid
    assert trust.source == str(keys / "ci.pub")


def test_single_key_refuses_a_private_key(keys: Path):
    with pytest.raises(KeyMaterialError):
        Trust.single_key(keys / "ci")


def test_candidates_put_the_hinted_key_first_but_keep_all(tmp_path: Path, keys: Path):
    trust = load_trust(write_trust(tmp_path, GOOD))
    alice = trust.keys[1]
    assert [k.name for k in trust.candidates(alice.key.keyid)] == ["alice", "ci"]
    assert [k.name for k in trust.candidates(None)] == ["ci", "alice"]
    assert [k.name for k in trust.candidates("f" * 64)] == ["ci", "alice"]


def test_duplicate_yaml_keys_rejected(tmp_path: Path, keys: Path):
    # PyYAML would keep the last "roles" silently; a trust file must not be ambiguous.
    text = GOOD.replace("    roles: [builder]\n", "    roles: [builder]\n    roles: [registry]\n")
    with pytest.raises(TrustError, match="duplicate key 'roles'") as info:
        load_trust(write_trust(tmp_path, text))
    one_line(info)
