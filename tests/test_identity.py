"""Tests for mlprov.identity: the version identity, its inputs, and git detection."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pydantic
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.attestation import make_inputs
from mlprov.errors import IdentityError, InputError, UnsafePathError
from mlprov.hashing import hash_path
from mlprov.identity import (
    IDENTITY_PREFIX,
    CodeRef,
    DataRef,
    IdentityInputs,
    code_from_commit,
    code_from_repo,
    compute_identity,
    load_configs,
    parse_data_spec,
    parse_seed,
)
from tests.conftest import COMMIT

GOLDEN = Path(__file__).parent / "golden" / "identity"
HEX_A = "ab" * 32
HEX_B = "cd" * 32
URI = "git+https://github.com/org/repo.git"


def expected_identity(document: dict[str, Any]) -> str:
    """The identity computed independently of mlprov: RFC 8785 + SHA-256."""
    return "mlid:sha256:" + hashlib.sha256(rfc8785.dumps(document)).hexdigest()


# --- golden identities -----------------------------------------------------------------

RICH_CONFIG: dict[str, Any] = {
    "optimizer": {"name": "adamw", "betas": [0.9, 0.999], "eps": 1e-8,
                  "schedule": {"warmup": 100, "kind": "cosine"}},
    "lr": 0.0003,
    "epochs": 3,
    "big": 1e21,
    "tiny": 0.000001,
    "negative_zero": -0.0,
    "flag": True,
    "nothing": None,
    "note": "naïve \u2013 ü 日本 😀",
    "\u20ac": "euro key sorts after 'z' and before the emoji key in UTF-16 order",
    "\U0001f600": "emoji key",
    "\ufb33": "sorts after the emoji key in UTF-16, before it in code points",
}

GOLDEN_CASES: dict[str, tuple[IdentityInputs, dict[str, Any], str]] = {
    "minimal": (
        IdentityInputs(code=CodeRef(commit=COMMIT)),
        {"code": {"commit": COMMIT, "dirty": False}, "data": [], "config": {}, "seeds": {}},
        "mlid:sha256:37bea7890f67a915cef60a355f23cc1f75863dff24138441656d55bb05ebfec1",
    ),
    "full": (
        IdentityInputs(
            code=CodeRef(commit=COMMIT, uri=URI),
            # given out of order, and with a uri that the identity does not include
            data=[DataRef(name="train", digest=f"sha256:{HEX_A}", uri="s3://bucket/train"),
                  DataRef(name="eval", digest=f"sha256:{HEX_B}")],
            config=RICH_CONFIG,
            seeds={"torch": 42, "numpy": -7, "python": 9007199254740991},
        ),
        {"code": {"commit": COMMIT, "dirty": False, "uri": URI},
         "data": [{"digest": f"sha256:{HEX_B}", "name": "eval"},
                  {"digest": f"sha256:{HEX_A}", "name": "train"}],
         "config": RICH_CONFIG,
         "seeds": {"numpy": -7, "python": 9007199254740991, "torch": 42}},
        "mlid:sha256:35aef52c29b5bdf3dceed1814d14ee4f5b626bdc20ab9477a8d7fd1dd4c89af0",
    ),
    "dirty": (
        IdentityInputs(code=CodeRef(commit=COMMIT, uri=URI, dirty=True),
                       data=[DataRef(name="train", digest=f"sha256:{HEX_A}")],
                       config={"lr": 0.1}, seeds={"torch": 0}),
        {"code": {"commit": COMMIT, "dirty": True, "uri": URI},
         "data": [{"digest": f"sha256:{HEX_A}", "name": "train"}],
         "config": {"lr": 0.1}, "seeds": {"torch": 0}},
        "mlid:sha256:c189f0a0bca40d1315052a0dab81d776bef84f28fd7a72c7c00ec0ef8fabe5e6",
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_identity_matches_independent_computation(case: str):
    inputs, document, _ = GOLDEN_CASES[case]
    assert inputs.canonical_inputs() == document
    assert compute_identity(inputs) == expected_identity(document)


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_identity_golden_values(case: str):
    """Pinned: any change to the canonical form changes these and must be deliberate."""
    inputs, _, pinned = GOLDEN_CASES[case]
    assert compute_identity(inputs) == pinned


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_identity_golden_canonical_bytes(case: str):
    inputs, document, _ = GOLDEN_CASES[case]
    golden = (GOLDEN / f"{case}.json").read_bytes()
    assert rfc8785.dumps(inputs.canonical_inputs()) == golden
    assert json.loads(golden) == json.loads(json.dumps(document))
    assert compute_identity(inputs) == "mlid:sha256:" + hashlib.sha256(golden).hexdigest()


def test_golden_canonical_form_details():
    golden = (GOLDEN / "full.json").read_bytes()
    # Number forms of RFC 8785 / ECMAScript, and UTF-16 key order, in the hashed bytes.
    assert b'"big":1e+21' in golden
    assert b'"tiny":0.000001' in golden
    assert b'"eps":1e-8' in golden
    assert b'"negative_zero":0' in golden
    keys = [golden.index(f'"{k}":'.encode()) for k in ("z", "\u20ac", "\U0001f600", "\ufb33")
            if f'"{k}":'.encode() in golden]
    assert keys == sorted(keys) and len(keys) == 3
    assert golden.startswith(b'{"code":{"commit":"')
    assert b'": ' not in golden and b', "' not in golden  # no insignificant whitespace
    assert "naïve \u2013 ü 日本 😀".encode() in golden  # raw UTF-8, not \\u escapes


def test_identity_format():
    value = compute_identity(GOLDEN_CASES["minimal"][0])
    assert value.startswith(IDENTITY_PREFIX)
    hexpart = value.removeprefix(IDENTITY_PREFIX)
    assert len(hexpart) == 64 and int(hexpart, 16) >= 0 and hexpart == hexpart.lower()


@pytest.mark.parametrize("change", [
    {"code": CodeRef(commit="1" * 40)},
    {"code": CodeRef(commit=COMMIT, uri="git+https://example.com/other.git")},
    {"code": CodeRef(commit=COMMIT, dirty=True)},
    {"data": [DataRef(name="train", digest=f"sha256:{HEX_B}")]},
    {"data": [DataRef(name="train2", digest=f"sha256:{HEX_A}")]},
    {"config": {"lr": 0.1000001}},
    {"config": {"lr": "0.1"}},
    {"seeds": {"torch": 1}},
    {"seeds": {"torch": 0, "numpy": 0}},
])
def test_every_input_changes_the_identity(change: dict[str, Any]):
    base = {"code": CodeRef(commit=COMMIT),
            "data": [DataRef(name="train", digest=f"sha256:{HEX_A}")],
            "config": {"lr": 0.1}, "seeds": {"torch": 0}}
    assert compute_identity(IdentityInputs(**base)) != \
        compute_identity(IdentityInputs(**{**base, **change}))


def test_dataset_uri_is_not_part_of_identity():
    a = IdentityInputs(code=CodeRef(commit=COMMIT),
                       data=[DataRef(name="d", digest=f"sha256:{HEX_A}", uri="s3://x")])
    b = IdentityInputs(code=CodeRef(commit=COMMIT),
                       data=[DataRef(name="d", digest=f"sha256:{HEX_A}", uri="https://y")])
    assert compute_identity(a) == compute_identity(b)


def test_nan_config_via_api_is_an_input_error():
    inputs = IdentityInputs(code=CodeRef(commit=COMMIT), config={"x": float("nan")})
    with pytest.raises(InputError):
        compute_identity(inputs)


def test_duplicate_dataset_names_rejected():
    data = [DataRef(name="d", digest=f"sha256:{HEX_A}"),
            DataRef(name="d", digest=f"sha256:{HEX_B}")]
    with pytest.raises(InputError, match="share a name"):
        make_inputs(CodeRef(commit=COMMIT), data, {}, {})


@pytest.mark.parametrize("digest", [HEX_A, f"sha256:{HEX_A[:-1]}", f"sha512:{HEX_A}",
                                    f"sha256:{HEX_A.upper()}", f"sha256:{'g' * 64}"])
def test_dataref_digest_form(digest: str):
    with pytest.raises(pydantic.ValidationError):
        DataRef(name="d", digest=digest)


# --- hypothesis: order independence -------------------------------------------------

_JSON_SCALAR = (st.none() | st.booleans()
                | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)
_DATASETS = st.dictionaries(st.text(min_size=1, max_size=8),
                            st.binary(min_size=32, max_size=32).map(bytes.hex), max_size=5)


def _reorder(value: Any, rnd: Any) -> Any:
    """The same value with every dict rebuilt in a shuffled key insertion order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _reorder(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_reorder(v, rnd) for v in value]
    return value


