"""Verification through an evidence source: one suite over every kind of source.

Each test builds the evidence files as a name -> bytes mapping (tampered as the
test needs), then hands them to verification as a directory on disk, as bytes
in memory, and as blobs of a registry blob store: every source must reach the
same verdict, and refuse the same hostile names and oversized reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import BundleError, InputError
from mlprov.evidence import (
    CARD_FILE,
    EVAL_FILE,
    INDEX_FILE,
    PROVENANCE_FILE,
    SBOM_FILE,
    DirectorySource,
    EvidenceSource,
    MemorySource,
    as_source,
    check_evidence_name,
)
from mlprov.inspection import inspect_evidence
from mlprov.lineage import verify_evidence, walk_lineage
from mlprov.registry._blobs import LocalBlobStore
from mlprov.registry._blobsource import BlobEvidenceSource
from mlprov.signing import KeyType, generate_key, write_key_pair
from mlprov.trust import Trust, load_trust
from tests.conftest import KeyPair
from tests.evidence_kit import attest_full

HOSTILE = ["../x", "/etc/passwd", "a\0b", "", ".", "..", ".hidden", "a/b", "a\\b", "x\n",
           "n" * 256]


@pytest.fixture(scope="module")
def attested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], Trust]:
    """One fully attested model (metrics, card, SBOM): its files, evidence bytes and trust."""
    root = tmp_path_factory.mktemp("attested")
    keys = root / "keys"
    keys.mkdir()
    pairs = [KeyPair(*write_key_pair(generate_key(KeyType.ED25519), keys / f"{n}.key", None))
             for n in ("ci", "qa")]
    model = root / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x01" * 4096)
    (model / "config.json").write_text('{"layers": 2}\n')
    full = attest_full(root, model, pairs[0], pairs[1])
    files = {p.name: p.read_bytes() for p in sorted(full.evidence.iterdir())}
    return model, files, load_trust(full.trust)


def _directory(files: dict[str, bytes], tmp_path: Path) -> EvidenceSource:
    directory = tmp_path / "evidence"
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return DirectorySource(directory)


def _memory(files: dict[str, bytes], tmp_path: Path) -> EvidenceSource:
    return MemorySource(files, label="memory")


def _blobs(files: dict[str, bytes], tmp_path: Path) -> EvidenceSource:
    store = LocalBlobStore(tmp_path / "blobs")
    digests = {name: store.put_bytes(data).digest for name, data in files.items()}
    return BlobEvidenceSource(store, digests, label="blobs")


MakeSource = Callable[[dict[str, bytes], Path], EvidenceSource]


@pytest.fixture(params=[_directory, _memory, _blobs], ids=["directory", "memory", "blobs"])
def make_source(request: pytest.FixtureRequest) -> MakeSource:
    maker: MakeSource = request.param
    return maker


def _checks(verdict: mlprov.Verdict) -> dict[str, bool | None]:
    return {c.name: c.ok for c in verdict.checks}


def _failed(verdict: mlprov.Verdict) -> dict[str, str]:
    return {c.name: c.detail for c in verdict.failures()}


def test_every_source_verifies_like_the_directory_path(attested, make_source, tmp_path: Path):
    model, files, trust = attested
    source = make_source(files, tmp_path)
    verdict = mlprov.verify(model, evidence=source, trust=trust)
    assert verdict.verified, verdict.failures()
    assert verdict.evidence == source.describe()
    assert EVAL_FILE in verdict.statements and verdict.sbom is not None
    by_path = mlprov.verify(model, evidence=_directory(files, tmp_path / "p").describe(),
                            trust=trust)
    assert _checks(verdict) == _checks(by_path)
    assert verdict.root_digest == by_path.root_digest


def test_evidence_only_and_inspect_and_lineage_read_through_a_source(attested, make_source,
                                                                      tmp_path: Path):
    _model, files, trust = attested
    source = make_source(files, tmp_path)
    verdict = mlprov.verify(None, evidence=source, trust=trust)
    assert not verdict.failures() and _checks(verdict)["files"] is None
    assert inspect_evidence(source, trust=trust).evidence_verified
    assert verify_evidence(source, trust).name == "credit-risk"
    lineage = walk_lineage(source, trust=trust)
    assert lineage.verified and lineage.nodes[0].evidence == source.describe()


def test_the_source_hands_out_the_exact_bytes(attested, make_source, tmp_path: Path):
    _model, files, _trust = attested
    source = make_source(files, tmp_path)
    assert source.names() == frozenset(files)
    for name, data in files.items():
        assert source.exists(name)
        assert source.read(name) == data
    assert not source.exists("absent.json")


def test_tampered_card_bytes_fail_the_card_and_index_checks(attested, make_source,
                                                            tmp_path: Path):
    model, files, trust = attested
    tampered = {**files, CARD_FILE: files[CARD_FILE] + b"\nAll clear.\n"}
    verdict = mlprov.verify(model, evidence=make_source(tampered, tmp_path), trust=trust)
    failed = _failed(verdict)
    assert not verdict.verified
    assert "does not match the digest the signed SBOM records" in failed["card"]
    assert "changed since it was indexed" in failed["index-consistent"]


def test_a_tampered_signed_statement_fails_its_signature(attested, make_source, tmp_path: Path):
    model, files, trust = attested
    document = json.loads(files[PROVENANCE_FILE])
    envelope = document["dsseEnvelope"]
    envelope["payload"] = envelope["payload"][:-8] + ("A" * 8 if envelope["payload"][-8:]
                                                      != "A" * 8 else "B" * 8)
    tampered = {**files, PROVENANCE_FILE: json.dumps(document).encode()}
    verdict = mlprov.verify(model, evidence=make_source(tampered, tmp_path), trust=trust)
    assert f"signature:{PROVENANCE_FILE}" in _failed(verdict)
    assert not verdict.verified


@pytest.mark.parametrize("missing", [SBOM_FILE, INDEX_FILE, EVAL_FILE])
def test_a_missing_file_fails_its_check(attested, make_source, tmp_path: Path, missing: str):
    model, files, trust = attested
    kept = {name: data for name, data in files.items() if name != missing}
    verdict = mlprov.verify(model, evidence=make_source(kept, tmp_path), trust=trust)
    failed = _failed(verdict)
    assert not verdict.verified
    if missing == INDEX_FILE:
        assert "is missing" in failed["index"]
    elif missing == SBOM_FILE:
        assert f"evidence file missing: {SBOM_FILE}" in failed["sbom"]
    else:  # the signed SBOM records the eval statement: it is required
        assert "evidence file missing" in failed[f"signature:{EVAL_FILE}"]


def test_an_index_naming_a_hostile_file_fails(attested, make_source, tmp_path: Path):
    model, files, trust = attested
    index = json.loads(files[INDEX_FILE])
    index["files"]["../../etc/passwd"] = "sha256:" + "0" * 64
    tampered = {**files, INDEX_FILE: json.dumps(index).encode()}
    verdict = mlprov.verify(model, evidence=make_source(tampered, tmp_path), trust=trust)
    assert "lists an unsafe file name" in _failed(verdict)["index-consistent"]


def test_an_oversized_read_is_refused(attested, make_source, tmp_path: Path):
    _model, files, _trust = attested
    source = make_source(files, tmp_path)
    with pytest.raises(BundleError, match="too large"):
        source.read(SBOM_FILE, limit=64)
    with pytest.raises(InputError, match="too large"):
        source.read(SBOM_FILE, limit=64, error=InputError)
    assert source.read(CARD_FILE, limit=len(files[CARD_FILE])) == files[CARD_FILE]


def test_a_source_that_ignores_the_bound_is_refused_anyway(attested):
    _model, files, _trust = attested

    class Careless(MemorySource):
        def _read(self, name: str, **_: object) -> bytes:
            return b"x" * 100

    with pytest.raises(BundleError, match="too large"):
        Careless(files).read(CARD_FILE, limit=10)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_by_every_source(attested, make_source, tmp_path: Path,
                                                   name: str):
    _model, files, _trust = attested
    source = make_source(files, tmp_path)
    with pytest.raises(BundleError, match="unsafe evidence file name"):
        source.read(name)
    with pytest.raises(BundleError, match="unsafe evidence file name"):
        source.exists(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_memory_source_refuses_hostile_names_when_made(name: str):
    with pytest.raises(InputError, match="unsafe evidence file name"):
        MemorySource({name: b"{}"})
    with pytest.raises(BundleError, match="unsafe evidence file name"):
        check_evidence_name(name)


def test_a_directory_source_never_follows_a_symlink(attested, tmp_path: Path):
    model, files, trust = attested
    source = _directory({k: v for k, v in files.items() if k != CARD_FILE}, tmp_path)
    assert isinstance(source, DirectorySource)
    (tmp_path / "elsewhere.md").write_bytes(files[CARD_FILE])
    (source.path / CARD_FILE).symlink_to(tmp_path / "elsewhere.md")
    (source.path / "FIFO").symlink_to("/dev/zero")
    assert source.exists(CARD_FILE) and CARD_FILE not in source.names()
    with pytest.raises(BundleError, match="symlink"):
        source.read(CARD_FILE)
    verdict = mlprov.verify(model, evidence=source, trust=trust)
    assert "symlink" in _failed(verdict)["card"]


def test_a_path_is_a_directory_source():
    assert isinstance(as_source("ev"), DirectorySource)
    memory = MemorySource({})
    assert as_source(memory) is memory
    assert memory.describe(CARD_FILE) == f"in-memory evidence/{CARD_FILE}"
