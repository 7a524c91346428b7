"""The benchmark summary: README.md's copy matches benchmarks/README.md, which lists every script.

benchmarks/sync_readme.py copies the table; these tests keep the two files from drifting and a
new benchmark from going unlisted. They read files only and take milliseconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_readme",
                                                  REPO / "benchmarks" / "sync_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_summary_matches_the_benchmarks_readme(sync: ModuleType) -> None:
    assert sync.main(["--check"]) == 0, "run: python benchmarks/sync_readme.py"


def test_summary_lists_every_benchmark(sync: ModuleType) -> None:
    block = sync.extract((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8"),
                         "benchmarks/README.md")
    scripts = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))
    assert scripts
    assert [name for name in scripts if f"`{name}" not in block] == []


def test_summary_holds_no_relative_links(sync: ModuleType) -> None:
    # Copied byte for byte into README.md, a relative link would point elsewhere there.
    block = sync.extract((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8"),
                         "benchmarks/README.md")
    assert "](" not in block


SOURCE = (
    "# Benchmarks\n\n<!-- summary:start -->\n| a | b |\n| 1 | 2 |\n<!-- summary:end -->\n\nmore\n"
)


def test_sync_rewrites_only_the_block_and_check_reports_a_difference(
    sync: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "bench.md", tmp_path / "README.md"
    source.write_text(SOURCE)
    target.write_text("intro\n<!-- summary:start -->\nold\n<!-- summary:end -->\noutro\n")
    paths = ["--source", str(source), "--target", str(target)]
    assert sync.main(["--check", *paths]) == 1
    assert "-old" in capsys.readouterr().err
    assert sync.main(paths) == 0
    assert target.read_text() == (
        "intro\n<!-- summary:start -->\n| a | b |\n| 1 | 2 |\n<!-- summary:end -->\noutro\n"
    )
    assert sync.main(["--check", *paths]) == 0


@pytest.mark.parametrize("text", [
    "no markers\n",
    "<!-- summary:end -->\n<!-- summary:start -->\n",
    "<!-- summary:start -->\n<!-- summary:start -->\n<!-- summary:end -->\n",
])
def test_missing_or_misplaced_markers_are_refused(
    sync: ModuleType, tmp_path: Path, text: str
) -> None:
    source, target = tmp_path / "bench.md", tmp_path / "README.md"
    source.write_text(SOURCE)
    target.write_text(text)
    assert sync.main(["--source", str(source), "--target", str(target)]) == 2
    assert target.read_text() == text
