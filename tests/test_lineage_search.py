"""The lineage walk's search: one scan of the search directories, shared, as two scans found.

``mlprov._internal.lineage_search`` scans the search roots once per walk; the
evidence index and the model locator (``--deep``) both read that scan, and the
locator lists a directory's files from the scan's entries instead of listing it
again. These tests hold the shared scan to what separate scans would find.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov._internal import lineage_search
from mlprov._internal.lineage_search import ModelLocator, SearchTree, _tree_files
from mlprov.lineage import NodeStatus
from tests import lineage_models as lm
from tests.test_lineage import Zoo, _make_zoo

_NAME = st.sampled_from(["a", "b", ".h", "evidence", "m"])
# A tree: each entry is a file (bytes), a directory (dict), or a symlink (a str target).
_TREE = st.recursive(
    st.dictionaries(_NAME, st.one_of(st.binary(max_size=4), st.sampled_from(["../a", "b"])),
                    max_size=3),
    lambda children: st.dictionaries(_NAME, st.one_of(children, st.binary(max_size=4)),
                                     max_size=3),
    max_leaves=12)


def _build(root: Path, tree: dict[str, object]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        if isinstance(value, dict):
            _build(root / name, value)
        elif isinstance(value, str):
            (root / name).symlink_to(value)
        else:
            assert isinstance(value, bytes)
            (root / name).write_bytes(value)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_TREE)
def test_files_from_the_scans_entries_equal_a_fresh_listing(
        tmp_path_factory: pytest.TempPathFactory, tree: dict[str, object]):
    root = tmp_path_factory.mktemp("tree")
    _build(root, tree)
    tree_scan = SearchTree([root])
    seeded: dict[str, list[str]] = {}
    for name, _real, entries in reversed(tree_scan.dirs()):
        _tree_files(name, seeded, entries)
    for name, real, _entries in tree_scan.dirs():
        fresh = _tree_files(name, {})
        assert sorted(seeded[name]) == sorted(fresh), name
        assert real == os.path.realpath(name)


@pytest.fixture
def chain(tmp_path: Path) -> Zoo:
    zoo = _make_zoo(tmp_path)
    lm.train_base(zoo.model("base"))
    zoo.attest("base")
    lm.fine_tune(zoo.model("base"), zoo.model("ft"))
    zoo.attest("ft", parents=(f"fine-tune-of={zoo.evidence('base')}",))
    return zoo


def test_a_deep_walk_scans_each_search_root_once(chain: Zoo, monkeypatch: pytest.MonkeyPatch):
    scanned: list[str] = []
    original = lineage_search._subdirs_real

    def counting(root: Path, depth: int) -> Iterable[tuple[str, str, list[os.DirEntry[str]]]]:
        scanned.append(str(root))
        return original(root, depth)

    monkeypatch.setattr(lineage_search, "_subdirs_real", counting)
    lineage = chain.verify("ft", deep=True)
    assert lineage.verified, lineage.failures
    assert all(n.files is not None and n.files.status == "verified" for n in lineage.nodes)
    # The start's parent directory and the search root: each scanned once, for both uses.
    assert sorted(scanned) == sorted({str(chain.evidence("ft").parent), str(chain.root)})


def test_a_model_reached_only_through_a_symlinked_root_is_not_hashed(chain: Zoo, tmp_path: Path):
    link = tmp_path / "link"
    link.symlink_to(chain.model("base"), target_is_directory=True)
    through_link = chain.verify("ft", deep=True, model_search=[link])
    base = next(n for n in through_link.nodes if n.name == "base")
    # hash_path refuses a symlinked model root without --allow-symlinks; the copy belongs
    # to the evidence (its real path sits beside it), so the node fails rather than pass.
    assert base.status is NodeStatus.FAILED and base.files is not None
    assert base.files.status == "failed" and base.files.path == str(link)
    assert "cannot be hashed" in base.detail
    direct = chain.verify("ft", deep=True, model_search=[chain.model("base")])
    base = next(n for n in direct.nodes if n.name == "base")
    assert base.files is not None and base.files.status == "verified"
    assert base.files.path == str(chain.model("base"))


def test_the_locator_hashes_a_listed_directory_as_hash_path_does(chain: Zoo):
    from mlprov.hashing import hash_path
    from mlprov.lineage import verify_evidence

    signed = verify_evidence(chain.evidence("base"), chain.trust).manifest
    locator = ModelLocator(SearchTree([chain.root]))
    found = locator.candidates(signed)
    assert chain.model("base") in found
    assert locator.digests(chain.model("base"), signed) == hash_path(chain.model("base")).by_path()
    assert locator.digests(chain.model("base"), signed) == signed.files