@settings(max_examples=75, deadline=None)
@given(datasets=_DATASETS, config=st.dictionaries(st.text(max_size=6), _JSON, max_size=5),
       seeds=st.dictionaries(st.text(min_size=1, max_size=5),
                             st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                             max_size=4),
       rnd=st.randoms(use_true_random=False))
def test_identity_independent_of_order(datasets: dict[str, str], config: dict[str, Any],
                                       seeds: dict[str, int], rnd: Any):
    refs = [DataRef(name=n, digest=f"sha256:{h}") for n, h in datasets.items()]
    shuffled = list(refs)
    rnd.shuffle(shuffled)
    a = IdentityInputs(code=CodeRef(commit=COMMIT), data=refs, config=config, seeds=seeds)
    b = IdentityInputs(code=CodeRef(commit=COMMIT), data=shuffled,
                       config=_reorder(config, rnd), seeds=_reorder(seeds, rnd))
    assert compute_identity(a) == compute_identity(b)
    document = {"code": {"commit": COMMIT, "dirty": False},
                "data": [{"digest": f"sha256:{datasets[n]}", "name": n}
                         for n in sorted(datasets)],
                "config": config, "seeds": seeds}
    assert compute_identity(a) == expected_identity(document)


# --- data specs ------------------------------------------------------------------------


