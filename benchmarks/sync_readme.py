#!/usr/bin/env python3
"""Copy the benchmark summary table from benchmarks/README.md into the project README.

benchmarks/README.md owns the table (every benchmark, its target, the last measured figures and
when): it sits between the lines ``<!-- summary:start -->`` and ``<!-- summary:end -->``. This
script replaces the block between the same two lines of README.md with it, byte for byte, so
the two never say different things. Edit the table in benchmarks/README.md, then run:

    python benchmarks/sync_readme.py            # rewrite README.md's block
    python benchmarks/sync_readme.py --check    # exit 1 if README.md's block differs

The block is copied as it is, so it holds no relative links (they would resolve differently
from the two files); the text around the markers links to benchmarks/README.md.

Exit status: 0 the blocks agree (or README.md was rewritten to agree); 1 with ``--check``,
they differ; 2 bad arguments, or a file lacks the markers or has them twice or out of order.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

START = "<!-- summary:start -->"
END = "<!-- summary:end -->"
REPO = Path(__file__).resolve().parents[1]


class MarkerError(Exception):
    """A file lacks the summary markers, or has them twice or in the wrong order."""


def block_span(text: str, name: str) -> tuple[int, int]:
    """The ``(start, end)`` offsets of the block, markers included, each on a line of its own."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        raise MarkerError(
            f"{name}: expected one line {START!r} and, after it, one line {END!r} "
            f"(found {len(starts)} and {len(ends)})"
        )
    offset = [0]
    for line in lines:
        offset.append(offset[-1] + len(line))
    return offset[starts[0]], offset[ends[0] + 1]


def extract(text: str, name: str) -> str:
    """The block of ``text``, markers included."""
    start, end = block_span(text, name)
    return text[start:end]


def synced(source: str, target: str, *, source_name: str, target_name: str) -> str:
    """``target`` with its block replaced by the block of ``source``."""
    block = extract(source, source_name)
    start, end = block_span(target, target_name)
    if not block.endswith("\n"):
        block += "\n"
    return target[:start] + block + target[end:]


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sync (or the check); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when README.md's block differs")
    parser.add_argument("--source", type=Path, default=REPO / "benchmarks" / "README.md",
                        help="the file that owns the table (default: benchmarks/README.md)")
    parser.add_argument("--target", type=Path, default=REPO / "README.md",
                        help="the file that gets a copy (default: README.md)")
    args = parser.parse_args(argv)
    source = args.source.read_text(encoding="utf-8")
    target = args.target.read_text(encoding="utf-8")
    try:
        wanted = synced(source, target, source_name=str(args.source),
                        target_name=str(args.target))
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if wanted == target:
        return 0
    if args.check:
        diff = difflib.unified_diff(
            extract(target, str(args.target)).splitlines(keepends=True),
            extract(source, str(args.source)).splitlines(keepends=True),
            fromfile=str(args.target), tofile=str(args.source),
        )
        sys.stderr.writelines(diff)
        print(f"error: the benchmark summary in {args.target} differs from {args.source} "
              "(hint: run python benchmarks/sync_readme.py)", file=sys.stderr)
        return 1
    write_atomically(args.target, wanted)
    print(f"updated the benchmark summary in {args.target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
