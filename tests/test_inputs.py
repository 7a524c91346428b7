"""The pydantic-free identity inputs (mlprov._internal.inputs) and the models agree.

On plain values (exact ``str``, ``int``, ``bool``, lists of datasets, dicts keyed by
``str``), the twins accept exactly what ``CodeRef`` / ``DataRef`` / ``IdentityInputs``
accept, refuse with pydantic's first error (location and text), and yield the same
fields, canonical inputs and identity. Values the models coerce in lax mode (``"5"``
or ``True`` as a seed, ``b"..."`` as text, ``"yes"`` as ``dirty``) are refused by the
twins: fail closed. Hostile values throughout: NUL, lone surrogates, empty strings,
integers beyond 2**53, NaN, nested and non-str keys, duplicate names.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlprov._internal import inputs as plain
from mlprov._internal.inputs import Code, Dataset, Inputs, InputsRefused
from mlprov.attestation import make_inputs
from mlprov.errors import IdentityError, InputError, MlprovError
from mlprov.identity import (
    CodeRef,
    DataRef,
    IdentityInputs,
    code_from_commit,
    code_from_repo,
    compute_identity,
    parse_data_spec,
)
from tests.conftest import COMMIT

HEX = "ab" * 32
BAD_TEXT = ["", "\x00", "\ud800", "x\udc00y", " ", "\n", "é", "\u2028"]
texts = st.one_of(st.text(max_size=6), st.sampled_from(BAD_TEXT))
commits = st.one_of(
    st.sampled_from([COMMIT, "c" * 64, COMMIT.upper(), COMMIT + "\n", " " + COMMIT,
                     COMMIT[:-1], "g" * 40, COMMIT + "\x00", "\ud800" * 40]),
    st.text(alphabet="0123456789abcdefABCDEF\x00\ud800", min_size=39, max_size=65), texts)
digests = st.one_of(
    st.sampled_from([f"sha256:{HEX}", f"sha256:{HEX.upper()}", f"SHA256:{HEX}", HEX,
                     f"sha256:{HEX}\n", f"sha256:{HEX[:-1]}", f"sha512:{HEX}",
                     f"sha256:{HEX[:-1]}\ud800", "sha256:"]),
    texts.map(lambda t: "sha256:" + t))
not_plain = st.one_of(st.binary(max_size=4), st.integers(-2, 2), st.floats(allow_nan=False),
                      st.none(), st.booleans(), st.lists(st.integers(), max_size=1),
                      texts.map(lambda t: type("Sub", (str,), {})(t)))
optional_uri = st.one_of(st.none(), texts, st.just("git+https://example.com/org/repo.git"))
names = st.one_of(st.sampled_from(["a", "b", "train", "train", "é"]), texts)


def plain_text(value: object) -> bool:
    return type(value) is str


def model_outcome(model: Any, **values: Any) -> tuple[tuple[Any, ...], str] | Any:
    """The model built from ``values``, or pydantic's first error as (loc, msg)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        return tuple(first["loc"]), first["msg"]


def twin_outcome(twin: Any, **values: Any) -> tuple[tuple[Any, ...], str] | Any:
    try:
        return twin(**values)
    except InputsRefused as exc:
        assert str(exc) == MlprovError(
            f"identity inputs: {exc.msg.removeprefix('Value error, ')}").args[0]
        return exc.loc, exc.msg


# -- Code / CodeRef ------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(commit=st.one_of(commits, not_plain), uri=st.one_of(optional_uri, not_plain),
       dirty=st.one_of(st.booleans(), not_plain, st.sampled_from(["yes", "true", "0"])))
def test_code_agrees_with_coderef(commit: Any, uri: Any, dirty: Any) -> None:
    twin = twin_outcome(Code, commit=commit, uri=uri, dirty=dirty)
    if not (plain_text(commit) and (uri is None or plain_text(uri)) and type(dirty) is bool):
        assert isinstance(twin, tuple)  # refused: the model's coercions are not copied
        return
    model = model_outcome(CodeRef, commit=commit, uri=uri, dirty=dirty)
    if isinstance(model, tuple):
        assert twin == model
    else:
        assert isinstance(twin, Code)
        assert (twin.commit, twin.uri, twin.dirty) == (model.commit, model.uri, model.dirty)
        assert twin.to_json_dict() == model.to_json_dict()
        assert list(twin.to_json_dict()) == list(model.to_json_dict())