def test_data_spec_named_uri():
    ref = parse_data_spec(f"train=s3://bucket/data/train@sha256:{HEX_A.upper()}")
    assert ref == DataRef(name="train", digest=f"sha256:{HEX_A}", uri="s3://bucket/data/train")


def test_data_spec_unnamed_uri_is_named_by_uri():
    ref = parse_data_spec(f"hf://datasets/org/set@sha256:{HEX_A}")
    assert (ref.name, ref.uri, ref.sha256) == ("hf://datasets/org/set", "hf://datasets/org/set",
                                               HEX_A)


def test_data_spec_uri_with_equals_sign_is_not_a_name():
    ref = parse_data_spec(f"https://host/get?id=7@sha256:{HEX_A}")
    assert ref.name == ref.uri == "https://host/get?id=7"


@pytest.mark.parametrize("spec", [
    f"train=s3://b/x@sha256:{HEX_A[:-2]}",
    f"train=s3://b/x@sha256:{'z' * 64}",
    f"train=s3://b/x@sha256:{HEX_A}00",
    f"train=@sha256:{HEX_A}",
    f"@sha256:{HEX_A}",
    "s3://b/x@sha256:",
])
def test_data_spec_bad_digest(spec: str):
    with pytest.raises(InputError):
        parse_data_spec(spec)


@pytest.mark.parametrize("spec", ["train=", "", "train=/definitely/not/here", "nope/missing"])
def test_data_spec_missing_or_empty_path(spec: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "cwd-file").write_bytes(b"must not be hashed as a dataset")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError):
        parse_data_spec(spec)


def test_data_spec_local_file(tmp_path: Path):
    f = tmp_path / "train.csv"
    f.write_bytes(b"a,b\n1,2\n")
    ref = parse_data_spec(str(f))
    assert ref.name == "train.csv"
    assert ref.uri is None
    assert ref.sha256 == hash_path(f).root
    # A one-file dataset is named by its manifest root, as a one-file model is.
    assert ref.sha256 == hashlib.sha256(hashlib.sha256(b"a,b\n1,2\n").digest()).hexdigest()
    assert parse_data_spec(f"mydata={f}").name == "mydata"
    assert parse_data_spec(f"mydata={f}").digest == ref.digest


