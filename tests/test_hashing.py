"""Tests for mlprov.hashing: manifests, the OMS root digest and path safety."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError, UnsafePathError
from mlprov.hashing import (
    DEFAULT_IGNORE_PATHS,
    FileDigest,
    Manifest,
    check_relative_path,
    hash_file,
    hash_path,
    manifest_sort_key,
    root_digest,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def oms_root(path: Path, *, allow_symlinks: bool = False) -> tuple[str, list[str]]:
    """The root digest and resource names the real model_signing library computes."""
    import model_signing.hashing
    from model_signing._signing.signing import Payload

    config = model_signing.hashing.Config()
    if allow_symlinks:
        config.set_allow_symlinks(True)
    manifest = config.hash(path)
    statement = Payload(manifest).statement.pb
    names = [r.identifier for r in manifest.resource_descriptors()]
    return statement.subject[0].digest["sha256"], names


# --- the root digest rule -------------------------------------------------------------


def test_root_digest_is_sha256_over_raw_digests_in_manifest_order(tmp_path: Path):
    files = {"b.bin": b"bee", "a/b": b"ab", "a-c": b"a dash c", "a/z/deep": b"deep"}
    manifest = hash_path(write_tree(tmp_path / "m", files))
    # Part-by-part order: "a/b" < "a/z/deep" < "a-c" < "b.bin" ("/" would sort after "-").
    assert [f.path for f in manifest.files] == ["a/b", "a/z/deep", "a-c", "b.bin"]
    expected = hashlib.sha256(
        b"".join(hashlib.sha256(files[p]).digest() for p in ["a/b", "a/z/deep", "a-c", "b.bin"])
    ).hexdigest()
    assert manifest.root == expected
    assert manifest.by_path() == {p: sha(d) for p, d in files.items()}
    assert {f.path: f.size for f in manifest.files} == {p: len(d) for p, d in files.items()}
    assert manifest.total_size == sum(len(d) for d in files.values())
    assert manifest.name == "m"
    assert not manifest.is_file


def test_root_digest_function_direct():
    digests = [sha(b"1"), sha(b"2")]
    raw = bytes.fromhex(digests[0]) + bytes.fromhex(digests[1])
    assert root_digest(digests) == sha(raw)
    assert root_digest(reversed(digests)) != sha(raw)  # order matters
    assert root_digest([]) == sha(b"")


def test_manifest_root_is_derived_not_given():
    files = (FileDigest("x", sha(b"x"), 1), FileDigest("y", sha(b"y"), 1))
    manifest = Manifest(name="n", files=files)
    assert manifest.root == root_digest([sha(b"x"), sha(b"y")])


def test_sort_key_orders_like_pure_posix_path():
    paths = ["a-c", "a/b", "a.b", "a", "a/b/c", "a0", "B", "a b"]
    assert sorted(paths, key=manifest_sort_key) == sorted(paths, key=PurePosixPath)
    assert sorted(["a-c", "a/b"], key=manifest_sort_key) == ["a/b", "a-c"]


_PART = st.text(st.sampled_from("ab-._/ Z0"), min_size=1, max_size=4).filter(
    lambda s: "/" not in s and s not in (".", "..")
)


@given(st.lists(st.lists(_PART, min_size=1, max_size=3).map("/".join), max_size=12))
def test_sort_key_property_matches_pure_posix_path(paths: list[str]):
    assert sorted(paths, key=manifest_sort_key) == sorted(paths, key=PurePosixPath)


# --- agreement with the real OMS library ---------------------------------------------


@pytest.mark.parametrize("files", [
    {"a/b": b"x\n", "a-c": b"y\n"},
    {"weights.bin": os.urandom(3000), "tok/vocab.txt": b"a\nb\n", "tok-x/v": b"",
     "a.b/c": b"1", "a/b.c": b"2", "z": b"zz"},
])
def test_root_digest_matches_model_signing(tmp_path: Path, files: dict[str, bytes]):
    root = write_tree(tmp_path / "model", files)
    # Default-ignored paths must be left out by both tools.
    write_tree(root, {".git/HEAD": b"ref", ".github/workflows/ci.yml": b"on: push",
                      ".gitignore": b"*.pyc", ".gitattributes": b"* text"})
    manifest = hash_path(root)
    oms_digest, oms_names = oms_root(root)
    assert manifest.root == oms_digest
    assert [f.path for f in manifest.files] == oms_names


def test_single_file_model_matches_model_signing(tmp_path: Path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(os.urandom(10_000))
    manifest = hash_path(model)
    assert manifest.is_file
    assert [f.path for f in manifest.files] == ["."]
    assert manifest.name == "model.safetensors"
    assert manifest.files[0].sha256 == sha(model.read_bytes())
    # The root of a one-file model is the hash of that file's raw digest, not the digest.
    assert manifest.root == sha(hashlib.sha256(model.read_bytes()).digest())
    oms_digest, oms_names = oms_root(model)
    assert (manifest.root, ["."]) == (oms_digest, oms_names)


def test_model_fixture_matches_model_signing(model_dir: Path):
    assert hash_path(model_dir).root == oms_root(model_dir)[0]


def test_file_symlink_inside_root_matches_model_signing(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"real.bin": b"payload", "d/x": b"x"})
    (root / "alias.bin").symlink_to("real.bin")
    manifest = hash_path(root, allow_symlinks=True)
    assert manifest.by_path()["alias.bin"] == sha(b"payload")
    assert manifest.root == oms_root(root, allow_symlinks=True)[0]


# --- ignores -------------------------------------------------------------------------


def test_default_ignores_are_top_level_only(tmp_path: Path):
    root = write_tree(tmp_path / "m", {
        "w": b"w", ".git/config": b"c", ".gitattributes": b"a", ".github/x.yml": b"y",
        ".gitignore": b"i", "sub/.gitignore": b"kept", "sub/.git/keep": b"kept",
        ".gitmodules": b"kept",
    })
    manifest = hash_path(root)
    assert set(manifest.by_path()) == {"w", "sub/.gitignore", "sub/.git/keep", ".gitmodules"}
    assert manifest.ignore_paths == tuple(sorted(DEFAULT_IGNORE_PATHS))
    assert set(DEFAULT_IGNORE_PATHS) == {".git", ".gitattributes", ".github", ".gitignore"}


def test_ignore_paths_files_and_directories(tmp_path: Path):
    root = write_tree(tmp_path / "m", {
        "keep": b"k", "model.sig": b"sig", "evidence/a.json": b"{}", "evidence/b/c": b"c",
        "evidence-x": b"not under evidence/",
    })
    manifest = hash_path(root, ignore_paths=["model.sig", "evidence/"])
    assert set(manifest.by_path()) == {"keep", "evidence-x"}
    assert manifest.ignore_paths == ("evidence", "model.sig")
    # Without ignores, every file is there and the root differs.
    full = hash_path(root, ignore_paths=())
    assert len(full.files) == 5
    assert full.root != manifest.root


def test_ignored_dir_may_hold_unsafe_entries(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    (root / ".git").mkdir()
    (root / ".git" / "link").symlink_to("/etc/passwd")
    assert set(hash_path(root).by_path()) == {"w"}


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/../b", ""])
def test_unsafe_ignore_paths_are_refused(tmp_path: Path, bad: str):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    with pytest.raises(UnsafePathError):
        hash_path(root, ignore_paths=[bad])


def test_single_file_ignores_nothing(tmp_path: Path):
    f = tmp_path / ".gitignore"
    f.write_bytes(b"x")
    assert hash_path(f).files[0].sha256 == sha(b"x")


# --- errors and refusals -------------------------------------------------------------


def test_empty_directory_is_an_input_error(tmp_path: Path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no files"):
        hash_path(tmp_path / "empty")


def test_directory_with_only_ignored_files_is_an_input_error(tmp_path: Path):
    root = write_tree(tmp_path / "m", {".git/HEAD": b"x", ".gitignore": b"y"})
    with pytest.raises(InputError, match="no files"):
        hash_path(root)


def test_missing_path_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        hash_path(tmp_path / "nope")
    with pytest.raises(InputError):
        hash_file(tmp_path / "nope")


def test_symlink_refused_by_default(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"real": b"r"})
    (root / "link").symlink_to("real")
    with pytest.raises(UnsafePathError, match="symlink in model: link"):
        hash_path(root)


def test_symlinked_root_refused_by_default(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"real": b"r"})
    (tmp_path / "alias").symlink_to(root)
    (tmp_path / "falias").symlink_to(root / "real")
    with pytest.raises(UnsafePathError):
        hash_path(tmp_path / "alias")
    with pytest.raises(UnsafePathError):
        hash_path(tmp_path / "falias")
    assert hash_path(tmp_path / "alias", allow_symlinks=True).root == hash_path(root).root


def test_directory_symlink_inside_root_allowed(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"a/x": b"x", "a/y": b"y"})
    (root / "b").symlink_to("a", target_is_directory=True)
    manifest = hash_path(root, allow_symlinks=True)
    assert manifest.by_path() == {"a/x": sha(b"x"), "a/y": sha(b"y"),
                                  "b/x": sha(b"x"), "b/y": sha(b"y")}
    assert manifest.allow_symlinks


def test_two_names_for_one_directory_are_not_a_loop(tmp_path: Path):
    """Sibling links to an already-walked directory must not be taken for a loop."""
    root = write_tree(tmp_path / "m", {"a/x": b"x"})
    for name in ("0", "b", "zz"):  # before and after "a" in any listing order
        (root / name).symlink_to("a", target_is_directory=True)
    manifest = hash_path(root, allow_symlinks=True)
    assert set(manifest.by_path()) == {"a/x", "0/x", "b/x", "zz/x"}


@pytest.mark.parametrize("target", ["../outside", "/etc/hostname"])
def test_symlink_leaving_root_refused_even_when_allowed(tmp_path: Path, target: str):
    (tmp_path / "outside").write_bytes(b"secret")
    root = write_tree(tmp_path / "m", {"w": b"w"})
    (root / "leak").symlink_to(target)
    with pytest.raises(UnsafePathError, match="leaves the model root"):
        hash_path(root, allow_symlinks=True)


def test_directory_symlink_leaving_root_refused(tmp_path: Path):
    write_tree(tmp_path / "outside", {"s": b"s"})
    root = write_tree(tmp_path / "m", {"w": b"w"})
    (root / "sub").mkdir()
    (root / "sub" / "out").symlink_to("../../outside", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="leaves the model root"):
        hash_path(root, allow_symlinks=True)


def test_sibling_prefix_is_not_inside_root(tmp_path: Path):
    """/x/model-evil is not inside /x/model although the string starts alike."""
    write_tree(tmp_path / "model-evil", {"s": b"s"})
    root = write_tree(tmp_path / "model", {"w": b"w"})
    (root / "link").symlink_to("../model-evil/s")
    with pytest.raises(UnsafePathError, match="leaves the model root"):
        hash_path(root, allow_symlinks=True)


def test_symlink_loop_to_ancestor_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"a/x": b"x"})
    (root / "a" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="loop"):
        hash_path(root, allow_symlinks=True)


def test_mutual_symlink_loop_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"a/x": b"x", "b/y": b"y"})
    (root / "a" / "tob").symlink_to("../b", target_is_directory=True)
    (root / "b" / "toa").symlink_to("../a", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="loop"):
        hash_path(root, allow_symlinks=True)


def test_self_referencing_symlinks_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    (root / "p").symlink_to("q")
    (root / "q").symlink_to("p")
    with pytest.raises(UnsafePathError):
        hash_path(root, allow_symlinks=True)


def test_dangling_symlink_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    (root / "dangling").symlink_to("missing")
    with pytest.raises(UnsafePathError):
        hash_path(root, allow_symlinks=True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_tree_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsafePathError, match=r"special file.*pipe"):
        hash_path(root)
    with pytest.raises(UnsafePathError, match="special file"):
        hash_path(root, allow_symlinks=True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_as_model_refused_without_blocking(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        hash_path(tmp_path / "pipe")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_symlink_to_fifo_inside_root_refused(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"w": b"w"})
    os.mkfifo(root / "pipe")
    (root / "link").symlink_to("pipe")
    with pytest.raises(UnsafePathError):
        hash_path(root, allow_symlinks=True, ignore_paths=["pipe"])


def test_hash_file_does_not_follow_symlinks_by_default(tmp_path: Path):
    (tmp_path / "real").write_bytes(b"r")
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(InputError):
        hash_file(tmp_path / "link")
    assert hash_file(tmp_path / "link", follow_symlinks=True) == (sha(b"r"), 1)


def test_hash_file_refuses_directory(tmp_path: Path):
    with pytest.raises(InputError):
        hash_file(tmp_path)


# --- check_relative_path -------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "..", "../a", "a/..", "a/../b", "/abs", "/", "", "a//b", "a/", "./a", "a/./b",
    "a\\b", "..\\a", "a\x00b", "\x00",
])
def test_check_relative_path_rejects(name: str):
    with pytest.raises(UnsafePathError):
        check_relative_path(name)


@pytest.mark.parametrize("name", ["a", "a/b", "a-c", "...", "a..b", ".hidden/x", "ü/日本", "."])
def test_check_relative_path_accepts(name: str):
    assert check_relative_path(name) == name


_SAFE_PART = st.text(
    st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)), min_size=1,
).filter(lambda s: s not in (".", ".."))


@given(st.lists(_SAFE_PART, min_size=1, max_size=6))
def test_check_relative_path_accepts_safe_parts(parts: list[str]):
    name = "/".join(parts)
    assert check_relative_path(name) == name


@given(st.lists(_SAFE_PART, max_size=4), st.lists(_SAFE_PART, max_size=4))
def test_check_relative_path_rejects_dotdot_anywhere(before: list[str], after: list[str]):
    with pytest.raises(UnsafePathError):
        check_relative_path("/".join([*before, "..", *after]))


@given(st.lists(_SAFE_PART, max_size=4))
def test_check_relative_path_rejects_absolute(parts: list[str]):
    with pytest.raises(UnsafePathError):
        check_relative_path("/" + "/".join(parts))


@given(st.lists(_SAFE_PART, min_size=1, max_size=4), st.sampled_from(["\\", "\x00"]))
def test_check_relative_path_rejects_backslash_and_nul(parts: list[str], bad: str):
    with pytest.raises(UnsafePathError):
        check_relative_path(bad.join(parts) if len(parts) > 1 else parts[0] + bad)


# --- order independence, parallelism, progress, big files -----------------------------


_NAMES = st.lists(
    st.lists(st.sampled_from(["a", "b", "a-c", "a.b", "A", "z0"]), min_size=1, max_size=3),
    min_size=1, max_size=8,
).map(lambda ps: sorted({"/".join(p) for p in ps}))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_NAMES, data=st.data())
def test_creation_order_does_not_change_manifest(tmp_path_factory, names: list[str], data):
    # A path cannot be both a file and a directory: drop names that are prefixes of others.
    names = [n for n in names if not any(o.startswith(n + "/") for o in names)]
    contents = {n: n.encode() * 3 for n in names}
    order_a = data.draw(st.permutations(names))
    order_b = data.draw(st.permutations(names))
    roots = []
    for order in (order_a, order_b):
        root = tmp_path_factory.mktemp("perm")
        for n in order:
            write_tree(root, {n: contents[n]})
        roots.append(root)
    ma, mb = hash_path(roots[0]), hash_path(roots[1])
    assert ma.files == mb.files
    assert ma.root == mb.root
    assert [f.path for f in ma.files] == sorted(names, key=PurePosixPath)


def test_parallel_hashing_equals_single_worker(tmp_path: Path):
    files = {f"d{i % 5}/f{i:03d}": os.urandom(i * 97 % 5000) for i in range(60)}
    root = write_tree(tmp_path / "m", files)
    one = hash_path(root, workers=1)
    many = hash_path(root, workers=16)
    default = hash_path(root)
    assert one == many == default
    assert one.by_path() == {p: sha(d) for p, d in files.items()}


def test_a_failing_file_stops_nothing_and_the_first_failure_in_order_is_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """As ThreadPoolExecutor.map did: every file is hashed, then the first error is raised."""
    import mlprov.hashing as hashing

    files = {f"f{i:02d}": os.urandom(1000 + i) for i in range(12)}
    root = write_tree(tmp_path / "m", files)
    hashed: list[str] = []
    real = hashing.hash_file

    def flaky(path: Path | str, **kwargs: object) -> tuple[str, int]:
        name = Path(path).name
        hashed.append(name)
        if name in ("f03", "f07"):
            raise InputError(f"cannot read {name}")
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "hash_file", flaky)
    # Largest first: f11, f10, ... so f07 comes before f03 in the work order.
    with pytest.raises(InputError, match="cannot read f07"):
        hash_path(root, workers=4)
    assert sorted(hashed) == sorted(files)


def test_progress_callback_totals_total_size(tmp_path: Path):
    files = {"big": os.urandom(3 * (1 << 20) + 17), "small": b"s", "empty": b"",
             "sub/mid": os.urandom(70_000)}
    root = write_tree(tmp_path / "m", files)
    seen: list[int] = []
    threads: set[int] = set()

    def progress(n: int) -> None:
        threads.add(threading.get_ident())
        seen.append(n)

    manifest = hash_path(root, progress=progress, workers=4)
    assert sum(seen) == manifest.total_size == sum(len(d) for d in files.values())
    assert all(n > 0 for n in seen)
    seen.clear()
    single = hash_path(root / "big", progress=progress)
    assert sum(seen) == single.total_size == len(files["big"])


def test_large_file_digest_matches_hashlib(tmp_path: Path):
    data = os.urandom(5 * (1 << 20) + 12345)  # spans several read chunks, not aligned
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert hash_file(path) == (sha(data), len(data))
    manifest = hash_path(tmp_path)
    assert manifest.by_path()["big.bin"] == sha(data)


def test_empty_file_is_hashed(tmp_path: Path):
    root = write_tree(tmp_path / "m", {"empty": b""})
    manifest = hash_path(root)
    assert manifest.files == (FileDigest("empty", sha(b""), 0),)


# --- CLI -------------------------------------------------------------------------------


def test_cli_hash_json(run_cli, model_dir: Path):
    (model_dir / ".gitignore").write_text("*.tmp\n")
    r = run_cli("hash", str(model_dir), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"].startswith("https://")
    assert doc["rootDigest"] == f"sha256:{hash_path(model_dir).root}"
    assert doc["rootDigest"] == f"sha256:{oms_root(model_dir)[0]}"
    assert [f["path"] for f in doc["files"]] == ["config.json", "tokenizer/vocab.txt",
                                                 "weights.bin"]
    assert doc["totalSize"] == sum(f["size"] for f in doc["files"])
    assert "Traceback" not in r.stderr


def test_cli_hash_text(run_cli, model_dir: Path):
    r = run_cli("hash", str(model_dir))
    assert r.exit_code == 0, r.stderr
    manifest = hash_path(model_dir)
    lines = r.stdout.splitlines()
    assert lines[:-1] == [f"{f.sha256}  {f.path}" for f in manifest.files]
    assert lines[-1].startswith(f"sha256:{manifest.root}  (root, 3 files")


def test_cli_hash_ignore_option(run_cli, model_dir: Path):
    r = run_cli("hash", str(model_dir), "--json", "--ignore", "tokenizer")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [f["path"] for f in doc["files"]] == ["config.json", "weights.bin"]
    assert "tokenizer" in doc["ignorePaths"]


def _assert_one_line_error(r) -> None:
    assert r.exit_code == 3, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_cli_hash_symlink_error(run_cli, model_dir: Path):
    (model_dir / "link").symlink_to("weights.bin")
    _assert_one_line_error(run_cli("hash", str(model_dir), "--json"))
    r = run_cli("hash", str(model_dir), "--json", "--allow-symlinks")
    assert r.exit_code == 0, r.stderr
    assert "link" in {f["path"] for f in json.loads(r.stdout)["files"]}


def test_cli_hash_empty_dir_error(run_cli, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    _assert_one_line_error(run_cli("hash", str(tmp_path / "empty")))


def test_cli_hash_bad_ignore_error(run_cli, model_dir: Path):
    _assert_one_line_error(run_cli("hash", str(model_dir), "--ignore", "../x"))


def test_hash_job_gives_the_same_manifest_as_hash_path(tmp_path):
    from mlprov.hashing import HashJob, hash_path

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.bin").write_bytes(b"x" * 3_000_000)
    (tmp_path / "m" / "b.txt").write_text("b")
    assert HashJob(tmp_path / "m").result() == hash_path(tmp_path / "m")


def test_hash_job_reraises_hashing_errors(tmp_path):
    from mlprov.errors import InputError
    from mlprov.hashing import HashJob

    (tmp_path / "empty").mkdir()
    job = HashJob(tmp_path / "empty")
    with pytest.raises(InputError, match="holds no files"):
        job.result()


def test_hash_job_cancel_stops_hashing(tmp_path, monkeypatch):
    import threading
    import time

    import mlprov.hashing as hashing
    from mlprov.hashing import HashJob

    # A forked child maps the file: 1 MiB windows, so it reports before it is done.
    monkeypatch.setattr(hashing, "_WINDOW", 1 << 20)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "big.bin").write_bytes(b"\0" * (8 << 20))
    started = threading.Event()
    seen: list[int] = []

    def progress(n: int) -> None:
        seen.append(n)
        started.set()
        time.sleep(0.05)  # 1 MiB chunks: a full run would take 0.4 s

    job = HashJob(tmp_path / "m", progress=progress)
    started.wait(5)
    job.cancel()
    with pytest.raises(Exception) as caught:
        job.result()
    assert type(caught.value).__name__ == "_Cancelled"
    assert sum(seen) < 8 << 20


def test_default_ignore_paths_adds_an_evidence_dir_inside_the_model(tmp_path):
    from mlprov.hashing import DEFAULT_IGNORE_PATHS, default_ignore_paths

    assert default_ignore_paths(tmp_path, tmp_path / "ev") == (*DEFAULT_IGNORE_PATHS, "ev")
    assert default_ignore_paths(tmp_path / "m", tmp_path / "ev") == DEFAULT_IGNORE_PATHS
    assert default_ignore_paths(tmp_path) == DEFAULT_IGNORE_PATHS


FORK_CHECK = """
import sys
from mlprov.hashing import HashJob, hash_path
job = HashJob(sys.argv[1]{progress})
forked = job._pid is not None
print(forked, job.result() == hash_path(sys.argv[1]))
"""


def fork_path_taken(model, progress: str = "") -> str:
    """Run a HashJob in a fresh interpreter, as the CLI does: other tests' threads (an
    MLflow or server thread) make the job hash in process instead, which is correct there."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FORK_CHECK.format(progress=progress),
                           str(model)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_hash_job_without_progress_hashes_in_a_child_process(tmp_path, monkeypatch):
    import os

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(os.urandom(100_000))
    assert fork_path_taken(tmp_path / "m") == "True True"  # forked, and the same manifest


def test_hash_job_child_errors_keep_their_type_and_hint(tmp_path):
    from mlprov.errors import InputError
    from mlprov.hashing import HashJob

    (tmp_path / "empty").mkdir()
    job = HashJob(tmp_path / "empty")
    with pytest.raises(InputError, match="holds no files") as caught:
        job.result()
    assert "point at the directory" in caught.value.diagnostics()


def test_hash_job_cancel_kills_the_child(tmp_path):
    from mlprov.errors import InputError
    from mlprov.hashing import HashJob

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "big.bin").write_bytes(b"\0" * (32 << 20))
    job = HashJob(tmp_path / "m")
    job.cancel()
    with pytest.raises(InputError, match="cancelled"):
        job.result()