def test_code_refuses_what_coderef_coerces() -> None:
    for values in ({"commit": COMMIT.encode()}, {"commit": COMMIT, "dirty": "yes"},
                   {"commit": COMMIT, "dirty": 1}, {"commit": COMMIT, "uri": b"x"}):
        assert not isinstance(model_outcome(CodeRef, **values), tuple)
        with pytest.raises(InputsRefused):
            Code(**values)


# -- Dataset / DataRef ---------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(name=st.one_of(names, not_plain), digest=st.one_of(digests, not_plain),
       uri=st.one_of(optional_uri, not_plain))
def test_dataset_agrees_with_dataref(name: Any, digest: Any, uri: Any) -> None:
    twin = twin_outcome(Dataset, name=name, digest=digest, uri=uri)
    if not (plain_text(name) and plain_text(digest) and (uri is None or plain_text(uri))):
        assert isinstance(twin, tuple)
        return
    model = model_outcome(DataRef, name=name, digest=digest, uri=uri)
    if isinstance(model, tuple):
        assert twin == model
    else:
        assert isinstance(twin, Dataset)
        assert (twin.name, twin.digest, twin.uri, twin.sha256) == \
            (model.name, model.digest, model.uri, model.sha256)


# -- Inputs / IdentityInputs ---------------------------------------------------------------

keys = st.one_of(texts, st.integers(-1, 1), st.none(), st.binary(max_size=2))
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts,
                   st.sampled_from([2**53, -(2**53), 2**64, 10**400, b"raw", (1, 2)]))
config_values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
configs = st.one_of(st.dictionaries(texts, config_values, max_size=3),
                    st.dictionaries(keys, config_values, max_size=2))
seed_values = st.one_of(st.integers(), st.sampled_from([2**53 - 1, 2**53, -(2**63), 10**30]),
                        st.booleans(), st.floats(), st.sampled_from(["5", " 5", "x", b"5"]))
seeds = st.dictionaries(st.one_of(texts, keys), seed_values, max_size=3)
datasets = st.lists(st.builds(Dataset, name=st.sampled_from(["a", "b", "c", "train", "é"]),
                              digest=st.sampled_from([f"sha256:{HEX}", f"sha256:{'cd' * 32}"]),
                              uri=st.one_of(st.none(), st.just("hf://x"))), max_size=4)
codes = st.builds(Code, commit=st.sampled_from([COMMIT, "c" * 64]), uri=optional_uri,
                  dirty=st.booleans())


def model_of(code: Code, data: list[Dataset]) -> tuple[CodeRef, list[DataRef]]:
    return (CodeRef(commit=code.commit, uri=code.uri, dirty=code.dirty),
            [DataRef(name=d.name, digest=d.digest, uri=d.uri) for d in data])


def same(left: Any, right: Any) -> bool:
    """Equal, NaN included (``repr`` keeps key order, and ``nan`` reads alike)."""
    return repr(left) == repr(right)


def identity_outcome(inputs: Any, compute: Any) -> str:
    try:
        return str(compute(inputs))
    except InputError as exc:
        return f"refused: {exc}"