def test_data_spec_local_directory(tmp_path: Path):
    d = tmp_path / "shards"
    d.mkdir()
    (d / "0.parquet").write_bytes(b"zero")
    (d / "1.parquet").write_bytes(b"one")
    ref = parse_data_spec(f"train={d}")
    assert ref == DataRef(name="train", digest=f"sha256:{hash_path(d).root}")
    (d / "1.parquet").write_bytes(b"changed")
    assert parse_data_spec(f"train={d}").digest != ref.digest


def test_data_spec_directory_with_symlink(tmp_path: Path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "real").write_bytes(b"r")
    (d / "link").symlink_to("real")
    with pytest.raises(UnsafePathError):
        parse_data_spec(str(d))
    assert parse_data_spec(str(d), allow_symlinks=True).digest.startswith("sha256:")


def test_duplicate_dataset_names_from_specs_rejected(tmp_path: Path):
    specs = [f"train=s3://a@sha256:{HEX_A}", f"train=s3://b@sha256:{HEX_B}"]
    with pytest.raises(InputError):
        make_inputs(CodeRef(commit=COMMIT), [parse_data_spec(s) for s in specs], {}, {})


# --- configs ---------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_configs_merges_yaml_json_toml_later_wins(tmp_path: Path):
    base = write(tmp_path / "base.yaml",
                 "model:\n  layers: 2\n  hidden: 16\n  act: relu\nlr: 0.1\ntags: [a, b]\n")
    over = write(tmp_path / "over.json",
                 '{"model": {"hidden": 32, "dropout": 0.1}, "tags": ["c"], "lr": 0.01}')
    last = write(tmp_path / "last.toml", '[model]\nact = "gelu"\n[extra]\nk = 1\n')
    merged = load_configs([base, over, last])
    assert merged == {
        "model": {"layers": 2, "hidden": 32, "act": "gelu", "dropout": 0.1},
        "lr": 0.01,
        "tags": ["c"],          # lists are replaced, not concatenated
        "extra": {"k": 1},
    }
    # Reversing the order lets the other files win.
    assert load_configs([last, over, base])["model"] == {"layers": 2, "hidden": 16,
                                                         "act": "relu", "dropout": 0.1}


def test_load_configs_mapping_replaces_scalar_and_back(tmp_path: Path):
    a = write(tmp_path / "a.json", '{"x": 1, "y": {"z": 1}}')
    b = write(tmp_path / "b.json", '{"x": {"nested": true}, "y": 5}')
    assert load_configs([a, b]) == {"x": {"nested": True}, "y": 5}


def test_load_configs_does_not_mutate_earlier_documents(tmp_path: Path):
    a = write(tmp_path / "a.json", '{"m": {"a": 1}}')
    b = write(tmp_path / "b.json", '{"m": {"b": 2}}')
    assert load_configs([a]) == {"m": {"a": 1}}
    assert load_configs([a, b]) == {"m": {"a": 1, "b": 2}}


def test_load_configs_empty_list():
    assert load_configs([]) == {}


def test_toml_dates_become_iso_strings(tmp_path: Path):
    toml = write(tmp_path / "c.toml",
                 "day = 1979-05-27\n"
                 "odt = 1979-05-27T07:32:00-08:00\n"
                 "ldt = 1979-05-27T07:32:00\n"
                 "time = 07:32:00\n"
                 "[nested]\nwhen = [2024-01-02]\n")
    assert load_configs([toml]) == {
        "day": "1979-05-27",
        "odt": "1979-05-27T07:32:00-08:00",
        "ldt": "1979-05-27T07:32:00",
        "time": "07:32:00",
        "nested": {"when": ["2024-01-02"]},
    }


def test_yaml_dates_become_iso_strings(tmp_path: Path):
    assert load_configs([write(tmp_path / "c.yml", "day: 2024-03-01\n")]) == \
        {"day": "2024-03-01"}


