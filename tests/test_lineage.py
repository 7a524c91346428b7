"""Verified lineage (issue 4): parents in the provenance, and the walk to every root.

Every model here is a tiny real model trained by the test (tests/lineage_models.py):
a base, a fine-tune continuing from its weights, a student distilled from the
fine-tune's soft labels, and merges averaging weights.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import mlprov
from mlprov.bundles import sign_statement
from mlprov.errors import InputError, LineageError
from mlprov.evidence import INDEX_FILE, OMS_FILE, PROVENANCE_FILE
from mlprov.lineage import (
    DEFAULT_MAX_DEPTH,
    LINEAGE_SCHEMA,
    Lineage,
    LineageFormat,
    NodeStatus,
    ParentRecord,
    ParentRole,
    parse_parent_spec,
    read_parents,
    render,
    verify_evidence,
    verify_lineage,
    walk_lineage,
)
from mlprov.provenance import read_provenance
from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair
from mlprov.statements import Statement, parse_statement
from mlprov.trust import Trust, load_trust
from tests import lineage_models as lm
from tests.conftest import COMMIT, KeyPair

EXTERNAL_ROOT = "ab" * 32


def payload(bundle: Path) -> dict[str, Any]:
    document = json.loads(bundle.read_bytes())
    result: dict[str, Any] = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Zoo:
    """A directory of models and their evidence, all attested with one trusted key."""

    root: Path
    key: KeyPair
    trust: Trust

    def model(self, name: str) -> Path:
        return self.root / name / "model"

    def evidence(self, name: str) -> Path:
        return self.root / name / "evidence"

    def attest(self, name: str, *, parents: tuple[str, ...] = (), key: KeyPair | None = None,
               out: Path | None = None, model: Path | None = None, **kwargs: Any) -> Path:
        out = out or self.evidence(name)
        mlprov.attest(model or self.model(name), name=name, key=(key or self.key).private,
                      out=out, commit=COMMIT, parents=list(parents), **kwargs)
        return out

    def verify(self, name: str, **kwargs: Any) -> Lineage:
        kwargs.setdefault("search", [self.root])
        return verify_lineage(self.evidence(name), trust=self.trust, **kwargs)


def _make_zoo(where: Path) -> Zoo:
    (where / "keys").mkdir(exist_ok=True)
    private = where / "keys" / "ci.key"
    if not private.exists():
        write_key_pair(generate_key(KeyType.ECDSA_P256), private, None)
    (where / "zoo").mkdir(exist_ok=True)
    trust_file = where / "trust.yaml"
    trust_file.write_text("keys: [{name: ci, public_key: keys/ci.key.pub, roles: [builder]}]\n")
    return Zoo(where / "zoo", KeyPair(private, where / "keys" / "ci.key.pub"),
               load_trust(trust_file))


@pytest.fixture
def zoo(tmp_path: Path) -> Zoo:
    return _make_zoo(tmp_path)


@pytest.fixture(scope="module")
def _pristine_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("chain")
    zoo = _make_zoo(where)
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    zoo.attest("ft", parents=(f"fine-tune-of={zoo.evidence('base')}",))
    lm.distill(zoo.model("ft"), zoo.model("student"))
    zoo.attest("student", parents=(f"teacher={zoo.evidence('ft')}",))
    return where


@pytest.fixture
def chain(_pristine_chain: Path, tmp_path: Path) -> Zoo:
    """base -> fine-tune (fine-tune-of) -> student (teacher): three generations.

    Built once per module, copied for each test (tests tamper with it).
    """
    shutil.copytree(_pristine_chain, tmp_path, dirs_exist_ok=True)
    return _make_zoo(tmp_path)


def failure_for(lineage: Lineage, child: str, parent: str, role: str) -> str:
    """The failure message naming the edge child -> parent (role)."""
    assert not lineage.verified
    for failure in lineage.failures:
        head = failure.split(": ", 1)[0]
        if head.startswith(f"{child}@sha256:") and f" -> {parent}@sha256:" in head \
                and head.endswith(f"({role})"):
            return failure
    raise AssertionError(f"no failure names {child} -> {parent} ({role}): {lineage.failures}")


# --- what attest records ------------------------------------------------------


def test_provenance_records_each_parent_with_its_digests(chain: Zoo):
    base_ev = chain.evidence("base")
    statement = payload(chain.evidence("ft") / PROVENANCE_FILE)
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    [parent] = [d for d in deps if d["name"].startswith("parent:")]
    base_index = json.loads((base_ev / INDEX_FILE).read_text())
    assert parent == {
        "name": "parent:fine-tune-of:base",
        "digest": {"sha256": base_index["rootDigest"].removeprefix("sha256:")},
        "annotations": {
            "role": "fine-tune-of", "name": "base", "identity": base_index["identity"],
            "provenanceBundle": f"sha256:{sha(base_ev / PROVENANCE_FILE)}",
            "manifestBundle": f"sha256:{sha(base_ev / OMS_FILE)}",
        },
    }
    # The library reads back exactly what was written.
    parsed = parse_statement(json.dumps(statement).encode(), what="p")
    assert read_parents(parsed, what="p") == [ParentRecord(
        role=ParentRole.FINE_TUNE_OF, name="base",
        root_digest=base_index["rootDigest"][7:], identity=base_index["identity"],
        provenance_bundle=sha(base_ev / PROVENANCE_FILE),
        manifest_bundle=sha(base_ev / OMS_FILE))]


def test_parents_are_not_part_of_the_identity(chain: Zoo, tmp_path: Path):
    alone = mlprov.attest(chain.model("ft"), name="ft", key=chain.key.private,
                          out=tmp_path / "alone", commit=COMMIT)
    index = json.loads((chain.evidence("ft") / INDEX_FILE).read_text())
    assert index["identity"] == alone.identity
    # ... and a verifier of the build type that ignores lineage still reads it.
    prov = read_provenance(Statement.model_validate(
        payload(chain.evidence("ft") / PROVENANCE_FILE)), what="p")
    assert prov.identity == alone.identity


def test_external_root_is_recorded_and_reported_never_verified(zoo: Zoo):
    lm.train_base(zoo.model("adapter"))
    result = mlprov.attest(zoo.model("adapter"), name="adapter", key=zoo.key.private,
                           out=zoo.evidence("adapter"), commit=COMMIT,
                           parents=[f"adapter-of=external:hf.co/org/llm@sha256:{EXTERNAL_ROOT}"])
    [record] = result.parents
    assert record.external and record.root_digest == EXTERNAL_ROOT
    deps = payload(zoo.evidence("adapter") / PROVENANCE_FILE)["predicate"][
        "buildDefinition"]["resolvedDependencies"]
    assert deps[-1] == {"name": "parent:adapter-of:hf.co/org/llm",
                        "digest": {"sha256": EXTERNAL_ROOT},
                        "annotations": {"role": "adapter-of", "name": "hf.co/org/llm",
                                        "external": True}}
    lineage = zoo.verify("adapter")
    assert lineage.verified  # an external root is allowed, and reported as such
    [external] = lineage.externals
    assert external.status is NodeStatus.EXTERNAL
    assert external.status is not NodeStatus.VERIFIED
    assert external.root_digest == f"sha256:{EXTERNAL_ROOT}"
    assert [n.id for n in lineage.roots] == [external.id]
    assert "external" in lineage.summary()


@pytest.mark.parametrize("spec, message", [
    ("base", "ROLE=EVIDENCE_DIR"),
    ("parent=dir", "unknown parent role 'parent'"),
    ("base=", "ROLE=EVIDENCE_DIR"),
    ("base=external:llm", "external:NAME@sha256"),
    ("base=external:@sha256:" + "a" * 64, "external:NAME@sha256"),
    ("base=external:llm@sha256:abc", "external:NAME@sha256"),
    ("base=external:l\x1bm@sha256:" + "a" * 64, "control characters"),
])
def test_parse_parent_spec_rejects_malformed_values(spec: str, message: str):
    with pytest.raises(InputError, match=message):
        parse_parent_spec(spec)


def test_parse_parent_spec_accepts_every_role(tmp_path: Path):
    for role in ParentRole:
        assert parse_parent_spec(f"{role}={tmp_path}").role is role
    spec = parse_parent_spec(f"merge-of=external:org/m@sha256:{'AB' * 32}")
    assert (spec.external_name, spec.external_root) == ("org/m", "ab" * 32)


def test_attest_refuses_a_parent_signed_by_an_unknown_key(zoo: Zoo, make_key):
    rogue = make_key("rogue")
    lm.train_base(zoo.model("base"))
    zoo.attest("base", key=rogue)
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    # Default: the parent must carry the signature of the key signing the child.
    with pytest.raises(LineageError, match="not signed by any key trusted by the signing key"):
        zoo.attest("ft", parents=(f"base={zoo.evidence('base')}",))
    assert not zoo.evidence("ft").exists()
    zoo.attest("ft", parents=(f"base={zoo.evidence('base')}",), parent_key=rogue.public)


def test_attest_refuses_tampered_parent_evidence(zoo: Zoo):
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    index = zoo.evidence("base") / INDEX_FILE
    index.write_text(index.read_text().replace('"name": "base"', '"name": "other"'))
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    with pytest.raises(LineageError, match="disagrees with the signed statements"):
        zoo.attest("ft", parents=(f"base={zoo.evidence('base')}",))


def test_attest_refuses_parent_evidence_changed_after_indexing(zoo: Zoo):
    """The SBOM bundle still verifies after a whitespace rewrite; only the index check sees it."""
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    sbom = zoo.evidence("base") / "sbom.sigstore.json"
    sbom.write_text(json.dumps(json.loads(sbom.read_bytes()), indent=4) + "\n")
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    with pytest.raises(LineageError, match=r"sbom\.sigstore\.json changed since it was indexed"):
        zoo.attest("ft", parents=(f"base={zoo.evidence('base')}",))


def test_attest_refuses_a_model_as_its_own_parent_and_duplicates(zoo: Zoo):
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    with pytest.raises(InputError, match="its own base parent"):
        zoo.attest("again", model=zoo.model("base"), parents=(f"base={zoo.evidence('base')}",))
    with pytest.raises(InputError, match="given twice"):
        zoo.attest("again", model=zoo.model("base"), parents=(
            f"teacher={zoo.evidence('base')}", f"teacher={zoo.evidence('base')}"))
    with pytest.raises(InputError, match="not an evidence directory"):
        zoo.attest("again", model=zoo.model("base"), parents=(f"base={zoo.root / 'nope'}",))


# --- chains and merges that verify ---------------------------------------------


def test_three_generation_chain_verifies(chain: Zoo):
    lineage = chain.verify("student")
    assert lineage.verified, lineage.failures
    assert lineage.status == "verified"
    assert [(n.name, n.status, n.depth) for n in lineage.nodes] == [
        ("student", NodeStatus.VERIFIED, 0), ("ft", NodeStatus.VERIFIED, 1),
        ("base", NodeStatus.VERIFIED, 2)]
    assert [(lineage.node(e.child).name, lineage.node(e.parent).name, e.role, e.ok)
            for e in lineage.edges] == [("student", "ft", ParentRole.TEACHER, True),
                                        ("ft", "base", ParentRole.FINE_TUNE_OF, True)]
    assert [n.name for n in lineage.roots] == ["base"]
    assert all(n.signer == "ci" for n in lineage.nodes)
    assert lineage.node(lineage.start).provenance_bundle == \
        f"sha256:{sha(chain.evidence('student') / PROVENANCE_FILE)}"
    document = lineage.to_json_dict()
    assert document["schema"] == LINEAGE_SCHEMA and document["verified"] is True
    assert json.loads(json.dumps(document)) == document


def test_the_models_really_learn(chain: Zoo):
    """The fixtures are real models: each predicts its held-out data well."""
    xs, ys = lm.make_data(99)
    for name in ("base", "ft", "student"):
        model = lm.load(chain.model(name))
        accuracy = sum((model.predict(x) > 0.5) == bool(y) for x, y in zip(xs, ys, strict=True))
        assert accuracy / len(ys) > 0.8, name
    assert lm.load(chain.model("ft")) != lm.load(chain.model("base"))


def test_merge_of_two_parents_sharing_a_base_verifies(zoo: Zoo):
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    for name, seed in (("ft-a", 5), ("ft-b", 6)):
        lm.fine_tune(zoo.model("base"), zoo.model(name), seed=seed)
        zoo.attest(name, parents=(f"fine-tune-of={zoo.evidence('base')}",))
    lm.merge([zoo.model("ft-a"), zoo.model("ft-b")], zoo.model("merged"))
    zoo.attest("merged", parents=(f"merge-of={zoo.evidence('ft-a')}",
                                  f"merge-of={zoo.evidence('ft-b')}"))
    lineage = zoo.verify("merged")
    assert lineage.verified, lineage.failures
    assert sorted(n.name or "" for n in lineage.nodes) == ["base", "ft-a", "ft-b", "merged"]
    assert len(lineage.edges) == 4  # the shared base is one node, reached twice
    assert [n.name for n in lineage.roots] == ["base"]
    assert [e.role for e in lineage.parents(lineage.start)] == [ParentRole.MERGE_OF] * 2
    tree = render(lineage, LineageFormat.TREE)
    assert "merge-of: ft-a@sha256:" in tree and "merge-of: ft-b@sha256:" in tree
    assert tree.count("fine-tune-of: base@sha256:") == 2


def test_verdict_carries_the_lineage(chain: Zoo):
    verdict = mlprov.verify(chain.model("student"), evidence=chain.evidence("student"),
                            trust=chain.trust, search=[chain.root])
    assert verdict.verified, verdict.failures()
    assert verdict.lineage is not None and verdict.lineage.verified
    [check] = [c for c in verdict.checks if c.name == "lineage"]
    assert check.ok is True and "3 model(s)" in check.detail
    assert verdict.to_json_dict()["lineage"]["status"] == "verified"


def test_verify_of_a_root_model_adds_no_lineage_check(chain: Zoo):
    verdict = mlprov.verify(chain.model("base"), evidence=chain.evidence("base"),
                            trust=chain.trust)
    assert verdict.verified
    assert "lineage" not in [c.name for c in verdict.checks]
    assert verdict.lineage is not None and verdict.lineage.verified
    assert len(verdict.lineage.nodes) == 1


def test_verify_says_so_when_parents_are_not_found(chain: Zoo, tmp_path: Path):
    moved = tmp_path / "elsewhere"
    shutil.move(chain.root / "student", moved)
    verdict = mlprov.verify(moved / "model", evidence=moved / "evidence", trust=chain.trust)
    assert verdict.verified  # lineage not required: the model itself verified
    assert verdict.lineage is not None and verdict.lineage.status == "incomplete"
    assert "parent evidence not found" in verdict.lineage.missing[0]
    required = mlprov.verify(moved / "model", evidence=moved / "evidence", trust=chain.trust,
                             require_lineage=True)
    assert not required.verified
    [failure] = required.failures()
    assert failure.name == "lineage"
    assert failure.detail.startswith("student@sha256:") and "-> ft@sha256:" in failure.detail
    found = mlprov.verify(moved / "model", evidence=moved / "evidence", trust=chain.trust,
                          search=[chain.root], require_lineage=True)
    assert found.verified, found.failures()


def test_verify_fails_when_a_found_parent_does_not_verify(chain: Zoo, make_key):
    rogue = make_key("rogue")
    chain.attest("base", key=rogue, overwrite=True)
    verdict = mlprov.verify(chain.model("student"), evidence=chain.evidence("student"),
                            trust=chain.trust, search=[chain.root])
    assert not verdict.verified
    [failure] = verdict.failures()
    assert failure.name == "lineage"
    assert "ft@sha256:" in failure.detail and "(fine-tune-of)" in failure.detail


# --- attacks: each fails naming the edge ---------------------------------------


def test_parent_files_changed_after_the_child_was_attested(chain: Zoo):
    weights = chain.model("base") / "model.bin"
    data = bytearray(weights.read_bytes())
    data[0] ^= 0x01
    weights.write_bytes(bytes(data))
    shallow = chain.verify("student")
    assert shallow.verified  # the evidence alone is intact; files are not re-hashed
    assert all(n.files is None for n in shallow.nodes)
    deep = chain.verify("student", deep=True)
    failure = failure_for(deep, "ft", "base", "fine-tune-of")
    assert "differ from the signed manifest: changed: model.bin" in failure
    assert str(chain.model("base")) in failure
    base = next(n for n in deep.nodes if n.name == "base")
    assert base.status is NodeStatus.FAILED and base.files is not None
    assert base.files.status == "failed"
    ft = next(n for n in deep.nodes if n.name == "ft")
    assert ft.files is not None and ft.files.status == "verified"
    assert ft.files.path == str(chain.model("ft"))


def test_deep_reports_absent_files_without_failing(chain: Zoo):
    shutil.rmtree(chain.model("base"))
    lineage = chain.verify("student", deep=True)
    assert lineage.verified, lineage.failures
    base = next(n for n in lineage.nodes if n.name == "base")
    assert base.files is not None and base.files.status == "absent"


def test_deep_finds_a_single_file_model(zoo: Zoo):
    lm.train_base(zoo.model("base"))
    single = zoo.root / "base" / "weights.bin"
    shutil.copy(zoo.model("base") / "model.bin", single)
    zoo.attest("base", model=single)
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    zoo.attest("ft", parents=(f"base={zoo.evidence('base')}",))
    lineage = zoo.verify("ft", deep=True)
    assert lineage.verified, lineage.failures
    base = next(n for n in lineage.nodes if n.name == "base")
    assert base.files is not None and base.files.path == str(single)
    single.write_bytes(b"swapped")
    failed = zoo.verify("ft", deep=True)
    assert "changed: weights.bin" in failure_for(failed, "ft", "base", "base")


def test_parent_evidence_replaced_by_other_evidence_signed_with_a_trusted_key(chain: Zoo):
    # The same model, re-attested with the trusted key: valid evidence, but not the
    # evidence the fine-tune recorded (another provenance bundle).
    chain.attest("base", overwrite=True, invocation_id=str(uuid.uuid4()))
    assert verify_evidence(chain.evidence("base"), chain.trust).name == "base"
    lineage = chain.verify("student")
    failure = failure_for(lineage, "ft", "base", "fine-tune-of")
    assert "provenance bundle is sha256:" in failure
    assert "replaced or re-signed" in failure
    assert lineage.status == "failed"


def test_parent_manifest_bundle_replaced(chain: Zoo, tmp_path: Path):
    # A model.sig of the same files signed again (another signature, same manifest):
    # the provenance is the recorded one, the signed manifest is not.
    other = tmp_path / "other-ev"
    mlprov.attest(chain.model("base"), name="base", key=chain.key.private, out=other,
                  commit=COMMIT)
    base_ev = chain.evidence("base")
    shutil.copy(other / OMS_FILE, base_ev / OMS_FILE)
    index = json.loads((base_ev / INDEX_FILE).read_text())
    index["files"][OMS_FILE] = f"sha256:{sha(base_ev / OMS_FILE)}"
    (base_ev / INDEX_FILE).write_text(json.dumps(index))
    failure = failure_for(chain.verify("student"), "ft", "base", "fine-tune-of")
    assert f"the parent's {OMS_FILE} is sha256:" in failure


def test_middle_link_signed_by_an_untrusted_key(zoo: Zoo, make_key):
    rogue = make_key("rogue")
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    zoo.attest("ft", key=rogue, parents=(f"fine-tune-of={zoo.evidence('base')}",),
               parent_key=zoo.key.public)
    lm.distill(zoo.model("ft"), zoo.model("student"))
    zoo.attest("student", parents=(f"teacher={zoo.evidence('ft')}",), parent_key=rogue.public)
    lineage = zoo.verify("student")
    failure = failure_for(lineage, "student", "ft", "teacher")
    assert "not signed by any key trusted by" in failure
    ft = next(n for n in lineage.nodes if n.name == "ft")
    assert ft.status is NodeStatus.FAILED
    assert "base" not in [n.name for n in lineage.nodes]  # nothing past a failed node
    # A trusted key without the builder role does not do either.
    trust_file = zoo.root.parent / "roles.yaml"
    trust_file.write_text("keys: [{name: ci, public_key: keys/ci.key.pub, roles: [builder]},"
                          " {name: rogue, public_key: keys/rogue.key.pub, roles: [reviewer]}]\n")
    lineage = verify_lineage(zoo.evidence("student"), trust=load_trust(trust_file),
                             search=[zoo.root])
    assert "rogue, which lacks the builder role" in failure_for(
        lineage, "student", "ft", "teacher")


def test_cycle_made_with_real_attestations(zoo: Zoo):
    # a (first evidence) <- b <- a again (second evidence, same files): a model that is
    # its own ancestor, made only with the CLI's library and the trusted key.
    lm.train_base(zoo.model("a"))
    zoo.attest("a", out=zoo.root / "a" / "first")
    lm.fine_tune(zoo.model("a"), zoo.model("b"))
    zoo.attest("b", parents=(f"base={zoo.root / 'a' / 'first'}",))
    zoo.attest("a", parents=(f"fine-tune-of={zoo.evidence('b')}",))
    lineage = zoo.verify("a")
    failure = failure_for(lineage, "b", "a", "base")
    assert "cycle: model sha256:" in failure and "is its own ancestor" in failure
    assert lineage.status == "failed"
    assert not [e for e in lineage.edges if e.role is ParentRole.BASE and e.ok]


def test_hand_made_cycle_signed_by_a_trusted_key(zoo: Zoo):
    # A provenance crafted by hand, signed with the trusted key, naming as its parent
    # another evidence of the very same model.
    lm.train_base(zoo.model("a"))
    first = zoo.attest("a", out=zoo.root / "a" / "first")
    real = verify_evidence(first, zoo.trust)
    statement = Statement.model_validate(payload(first / PROVENANCE_FILE))
    predicate = json.loads(json.dumps(statement.predicate))
    predicate["buildDefinition"]["resolvedDependencies"].append(
        real.parent_record(ParentRole.BASE).descriptor().to_json_dict())
    crafted = Statement(subject=statement.subject, predicate_type=statement.predicate_type,
                        predicate=predicate)
    out = zoo.root / "a" / "crafted"
    out.mkdir()
    shutil.copy(first / OMS_FILE, out / OMS_FILE)
    (out / PROVENANCE_FILE).write_bytes(
        sign_statement(crafted, load_private_key(zoo.key.private)))
    index = json.loads((first / INDEX_FILE).read_text())
    index["files"] = {OMS_FILE: f"sha256:{sha(out / OMS_FILE)}",
                      PROVENANCE_FILE: f"sha256:{sha(out / PROVENANCE_FILE)}"}
    (out / INDEX_FILE).write_text(json.dumps(index))
    lineage = verify_lineage(out, trust=zoo.trust, search=[zoo.root])
    failure = failure_for(lineage, "a", "a", "base")
    assert "cycle" in failure


def test_missing_parent(chain: Zoo):
    shutil.rmtree(chain.evidence("base"))
    lineage = chain.verify("student")
    failure = failure_for(lineage, "ft", "base", "fine-tune-of")
    assert "parent evidence not found under" in failure
    assert lineage.status == "incomplete" and not lineage.verified
    base = next(n for n in lineage.nodes if n.name == "base")
    assert base.status is NodeStatus.MISSING
    assert lineage.missing == lineage.failures


def test_parent_found_by_digest_under_another_name_never_by_name(chain: Zoo, tmp_path: Path):
    hidden = tmp_path / "archive" / "2024" / "run-7f3a"
    hidden.parent.mkdir(parents=True)
    shutil.move(chain.evidence("base"), hidden)
    # A decoy where the base's evidence used to be: a real, trusted-signed model named
    # "base", with other files (another digest).
    lm.train_base(chain.model("decoy"), seed=42)
    chain.attest("base", model=chain.model("decoy"))
    assert chain.evidence("base").is_dir()
    lineage = chain.verify("student", search=[chain.root, tmp_path / "archive"])
    assert lineage.verified, lineage.failures
    base = next(n for n in lineage.nodes if n.name == "base")
    assert base.evidence == str(hidden)
    assert str(chain.evidence("base")) not in [n.evidence for n in lineage.nodes]
    # Without the archive, the decoy (right name, wrong digest) is never used.
    lineage = chain.verify("student")
    assert "parent evidence not found" in failure_for(lineage, "ft", "base", "fine-tune-of")


def test_depth_over_the_bound(chain: Zoo):
    lm.fine_tune(chain.model("student"), chain.model("gen4"), seed=8)
    chain.attest("gen4", parents=(f"fine-tune-of={chain.evidence('student')}",))
    assert chain.verify("gen4").verified
    lineage = chain.verify("gen4", max_depth=2)
    failure = failure_for(lineage, "ft", "base", "fine-tune-of")
    assert "depth 3 is over the bound of 2" in failure
    assert chain.verify("gen4", max_depth=3).verified
    with pytest.raises(InputError):
        chain.verify("gen4", max_depth=-1)
    assert DEFAULT_MAX_DEPTH == 64


def test_the_starting_evidence_must_verify(chain: Zoo, make_key):
    other = load_trust_for(make_key("other"), chain.root.parent)
    lineage = verify_lineage(chain.evidence("student"), trust=other, search=[chain.root])
    assert not lineage.verified
    assert lineage.failures[0].startswith(str(chain.evidence("student")))
    assert lineage.node(lineage.start).status is NodeStatus.FAILED


def load_trust_for(key: KeyPair, where: Path) -> Trust:
    path = where / f"trust-{key.public.stem}.yaml"
    path.write_text(f"keys: [{{name: x, public_key: {key.public}, roles: [builder]}}]\n")
    return load_trust(path)


def test_malformed_parent_records_fail_the_node(zoo: Zoo):
    lm.train_base(zoo.model("a"))
    first = zoo.attest("a")
    statement = Statement.model_validate(payload(first / PROVENANCE_FILE))
    bad = [
        {"name": "parent:base:x", "digest": {"sha256": "a" * 64},
         "annotations": {"role": "base", "name": "x"}},  # no identity, not external
        {"name": "parent:cousin:x", "digest": {"sha256": "a" * 64},
         "annotations": {"role": "cousin", "name": "x", "external": True}},
        {"name": "parent:base:y", "digest": {"sha256": "a" * 64},
         "annotations": {"role": "base", "name": "x", "external": True}},
    ]
    for dep in bad:
        predicate = json.loads(json.dumps(statement.predicate))
        predicate["buildDefinition"]["resolvedDependencies"].append(dep)
        crafted = Statement(subject=statement.subject, predicate_type=statement.predicate_type,
                            predicate=predicate)
        with pytest.raises(mlprov.errors.BundleError):
            read_parents(crafted, what="p")


# --- show and render ------------------------------------------------------------


def test_show_without_trust_reads_but_never_verifies(chain: Zoo):
    lineage = walk_lineage(chain.evidence("student"), trust=None, search=[chain.root])
    assert lineage.status == "unverified" and not lineage.verified
    assert {n.status for n in lineage.nodes} == {NodeStatus.UNVERIFIED}
    assert all(n.signer is None for n in lineage.nodes)


def test_render_formats(chain: Zoo):
    lm.train_base(chain.model("adapter"), seed=11)
    chain.attest("adapter", parents=(f"adapter-of={chain.evidence('student')}",
                                     f"base=external:org/llm@sha256:{EXTERNAL_ROOT}"))
    shutil.rmtree(chain.evidence("base"))
    lineage = chain.verify("adapter")
    tree = render(lineage, LineageFormat.TREE).splitlines()
    assert tree[0].startswith("adapter@sha256:") and tree[0].endswith("[verified]")
    assert tree[1].startswith("|-- adapter-of: student@sha256:")
    assert "`-- teacher: ft@sha256:" in tree[2]
    assert "fine-tune-of: base@sha256:" in tree[3] and "[missing]" in tree[3]
    assert tree[4].startswith("`-- base: org/llm@sha256:") and "[external]" in tree[4]
    assert tree[-1] == "lineage: incomplete"
    document = json.loads(render(lineage, LineageFormat.JSON))
    assert document["status"] == "incomplete"
    assert {n["status"] for n in document["nodes"]} == {"verified", "missing", "external"}
    dot = render(lineage, LineageFormat.DOT)
    assert dot.startswith("digraph lineage {") and dot.endswith("}")
    assert '[label="adapter-of"]' in dot and 'label="fine-tune-of (failed)", color=red' in dot
    assert dot.count(" -> ") == len(lineage.edges)
    mermaid = render(lineage, LineageFormat.MERMAID)
    assert mermaid.startswith("flowchart BT")
    assert ':::external' in mermaid and ':::missing' in mermaid
    assert '-.->|"fine-tune-of (failed)"|' in mermaid


def test_untrusted_names_are_printed_safely(zoo: Zoo):
    lm.train_base(zoo.model("a"))
    zoo.attest("a", parents=(f'base=external:x"]:::a#b|<c>@sha256:{EXTERNAL_ROOT}',))
    lineage = zoo.verify("a")
    mermaid = render(lineage, LineageFormat.MERMAID)
    assert 'x#quot;]:::a#35;b#124;#lt;c#gt;@sha256:' in mermaid
    dot = render(lineage, LineageFormat.DOT)
    assert 'label="x\\"]:::a#b|<c>@sha256:' in dot


def test_verify_lineage_takes_a_trust_file_or_a_key(chain: Zoo):
    evidence = chain.evidence("student")
    assert verify_lineage(evidence, trust=chain.root.parent / "trust.yaml",
                          search=[chain.root]).verified
    assert mlprov.verify_lineage(evidence, key=chain.key.public, search=[chain.root]).verified
    with pytest.raises(InputError, match="nothing to trust"):
        verify_lineage(evidence)
    with pytest.raises(InputError, match="not both"):
        verify_lineage(evidence, trust=chain.trust, key=chain.key.public)
    with pytest.raises(InputError, match="not found"):
        verify_lineage(chain.root / "nope", trust=chain.trust)


def test_verdict_lineage_is_none_when_the_provenance_does_not_verify(chain: Zoo, make_key):
    other = make_key("other")
    verdict = mlprov.verify(chain.model("student"), evidence=chain.evidence("student"),
                            key=other.public, search=[chain.root])
    assert not verdict.verified
    assert verdict.lineage is None
    assert verdict.to_json_dict()["lineage"] is None
    assert "lineage" not in [c.name for c in verdict.checks]


def test_search_looks_three_levels_down_and_skips_hidden_directories(chain: Zoo,
                                                                      tmp_path: Path):
    deep = tmp_path / "store" / "a" / "b" / "c"
    deep.parent.mkdir(parents=True)
    shutil.move(chain.evidence("base"), deep)  # store/a/b/c: three levels below store
    assert chain.verify("student", search=[chain.root, tmp_path / "store"]).verified
    deeper = tmp_path / "store" / "a" / "b" / "c2" / "d"
    deeper.parent.mkdir()
    shutil.move(deep, deeper)
    assert chain.verify("student", search=[chain.root, tmp_path / "store"]).status == \
        "incomplete"
    hidden = tmp_path / "store" / ".hidden"
    shutil.move(deeper, hidden)
    assert chain.verify("student", search=[chain.root, tmp_path / "store"]).status == \
        "incomplete"
    assert chain.verify("student", search=[chain.root, hidden]).verified  # named directly