@settings(max_examples=400, deadline=None)
@given(code=codes, data=datasets, config=configs, seeds=seeds)
def test_inputs_agree_with_identity_inputs(code: Code, data: list[Dataset],
                                           config: dict[Any, Any], seeds: dict[Any, Any]) -> None:
    twin = twin_outcome(Inputs, code=code, data=data, config=config, seeds=seeds)
    code_ref, data_refs = model_of(code, data)
    if not (all(plain_text(k) for k in config) and all(plain_text(k) for k in seeds)
            and all(type(v) is int for v in seeds.values())):
        assert isinstance(twin, tuple)
        return
    model = model_outcome(IdentityInputs, code=code_ref, data=data_refs, config=config,
                          seeds=seeds)
    if isinstance(model, tuple):
        assert twin == model
        with pytest.raises(InputError) as refused:
            make_inputs(code_ref, data_refs, config, seeds)
        with pytest.raises(InputsRefused) as twin_refused:
            Inputs(code=code, data=tuple(data), config=config, seeds=seeds)
        assert str(twin_refused.value) == str(refused.value)
        return
    assert isinstance(twin, Inputs)
    assert same(twin.canonical_inputs(), model.canonical_inputs())
    assert [d.name for d in twin.data] == [d.name for d in model.data]
    assert [d.uri for d in twin.data] == [d.uri for d in model.data]
    assert identity_outcome(twin, plain.compute_identity) == \
        identity_outcome(model, compute_identity) == identity_outcome(model, plain.compute_identity)
    # The conversions both ways.
    assert same(IdentityInputs.model_validate(twin, from_attributes=True), model)
    assert Inputs.from_model(model) == twin


def test_inputs_refuse_what_identity_inputs_coerce() -> None:
    code = Code(commit=COMMIT)
    code_ref = CodeRef(commit=COMMIT)
    for seeds in ({"a": True}, {"a": "5"}, {"a": 5.0}, {b"a": 5}):
        assert IdentityInputs(code=code_ref, seeds=seeds).seeds in ({"a": 1}, {"a": 5})
        with pytest.raises(InputsRefused, match="identity inputs: seeds"):
            Inputs(code=code, seeds=seeds)
    with pytest.raises(InputsRefused, match="identity inputs: code must be a Code"):
        Inputs(code=code_ref)  # type: ignore[arg-type]
    with pytest.raises(InputsRefused, match="data must be a list of Dataset"):
        Inputs(code=code, data=[DataRef(name="a", digest=f"sha256:{HEX}")])  # type: ignore[list-item]


def test_inputs_keep_their_own_copies_sorted() -> None:
    config: dict[str, Any] = {"lr": 0.1}
    seeds = {"torch": 7}
    data = [Dataset(name="b", digest=f"sha256:{HEX}"), Dataset(name="a", digest=f"sha256:{HEX}")]
    inputs = Inputs(code=Code(commit=COMMIT), data=tuple(data), config=config, seeds=seeds)
    config["lr"] = 0.2
    seeds["torch"] = 8
    assert inputs.config == {"lr": 0.1}
    assert inputs.seeds == {"torch": 7}
    assert [d.name for d in inputs.data] == ["a", "b"]
    assert isinstance(inputs.data, tuple)
    with pytest.raises(AttributeError):
        inputs.seeds = {}  # type: ignore[misc]


def test_duplicate_names_worded_as_make_inputs() -> None:
    pair = (Dataset(name="a", digest=f"sha256:{HEX}"), Dataset(name="a", digest=f"sha256:{HEX}"))
    with pytest.raises(InputsRefused) as twin:
        Inputs(code=Code(commit=COMMIT), data=pair)
    with pytest.raises(InputError) as model:
        make_inputs(CodeRef(commit=COMMIT), list(model_of(Code(commit=COMMIT), list(pair))[1]),
                    {}, {})
    assert str(twin.value) == str(model.value) == \
        "identity inputs: two datasets share a name"


def test_identity_of_big_and_odd_values_is_refused_alike() -> None:
    for config in ({"n": 2**53}, {"x": math.nan}, {"x": b"raw"}, {"x": {1: 2}}):
        twin = Inputs(code=Code(commit=COMMIT), config=config)
        model = IdentityInputs(code=CodeRef(commit=COMMIT), config=config)
        assert identity_outcome(twin, plain.compute_identity).startswith("refused: ")
        assert identity_outcome(twin, plain.compute_identity) == \
            identity_outcome(model, compute_identity)


# -- where inputs come from ----------------------------------------------------------------