@pytest.mark.parametrize(("name", "text"), [
    ("list.yaml", "- a\n- b\n"),
    ("scalar.yaml", "42\n"),
    ("empty.yaml", ""),
    ("list.json", "[1, 2]"),
    ("string.json", '"x"'),
])
def test_non_mapping_top_level_rejected(tmp_path: Path, name: str, text: str):
    with pytest.raises(InputError, match="not a mapping"):
        load_configs([write(tmp_path / name, text)])


@pytest.mark.parametrize(("name", "text"), [
    ("nan.yaml", "lr: .nan\n"),
    ("inf.yaml", "lr: .inf\n"),
    ("nan.json", '{"lr": NaN}'),
    ("inf.json", '{"lr": -Infinity}'),
    ("overflow.json", '{"lr": 1e400}'),
    ("nan.toml", "lr = nan\n"),
    ("inf.toml", "lr = inf\n"),
    ("nested.yaml", "a:\n  b: [1, .nan]\n"),
    ("bigint.yaml", "seed: 9007199254740993\n"),
])
def test_nan_infinity_and_unsafe_numbers_rejected(tmp_path: Path, name: str, text: str):
    with pytest.raises(InputError):
        load_configs([write(tmp_path / name, text)])


@pytest.mark.parametrize(("name", "text"), [
    ("bad.json", '{"a": '),
    ("bad.toml", "a = \n"),
    ("bad.yaml", "a: [1, 2\n"),
    ("tag.yaml", "a: !!python/object/apply:os.system ['true']\n"),
    ("intkey.yaml", "1: one\n"),
    ("dup.json", '{"a": 1, "a": 2}'),
    ("set.yaml", "a: !!set {x, y}\n"),
    ("binary.yaml", "a: !!binary aGVsbG8=\n"),
])
def test_malformed_configs_rejected(tmp_path: Path, name: str, text: str):
    with pytest.raises(InputError):
        load_configs([write(tmp_path / name, text)])


def test_config_unreadable_or_not_utf8(tmp_path: Path):
    with pytest.raises(InputError):
        load_configs([tmp_path / "missing.yaml"])
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError):
        load_configs([bad])


def test_config_deep_nesting_is_an_input_error(tmp_path: Path):
    deep = write(tmp_path / "deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(InputError):
        load_configs([deep])


def test_config_feeds_identity_like_its_values(tmp_path: Path):
    """The same values in YAML, JSON and TOML give the same identity."""
    y = write(tmp_path / "c.yaml", "lr: 0.5\nlayers: 2\nname: x\nopt:\n  beta: [0.9, 0.99]\n")
    j = write(tmp_path / "c.json", '{"opt": {"beta": [0.9, 0.99]}, "name": "x", "layers": 2, '
                                   '"lr": 0.5}')
    t = write(tmp_path / "c.toml", 'name = "x"\nlayers = 2\nlr = 0.5\n[opt]\nbeta = [0.9, 0.99]\n')
    ids = {compute_identity(IdentityInputs(code=CodeRef(commit=COMMIT), config=load_configs([p])))
           for p in (y, j, t)}
    assert len(ids) == 1


# --- seeds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("torch=42", ("torch", 42)),
    ("numpy=-7", ("numpy", -7)),
    ("x=0", ("x", 0)),
    ("python.random=007", ("python.random", 7)),
    (f"max={2**53 - 1}", ("max", 2**53 - 1)),
    (f"min=-{2**53 - 1}", ("min", -(2**53 - 1))),
])
def test_parse_seed(spec: str, expected: tuple[str, int]):
    assert parse_seed(spec) == expected


@pytest.mark.parametrize("spec", [
    "42", "=5", "x=", "x=abc", "x=1.5", "x=1e3", "x= 5", "x=5 ", "x=1_000", "x=\u0663",
    "x=0x10", f"x={2**53}", f"x=-{2**53}", "x=+",
])
def test_parse_seed_rejects(spec: str):
    with pytest.raises(InputError):
        parse_seed(spec)


# --- code: commits and git repositories --------------------------------------------------


def test_code_from_commit_normalises():
    assert code_from_commit(f"  {COMMIT.upper()}\n") == CodeRef(commit=COMMIT)
    assert code_from_commit(COMMIT, uri=URI).uri == URI
    assert code_from_commit("a" * 64).commit == "a" * 64  # SHA-256 object format


