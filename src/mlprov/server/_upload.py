"""A registration's upload: one uncompressed tar of ``model/...`` and ``evidence/...``.

The request body is streamed to a private temporary file (size-bounded, an
idle timeout per chunk, optionally checked against ``X-Mlprov-Upload-Sha256``)
and only then unpacked, member by member, into a private temporary directory:

- only regular files and directories; links, devices, FIFOs and sparse files
  are refused;
- every name is a clean relative POSIX path under ``model/`` or ``evidence/``:
  no absolute names, ``..`` or ``.`` parts, empty parts, backslashes, NUL or
  control characters; a name given twice, or a file where a directory goes, is
  refused;
- files are created with ``O_EXCL | O_NOFOLLOW`` (nothing is overwritten or
  followed) and the archive must end with tar's end-of-archive blocks, so an
  upload cut at a member boundary is refused as truncated.

Nothing is stored in the registry from here: the registry verifies the model
against its evidence and its trust first (``Registry.register``).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from mlprov.errors import InputError

__all__ = ["UploadError", "extract_upload"]

_MAX_MEMBERS = 100_000
_MAX_NAME = 4096
_ROOTS = ("model", "evidence")
_CHUNK = 1024 * 1024


class UploadError(InputError):
    """A registration upload is malformed, truncated or unsafe; nothing was stored."""

    hint = "send an uncompressed tar of model/ and evidence/ (mlprov register does)"


def _check_name(name: str) -> PurePosixPath:
    if not name or len(name) > _MAX_NAME or not name.isprintable() or "\\" in name:
        raise UploadError(f"upload member name {name!r} is not allowed")
    path = PurePosixPath(name)
    parts = name.rstrip("/").split("/")
    if path.is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise UploadError(f"upload member name {name!r} is not a clean relative path")
    if parts[0] not in _ROOTS:
        raise UploadError(f"upload member {name!r} is outside model/ and evidence/")
    return PurePosixPath(*parts)


def extract_upload(archive: Path, dest: Path, *, model_file: str | None = None,
                   max_bytes: int) -> tuple[Path, Path]:
    """Unpack ``archive`` into the new directory ``dest``; the model and evidence paths.

    ``model_file``: the model is the one file ``model/<model_file>`` (else the
    directory ``model/``).

    Raises:
        UploadError: see the module docstring.
    """
    dest.mkdir(mode=0o700)
    seen: dict[PurePosixPath, bool] = {}  # path -> is a directory
    total = 0
    try:
        with tarfile.open(archive, mode="r:") as tar:
            count = 0
            while True:
                member = tar.next()
                if member is None:
                    break
                count += 1
                if count > _MAX_MEMBERS:
                    raise UploadError(f"the upload holds more than {_MAX_MEMBERS} entries")
                path = _check_name(member.name)
                if path in seen:
                    raise UploadError(f"upload member {member.name!r} appears twice")
                for parent in list(path.parents)[:-1]:
                    if seen.get(parent) is False:
                        raise UploadError(f"upload member {member.name!r} is inside a file")
                if member.isdir():
                    (dest / path).mkdir(mode=0o700, parents=True, exist_ok=True)
                    seen[path] = True
                    continue
                if not member.isreg() or member.sparse is not None:
                    raise UploadError(f"upload member {member.name!r} is not a regular file "
                                      "(links, devices and FIFOs are refused)")
                if len(path.parts) < 2:
                    raise UploadError(f"upload member {member.name!r} must be inside "
                                      "model/ or evidence/")
                total += member.size
                if total > max_bytes:
                    raise UploadError(f"the upload unpacks to more than {max_bytes} bytes")
                _write_member(tar, member, dest / path)
                seen[path] = False
            end = tar.offset
        _check_end(archive, end)
    except (tarfile.TarError, EOFError) as exc:
        raise UploadError(f"the upload is not a complete tar archive (truncated or "
                          f"corrupt): {exc}") from exc
    model = dest / "model"
    evidence = dest / "evidence"
    if not evidence.is_dir():
        raise UploadError("the upload holds no evidence/ directory")
    if model_file is not None:
        name = _check_name(f"model/{model_file}")
        if len(name.parts) != 2 or seen.get(name) is not False:
            raise UploadError(f"the upload holds no model file model/{model_file}")
        return dest / name, evidence
    if not model.is_dir():
        raise UploadError("the upload holds no model/ directory")
    return model, evidence


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        raise UploadError(f"upload member {member.name!r} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except OSError as exc:
        raise UploadError(f"upload member {member.name!r} cannot be written: "
                          f"{exc.strerror}") from exc
    written = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
    if written != member.size:
        raise UploadError(f"upload member {member.name!r} is truncated")


def _check_end(archive: Path, offset: int) -> None:
    """The archive must end with tar's two zero blocks right after the last member."""
    with open(archive, "rb") as handle:
        handle.seek(offset)
        tail = handle.read(1024)
    if len(tail) < 1024 or tail.count(0) != 1024:
        raise UploadError("the upload is truncated (no end-of-archive marker after the "
                          "last member)")