def error_or_value(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        found = call(*args, **kwargs)
    except MlprovError as exc:
        return type(exc), str(exc), exc.diagnostics()
    return {k: getattr(found, k) for k in ("commit", "uri", "dirty", "name", "digest")
            if hasattr(found, k)}


@settings(max_examples=300, deadline=None)
@given(commit=st.one_of(commits, commits.map(lambda c: f" {c.upper()}\t")), uri=optional_uri)
def test_code_from_commit_agrees(commit: str, uri: str | None) -> None:
    assert error_or_value(plain.code_from_commit, commit, uri) == \
        error_or_value(code_from_commit, commit, uri)
    twin = error_or_value(plain.code_from_commit, commit, uri)
    if isinstance(twin, tuple):
        assert twin[0] is IdentityError


pinned = st.builds(lambda name, uri, sep, hexdigest: f"{name}{uri}{sep}{hexdigest}",
                   st.sampled_from(["", "train=", "bad name=", "=", "a=b="]),
                   st.one_of(texts, st.sampled_from(["hf://datasets/acme/x", "s3://b/k@v"])),
                   st.sampled_from(["@sha256:", "@SHA256:", "@sha256:@sha256:", "@"]),
                   st.one_of(st.sampled_from([HEX, HEX.upper(), HEX[:-1], HEX + "\x00"]),
                             texts))


@settings(max_examples=300, deadline=None)
@given(spec=pinned)
def test_parse_data_spec_pinned_agrees(spec: str) -> None:
    # Every spec holds "@": a path is looked up only when it names no pinned URI, and
    # then relative to this directory, which must not be hashed whole.
    twin = error_or_value(plain.parse_data_spec, spec)
    public = error_or_value(parse_data_spec, spec)
    assert twin == public
    if isinstance(twin, tuple):
        assert twin[0] is InputError


@pytest.mark.parametrize("spec", ["data.csv", "d=data.csv", "tree", "missing", "", "d=",
                                  "x\x00y", "\udcff.csv", "n=\udcff.csv", "a" * 5000])
def test_parse_data_spec_paths_agree(spec: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "part").write_bytes(b"\x00" * 10)
    try:
        (tmp_path / "\udcff.csv").write_text("x")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system cannot hold an undecodable name")
    assert error_or_value(plain.parse_data_spec, spec) == error_or_value(parse_data_spec, spec)


def test_undecodable_dataset_name_is_an_input_error(tmp_path: Path) -> None:
    # A URI from undecodable argv bytes names the dataset: no DataRef can hold it.
    for call in (plain.parse_data_spec, parse_data_spec):
        with pytest.raises(InputError, match="is not valid Unicode text"):
            call(f"hf://x/\udcff@sha256:{HEX}")
    found = parse_data_spec(f"n=hf://x/\udcff@sha256:{HEX}")
    assert found.uri == "hf://x/\udcff"


def test_code_from_repo_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "code"
    root.mkdir()
    assert error_or_value(plain.code_from_repo, root) == error_or_value(code_from_repo, root)
    for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", "git@h.io:o/r.git"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    (root / "train.py").write_text("x\n")
    subprocess.run(["git", "-C", str(root), "add", "train.py"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "c"], check=True)
    (root / "train.py").write_text("y\n")
    assert error_or_value(plain.code_from_repo, root) == error_or_value(code_from_repo, root)
    found = error_or_value(plain.code_from_repo, root, allow_dirty=True)
    assert found == error_or_value(code_from_repo, root, allow_dirty=True)
    assert found["dirty"] is True
    assert found["uri"] == "git+https://h.io/o/r.git"


# -- no pydantic ---------------------------------------------------------------------------

def test_the_plain_path_imports_no_pydantic(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a\n")
    script = f"""
import sys
from mlprov._internal import inputs as p
code = p.code_from_commit({COMMIT!r})
data = (p.parse_data_spec({str(tmp_path / "data.csv")!r}),
        p.parse_data_spec("hf://d/x@sha256:{HEX}"))
inputs = p.Inputs(code=code, data=data, config={{"lr": 0.1}}, seeds={{"torch": 7}})
assert p.compute_identity(inputs).startswith("mlid:sha256:")
for bad in (lambda: p.Inputs(code=code, data=data + data[:1]),
            lambda: p.code_from_commit("x"), lambda: p.Dataset(name="", digest="x")):
    try:
        bad()
    except p.InputError:
        pass
print(sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "[]", done.stderr