@pytest.mark.parametrize("commit", ["abc123", COMMIT[:-1], COMMIT + "0", "g" * 40, "", "HEAD"])
def test_code_from_commit_rejects(commit: str):
    with pytest.raises(IdentityError):
        code_from_commit(commit)
    with pytest.raises(pydantic.ValidationError):
        CodeRef(commit=commit)


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolate git from the user's config and from any repository above tmp_path."""
    env = {
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    return env


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, git_env: dict[str, str]) -> Path:
    root = tmp_path / "code"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_code_from_repo_reads_head(repo: Path):
    code = code_from_repo(repo)
    assert code.commit == git(repo, "rev-parse", "HEAD")
    assert len(code.commit) == 40
    assert code.uri is None
    assert code.dirty is False
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-q", "-am", "second")
    assert code_from_repo(repo).commit == git(repo, "rev-parse", "HEAD") != code.commit


@pytest.mark.parametrize(("remote", "uri"), [
    ("https://github.com/org/repo.git", "git+https://github.com/org/repo.git"),
    ("https://user:s3cret@github.com/org/repo.git", "git+https://github.com/org/repo.git"),
    ("https://x-access-token:ghp_abc@github.com/org/repo", "git+https://github.com/org/repo"),
    ("git@github.com:org/repo.git", "git+https://github.com/org/repo.git"),
    ("ssh://git@gitlab.example.com:2222/grp/sub/repo.git",
     "git+https://gitlab.example.com/grp/sub/repo.git"),
    ("git+https://github.com/org/repo", "git+https://github.com/org/repo"),
])
def test_origin_remote_normalised(repo: Path, remote: str, uri: str):
    git(repo, "remote", "add", "origin", remote)
    code = code_from_repo(repo)
    assert code.uri == uri
    assert "s3cret" not in code.model_dump_json()
    assert "ghp_abc" not in code.model_dump_json()


def test_other_remotes_are_not_origin(repo: Path):
    git(repo, "remote", "add", "upstream", "https://github.com/up/repo.git")
    assert code_from_repo(repo).uri is None


def test_dirty_tracked_change_refused_unless_allowed(repo: Path):
    clean = code_from_repo(repo)
    (repo / "train.py").write_text("print('edited')\n")
    with pytest.raises(IdentityError, match="uncommitted changes"):
        code_from_repo(repo)
    dirty = code_from_repo(repo, allow_dirty=True)
    assert dirty.dirty is True
    assert dirty.commit == clean.commit
    assert compute_identity(IdentityInputs(code=dirty)) != \
        compute_identity(IdentityInputs(code=clean))
    assert IdentityInputs(code=dirty).canonical_inputs()["code"]["dirty"] is True


def test_staged_and_deleted_files_are_dirty(repo: Path):
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    with pytest.raises(IdentityError):
        code_from_repo(repo)
    git(repo, "reset", "-q")
    (repo / "new.py").unlink()
    (repo / "train.py").unlink()
    with pytest.raises(IdentityError):
        code_from_repo(repo)


def test_untracked_files_are_not_dirty(repo: Path):
    (repo / "outputs").mkdir()
    (repo / "outputs" / "model.bin").write_bytes(b"weights")
    (repo / "notes.txt").write_text("untracked\n")
    code = code_from_repo(repo)
    assert code.dirty is False
    assert code == code_from_repo(repo, allow_dirty=True)


def test_non_repo_dir_is_an_identity_error(tmp_path: Path, git_env: dict[str, str]):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(IdentityError, match="not a git work tree"):
        code_from_repo(plain)


def test_missing_dir_is_an_identity_error(tmp_path: Path, git_env: dict[str, str]):
    with pytest.raises(IdentityError):
        code_from_repo(tmp_path / "missing")


def test_repo_without_commits_is_an_identity_error(tmp_path: Path, git_env: dict[str, str]):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(IdentityError):
        code_from_repo(empty)


# --- CLI -------------------------------------------------------------------------------


