"""lineage --deep ranks a node's candidate copies in linear time, as the quadratic sort did."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mlprov._internal.lineage_search import ModelLocator, SearchTree
from mlprov.lineage import _belongs_to, _ranked

_DIR = st.lists(st.sampled_from(["a", "b", "m", "ev"]), min_size=1, max_size=4).map(
    lambda parts: "/x/" + "/".join(parts))


@given(candidates=st.lists(_DIR, max_size=12), ev=st.one_of(st.just(""), _DIR))
def test_ranking_equals_the_sorted_belongs_to_order(candidates: list[str], ev: str):
    paths = [Path(c) for c in candidates]
    locator = ModelLocator(SearchTree([]))
    expected = [(b, c) for b, _i, c in sorted(
        ((_belongs_to(locator.real(c), ev) if ev else 0, i, c) for i, c in enumerate(paths)),
        reverse=True)]
    assert list(_ranked(paths, ev, locator)) == expected
