"""``mlprov hash``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo, emit_json
from mlprov._cli.progress import byte_progress
from mlprov.hashing import DEFAULT_IGNORE_PATHS, hash_path

HASH_SCHEMA = "https://mlprov.dev/schemas/manifest/v1"


@click.command("hash")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--allow-symlinks", is_flag=True, help="Follow symlinks that stay inside PATH.")
@click.option("--ignore", "ignore", multiple=True, metavar="REL_PATH",
              help="Leave a path (relative to PATH) out; repeatable. "
                   ".git, .gitattributes, .github and .gitignore are always left out.")
def hash_cmd(path: Path, as_json: bool, allow_symlinks: bool, ignore: tuple[str, ...]) -> None:
    """Print the manifest and root digest of a model file or directory.

    The root digest is SHA-256 over the per-file SHA-256 digests sorted by path,
    the rule OpenSSF model-signing uses, so both tools name a model alike.
    """
    with byte_progress("hashing") as progress:
        manifest = hash_path(path, ignore_paths=DEFAULT_IGNORE_PATHS + ignore,
                             allow_symlinks=allow_symlinks, progress=progress,
                             on_total=progress.total if progress else None)
    if as_json:
        emit_json({
            "schema": HASH_SCHEMA,
            "name": manifest.name,
            "rootDigest": f"sha256:{manifest.root}",
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size}
                      for f in manifest.files],
            "ignorePaths": list(manifest.ignore_paths),
            "totalSize": manifest.total_size,
        })
        return
    for f in manifest.files:
        echo(f"{f.sha256}  {f.path}")
    echo(f"sha256:{manifest.root}  (root, {len(manifest.files)} files, "
               f"{manifest.total_size} bytes)")