def _assert_one_line_error(r, code: int = 3) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_cli_identity_json(run_cli, tmp_path: Path):
    cfg = write(tmp_path / "train.yaml", "lr: 0.001\nmodel: {layers: 2}\n")
    over = write(tmp_path / "over.toml", "[model]\nlayers = 4\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "x.csv").write_bytes(b"1,2\n")
    r = run_cli("identity", "--commit", COMMIT, "--data", f"train=s3://b/t@sha256:{HEX_A}",
                "--data", f"local={data_dir}", "--config", str(cfg), "--config", str(over),
                "--seed", "torch=1", "--seed", "numpy=2", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"].startswith("https://")
    assert doc["inputs"] == {
        "code": {"commit": COMMIT, "dirty": False},
        "data": [{"digest": f"sha256:{hash_path(data_dir).root}", "name": "local"},
                 {"digest": f"sha256:{HEX_A}", "name": "train"}],
        "config": {"lr": 0.001, "model": {"layers": 4}},
        "seeds": {"numpy": 2, "torch": 1},
    }
    # Anyone can recompute the identity from the printed inputs.
    assert doc["identity"] == expected_identity(doc["inputs"])
    r2 = run_cli("identity", "--commit", COMMIT, "--data", f"local={data_dir}",
                 "--data", f"train=s3://b/t@sha256:{HEX_A}", "--seed", "numpy=2",
                 "--seed", "torch=1", "--config", str(cfg), "--config", str(over))
    assert r2.exit_code == 0, r2.stderr
    assert r2.stdout == doc["identity"] + "\n"


def test_cli_identity_text_minimal(run_cli):
    r = run_cli("identity", "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == GOLDEN_CASES["minimal"][2]


def test_cli_identity_from_repo(run_cli, repo: Path):
    git(repo, "remote", "add", "origin", "git@github.com:org/repo.git")
    r = run_cli("identity", "--repo", str(repo), "--json")
    assert r.exit_code == 0, r.stderr
    code = json.loads(r.stdout)["inputs"]["code"]
    assert code == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False,
                    "uri": "git+https://github.com/org/repo.git"}
    (repo / "train.py").write_text("edited\n")
    _assert_one_line_error(run_cli("identity", "--repo", str(repo)))
    r = run_cli("identity", "--repo", str(repo), "--allow-dirty", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["inputs"]["code"]["dirty"] is True


@pytest.mark.parametrize("args", [
    ["--commit", "abc"],
    ["--commit", COMMIT, "--data", f"t=s3://b@sha256:{HEX_A[:10]}"],
    ["--commit", COMMIT, "--data", "t=/no/such/path"],
    ["--commit", COMMIT, "--data", "t="],
    ["--commit", COMMIT, "--data", f"t=s3://a@sha256:{HEX_A}", "--data", f"t=s3://b@sha256:{HEX_B}"],
    ["--commit", COMMIT, "--seed", "torch=abc"],
    ["--commit", COMMIT, "--seed", "torch"],
])
def test_cli_identity_errors(run_cli, args: list[str]):
    _assert_one_line_error(run_cli("identity", *args))


def test_cli_identity_config_errors(run_cli, tmp_path: Path):
    for name, text in [("nan.yaml", "lr: .nan\n"), ("list.json", "[1]"), ("bad.toml", "=\n")]:
        _assert_one_line_error(run_cli("identity", "--commit", COMMIT, "--config",
                                       str(write(tmp_path / name, text))))


def test_cli_identity_non_repo(run_cli, tmp_path: Path, git_env: dict[str, str]):
    plain = tmp_path / "plain"
    plain.mkdir()
    _assert_one_line_error(run_cli("identity", "--repo", str(plain)))


def test_identity_with_large_float_config_survives_attest_and_verify(
        run_cli, make_key, model_dir: Path, tmp_path: Path):
    """RFC 8785 writes 1e20 as 100000000000000000000; verify must still recompute the identity."""
    key = make_key()
    cfg = write(tmp_path / "cfg.yaml", "max_tokens: 1.0e+20\nscale: 3.180704217906875e+16\n")
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT, "--config", str(cfg))
    assert r.exit_code == 0, r.stderr
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 0, r.stderr
