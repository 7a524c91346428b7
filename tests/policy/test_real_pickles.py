"""Real ML pickles pass the shipped production gate; gadgets do not (issue 11, item 3).

The scikit-learn models are real and tiny, trained here and saved with ``pickle``,
``joblib.dump`` (plain and compressed) and ``cloudpickle`` (what
``mlflow.sklearn.save_model`` writes by default). The PyTorch file is ``torch.save``'s
zip layout built byte by byte (torch is not installed). The dangerous globals are the
peer scanners' lists (``data/dangerous_pickle_globals.txt``), each built from opcodes.
Nothing here is ever unpickled.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlprov
from mlprov.policy import build_input, load_policy, load_policy_data, shipped_policies_dir
from mlprov.reviews import make_review, verify_reviews
from mlprov.scanning import scan_model, scan_verified_model
from mlprov.signing import load_private_key
from tests.policy.conftest import attest_model

POLICIES = shipped_policies_dir()
DANGEROUS = Path(__file__).parent / "data" / "dangerous_pickle_globals.txt"


def text(value: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def binunicode(value: str) -> bytes:
    """BINUNICODE (what protocol 2 writes for a str)."""
    raw = value.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def sklearn_pickles() -> dict[str, bytes]:
    """Tiny real models, saved the ways scikit-learn users save them."""
    import cloudpickle
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    mixed = np.concatenate([x, np.array(["a", "b", "c", "a"] * 10, dtype=object)[:, None]],
                           axis=1)
    prep = ColumnTransformer([("num", StandardScaler(), [0, 1, 2]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), [3])])
    models = {
        "logistic": LogisticRegression().fit(x, y),
        "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y),
        "pipeline": Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(mixed, y),
        "seeded": LogisticRegression(random_state=np.random.RandomState(0)).fit(x, y),
    }
    files: dict[str, bytes] = {}
    for name, model in models.items():
        files[f"{name}.pkl"] = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        files[f"{name}.cloudpickle.pkl"] = cloudpickle.dumps(model)
        for suffix, compress in (("", 0), (".z", 3), (".gz", ("gzip", 3))):
            buffer = io.BytesIO()
            joblib.dump(model, buffer, compress=compress)
            files[f"{name}{suffix}.joblib"] = buffer.getvalue()
    files.update(mlflow_sklearn_model(models["pipeline"]))
    return files


def mlflow_sklearn_model(model: Any) -> dict[str, bytes]:
    """``mlflow.sklearn.save_model(..., serialization_format="cloudpickle")``, for real.

    MLflow 3.18 defaults to skops; the seed's code (and MLflow before 3.18) saves
    with cloudpickle, which is what the gate has to admit. Every file MLflow writes
    (``MLmodel``, ``conda.yaml``, ``requirements.txt``, ``model.pkl``) goes in.
    """
    import tempfile

    import mlflow.sklearn

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mlflow-model"
        mlflow.sklearn.save_model(model, str(out), serialization_format="cloudpickle")
        return {f"mlflow/{p.relative_to(out).as_posix()}": p.read_bytes()
                for p in sorted(out.rglob("*")) if p.is_file()}


def torch_state_dict_pt() -> bytes:
    """``torch.save(model.state_dict(), f)`` of a Linear(3, 2), as torch 2.x writes it.

    The layout follows torch/serialization.py (``_save``): ``archive/data.pkl``, a
    protocol 2 pickle whose tensors are ``torch._utils._rebuild_tensor_v2`` of a
    persistent ``('storage', torch.FloatStorage, key, 'cpu', numel)``; each storage in
    ``archive/data/<key>``; ``.format_version``, ``.storage_alignment``, ``byteorder``,
    ``version`` and ``.data/serialization_id`` records.
    """
    def glob(module: str, name: str) -> bytes:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def tensor(key: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
        ints = b"".join(b"K" + bytes([d]) for d in size)
        strides = b"".join(b"K" + bytes([d]) for d in stride)
        return (glob("torch._utils", "_rebuild_tensor_v2")
                + b"(" + b"(" + binunicode("storage") + glob("torch", "FloatStorage")
                + binunicode(key) + binunicode("cpu") + b"K" + bytes([numel]) + b"tQ"
                + b"K\x00" + b"(" + ints + b"t" + b"(" + strides + b"t" + b"\x89"
                + glob("collections", "OrderedDict") + b")R" + b"tR")

    metadata = (glob("collections", "OrderedDict") + b")R" + b"(" + binunicode("")
                + b"}" + b"(" + binunicode("version") + b"K\x01" + b"u" + b"u")
    data_pkl = (b"\x80\x02" + glob("collections", "OrderedDict") + b")R"
                + b"(" + binunicode("weight") + tensor("0", 6, (2, 3), (3, 1))
                + binunicode("bias") + tensor("1", 2, (2,), (1,)) + b"u"
                + b"}" + binunicode("_metadata") + metadata + b"s" + b"b" + b".")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/.format_version", "1")
        archive.writestr("archive/.storage_alignment", "64")
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", bytes(24))
        archive.writestr("archive/data/1", bytes(8))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/.data/serialization_id", "1234567890")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def real_files() -> dict[str, bytes]:
    return {**sklearn_pickles(), "linear.pt": torch_state_dict_pt()}


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded during a scan")

    for name in ("load", "loads", "Unpickler", "_Unpickler", "_load", "_loads"):
        monkeypatch.setattr(pickle, name, refuse)


def production(document: dict[str, Any], data: dict[str, Any] | None = None):
    return load_policy(POLICIES / "production.rego").evaluate(document, data)


def with_scan(base: dict[str, Any], model: Path) -> dict[str, Any]:
    """The passing production input with the scan of ``model`` in place of its own."""
    document = copy.deepcopy(base)
    scan = scan_model(model).to_json_dict()
    document["scan"]["files"] = scan["files"]
    document["scan"]["findings"] = scan["findings"]
    return document


# --- real pickles pass ----------------------------------------------------------------------

def test_real_ml_pickles_pass_the_shipped_production_gate(lab, real_files, tmp_path: Path):
    attested = attest_model(lab, tmp_path, extra=real_files)
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    assert verdict.verified
    review = tmp_path / "r.json"
    review.write_bytes(make_review(verdict, signer=load_private_key(lab.key("alice")),
                                   reviewer="alice", decision="approve", comment="ok"))
    reviews = verify_reviews([review], lab.trust, verdict=verdict)
    scan = scan_verified_model(attested.model, verdict)
    document = build_input(verdict, reviews=reviews, scan=scan)
    scanned = {f.path: f for f in scan.files}
    # Every pickle is scanned (MLflow's MLmodel and YAML files are text, skipped).
    assert {f for f in real_files if not f.startswith("mlflow/")} | {"mlflow/model.pkl"} \
        <= set(scanned)
    assert not [f for f in scan.findings if f.severity == "error"]
    assert "mlflow/model.pkl" in scanned
    assert {f.global_name for f in scan.findings} >= {
        "sklearn.linear_model._logistic.LogisticRegression", "sklearn.tree._tree.Tree",
        "sklearn.pipeline.Pipeline", "joblib.numpy_pickle.NumpyArrayWrapper"}
    decision = production(document)
    assert decision.deny == ()
    assert decision.allowed


def test_joblib_files_are_read_to_the_end_as_joblib_reads_them(real_files, tmp_path: Path):
    for name, data in real_files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    report = scan_model(tmp_path)
    formats = {f.path: f.formats for f in report.files}
    assert formats["tree.joblib"] == ("pickle", "joblib")
    assert formats["pipeline.z.joblib"] == ("zlib", "pickle", "joblib")
    assert formats["pipeline.gz.joblib"] == ("gzip", "pickle", "joblib")
    assert formats["tree.pkl"] == ("pickle",)
    assert formats["linear.pt"] == ("zip", "pickle")
    assert all(f.status != "error" for f in report.files)
    imports = {f.path: f.imports for f in report.files}
    assert imports["linear.pt"] == ("collections.OrderedDict", "torch.FloatStorage",
                                    "torch._utils._rebuild_tensor_v2")


def test_without_the_shipped_list_the_same_pickles_are_denied(allowed_input, real_files,
                                                              tmp_path: Path):
    (tmp_path / "tree.joblib").write_bytes(real_files["tree.joblib"])
    document = with_scan(allowed_input, tmp_path)
    data = load_policy_data(POLICIES / "data.yaml")
    data["mlprov_config"]["production"]["allowed_pickle_imports"] = []
    deny = production(document, data).deny
    assert "unsafe pickle: tree.joblib imports sklearn.tree._tree.Tree (suspicious)" in deny
    assert production(document).allowed


# --- gadgets are denied ---------------------------------------------------------------------

def dangerous_globals() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for raw in DANGEROUS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        module, name = line.split()
        # "*": a function-like and a class-like name (a pattern admits classes only).
        for each in (("system", "Popen") if name == "*" else (name,)):
            if (module, each) not in pairs:
                pairs.append((module, each))
    return pairs


def gadget(module: str, name: str, protocol: int) -> bytes:
    """A pickle that would call ``module.name("echo pwned")``: built, never loaded."""
    if protocol == 0:
        return f"c{module}\n{name}\n(S'echo pwned'\ntR.".encode()
    return (b"\x80\x04" + text(module) + text(name) + b"\x93" + text("echo pwned")
            + b"\x85R.")


def test_the_peers_lists_are_read():
    pairs = dangerous_globals()
    assert ("builtins", "getattr") in pairs and ("numpy.testing._private.utils", "Popen") in pairs
    assert len(pairs) > 100


@pytest.mark.parametrize("extra", [[], ["numpy.*", "scipy.*", "torch.*", "cloudpickle.*",
                                        "joblib.*", "sklearn.*"]],
                         ids=["shipped", "shipped-and-wide-patterns"])
def test_every_dangerous_global_of_picklescan_and_modelscan_is_denied(allowed_input, extra,
                                                                      tmp_path: Path):
    pairs = dangerous_globals()
    for i, (module, name) in enumerate(pairs):
        (tmp_path / f"g{i}.pkl").write_bytes(gadget(module, name, 4))
        if "." not in name:  # protocol 0's GLOBAL reads a plain attribute name
            (tmp_path / f"g{i}.p0.pkl").write_bytes(gadget(module, name, 0))
    document = with_scan(allowed_input, tmp_path)
    data = load_policy_data(POLICIES / "data.yaml")
    data["mlprov_config"]["production"]["allowed_pickle_imports"] += extra
    deny = set(production(document, data).deny)
    missed = [f"{module}.{name}" for i, (module, name) in enumerate(pairs)
              if not any(m.startswith(f"unsafe pickle: g{i}.pkl imports {module}.{name} (")
                         for m in deny)]
    assert missed == []
    assert not [m for m in deny if m.startswith("pickle scan failed")]


def test_a_function_of_an_allowed_package_is_denied_unless_listed_by_name(allowed_input,
                                                                          tmp_path: Path):
    functions = [("numpy", "load"), ("numpy.lib.npyio", "load"), ("joblib", "load"),
                 ("torch", "load"), ("scipy.io", "loadmat"), ("sklearn.base", "clone"),
                 ("sklearn.utils._joblib", "load"), ("sklearn.datasets._covtype", "GzipFile"),
                 ("sklearn.callback._transport", "Client"),
                 ("sklearn.base", "BaseEstimator.__reduce_ex__"),
                 ("numpy.testing._private.utils", "runstring"),
                 ("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss")]
    for i, (module, name) in enumerate(functions):
        (tmp_path / f"f{i}.pkl").write_bytes(gadget(module, name, 4))
    document = with_scan(allowed_input, tmp_path)
    data = load_policy_data(POLICIES / "data.yaml")
    data["mlprov_config"]["production"]["allowed_pickle_imports"] += [
        "numpy.*", "scipy.*", "torch.*", "joblib.*"]
    deny = production(document, data).deny
    assert len([m for m in deny if m.startswith("unsafe pickle:")]) == len(functions)
    data["mlprov_config"]["production"]["allowed_pickle_imports"] += ["sklearn.base.clone"]
    assert "unsafe pickle: f5.pkl imports sklearn.base.clone (suspicious)" not in \
        production(document, data).deny


# --- joblib's reading cannot hide a gadget ----------------------------------------------------

def joblib_array(payload: bytes, *, state: bytes | None = None, aligned: bool = True) -> bytes:
    """A joblib file holding one int8 array of ``len(payload)`` bytes, raw after its BUILD."""
    wrapper = (text("joblib.numpy_pickle") + text("NumpyArrayWrapper") + b"\x93" + b")\x81")
    dtype = (text("numpy") + text("dtype") + b"\x93" + text("i1") + b"\x89\x88\x87R"
             + b"(K\x03" + text("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    if state is None:
        state = (b"}(" + text("subclass") + text("numpy") + text("ndarray") + b"\x93"
                 + text("shape") + b"K" + bytes([len(payload)]) + b"\x85"
                 + text("order") + text("C") + text("dtype") + dtype + text("allow_mmap")
                 + b"\x88" + (text("numpy_array_alignment_bytes") + b"K\x10" if aligned
                              else b"") + b"u")
    return b"\x80\x04" + wrapper + state + b"b" + (b"\x00" if aligned else b"") + payload + b"."


# GLOBAL os.system; MARK; STRING; TUPLE; REDUCE; POP (protocol 0, no STOP)
CALL = b"cos\nsystem\n(S'echo pwned'\ntR0"


def test_a_real_looking_joblib_file_is_clean(tmp_path: Path):
    (tmp_path / "m.joblib").write_bytes(joblib_array(bytes(range(1, 9))))
    report = scan_model(tmp_path)
    assert report.files[0].formats == ("pickle", "joblib")
    assert [f.global_name for f in report.findings] == ["joblib.numpy_pickle.NumpyArrayWrapper"]


def test_bytes_joblib_skips_are_still_read_as_pickle_load_would(tmp_path: Path):
    # pickle.load reads the "array bytes" as opcodes (joblib would skip them).
    (tmp_path / "m.joblib").write_bytes(joblib_array(CALL, aligned=False))
    assert "os.system" in [f.global_name for f in scan_model(tmp_path).findings]


def test_opcodes_joblib_would_read_inside_a_bytes_argument_are_found(tmp_path: Path):
    # pickle.load reads BINBYTES <CALL> and STOP; joblib skips a 5-byte "array" (the
    # BINBYTES opcode and its length) and then runs CALL.
    skipped = b"B" + len(CALL).to_bytes(4, "little")
    data = joblib_array(skipped, aligned=False)[:-1] + CALL + b"."
    (tmp_path / "m.joblib").write_bytes(data)
    assert "os.system" in [f.global_name for f in scan_model(tmp_path).findings]
    from mlprov._internal.pickleops import walk

    assert "os" not in {m for m, _ in walk(data, 0).imports}  # as pickle.load reads it


@pytest.mark.parametrize(("why", "state"), [
    ("an attribute joblib's read would call", b"}(" + text("read") + b"N" + text("shape")
     + b"K\x01\x85u"),
    ("a shape that is not a tuple of sizes", b"}(" + text("shape") + b"]u"),
    ("no dtype", b"}(" + text("shape") + b"K\x01\x85u"),
])
def test_a_wrapper_the_scan_cannot_follow_is_unscannable(tmp_path: Path, why: str,
                                                         state: bytes):
    (tmp_path / "m.joblib").write_bytes(joblib_array(b"\x01", state=state))
    report = scan_model(tmp_path)
    assert [f.severity for f in report.findings if f.kind == "unscannable"] == ["error"], why


def test_a_truncated_joblib_array_is_unscannable(tmp_path: Path):
    (tmp_path / "m.joblib").write_bytes(joblib_array(b"\x01" * 40)[:-20])
    assert any(f.severity == "error" for f in scan_model(tmp_path).findings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mangled_joblib_files_never_crash_the_scan(real_files, tmp_path_factory, data):
    original = bytearray(real_files["pipeline.joblib"])
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(original) - 1))
        original[where] = data.draw(st.integers(0, 255))
    root = tmp_path_factory.mktemp("mangled")
    (root / "m.joblib").write_bytes(bytes(original))
    report = scan_model(root)  # never raises, never loads
    [scanned] = report.files
    assert scanned.status in ("clean", "unsafe", "error")


# --- the rules the policy relies on -----------------------------------------------------------

def test_the_rego_tests_settings_mirror_the_shipped_pickle_settings():
    source = (POLICIES / "fixtures_test.rego").read_text()
    block = source[source.index("settings := {") + len("settings := "):]
    block = block[:block.index("\n}\n") + 2]
    tests_settings = json.loads(block)["production"]
    shipped = load_policy_data(POLICIES / "data.yaml")["mlprov_config"]["production"]
    for key in ("allowed_pickle_imports", "denied_pickle_modules"):
        assert tests_settings[key] == shipped[key], key


def test_sklearn_class_like_names_are_classes_of_sklearn_outside_denied_modules():
    """The CapWords rule holds for the installed scikit-learn (an audit, in a subprocess).

    Every CapWords name a ``sklearn.*`` pattern admits is a class defined in
    scikit-learn, a constant, or a class from a short reviewed list; whatever else
    (GzipFile, Listener, FunctionType...) must sit under ``denied_pickle_modules``.
    """
    shipped = load_policy_data(POLICIES / "data.yaml")["mlprov_config"]["production"]
    audit = r'''
import importlib, json, pkgutil, re, sys, warnings
warnings.filterwarnings("ignore")
import sklearn
denied = json.loads(sys.argv[1])
reviewed = {"abc", "enum", "numbers", "typing", "collections", "collections.abc", "inspect",
            "numpy", "numpy.exceptions", "numpy.linalg", "numpy.ma", "numpy.ma.core",
            "scipy.sparse._base", "scipy.sparse.linalg._interface",
            "scipy.interpolate._bsplines", "_io", "pathlib", "os", "unittest.case",
            "urllib.error", "subprocess", "_cyutility"}
bad = []
for info in pkgutil.walk_packages(sklearn.__path__, "sklearn."):
    name = info.name
    if ".tests" in name or any(name == d or name.startswith(d + ".") for d in denied):
        continue
    try:
        module = importlib.import_module(name)
    except Exception:
        continue
    for attr, value in vars(module).items():
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", attr) or not callable(value):
            continue
        origin = getattr(value, "__module__", "") or ""
        if isinstance(value, type) and (origin.startswith("sklearn") or origin in reviewed):
            continue
        if origin == "typing" or type(value).__module__ == "typing":
            continue
        bad.append(f"{name}.{attr} ({origin or type(value).__name__})")
print(json.dumps(sorted(set(bad))))
'''
    denied = json.dumps(shipped["denied_pickle_modules"])
    out = subprocess.run([sys.executable, "-c", audit, denied], capture_output=True, text=True,
                         check=True, timeout=600)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_class_like_names_follow_one_rule():
    rule = re.compile(r"[A-Z][A-Za-z0-9]*")
    assert rule.fullmatch("LogisticRegression") and rule.fullmatch("Tree")
    for name in ("load", "_reconstruct", "ndarray.tofile", "IMAP4_stream", "_Private", "",
                 "ShapeEnv.evaluate_guards_expression"):
        assert not rule.fullmatch(name)
