"""mlprov's BOM writer gives cyclonedx-python-lib's document, and that document is valid.

``attest`` writes its CycloneDX 1.6 ML-BOM without the library (plain dicts,
see ``mlprov.sbom._bom_body``) and does not validate it at run time. These
tests are why it need not: for generated inputs (hostile package names,
versions and licences, datasets, parents, card fields, metrics) the writer's
document equals, key order and array order included, the one the library
builds and writes (:func:`library_bom_body`, the builder mlprov used before,
kept here as the reference), but for the random serial number and the
timestamp; and it validates under the library's strict 1.6 schema.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import jsonschema  # noqa: F401  # before mlprov's: the full format checker (IRIs checked)
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlprov import __version__, sbom
from mlprov._internal.parents import ParentRef
from mlprov.card import CardInput, EthicalConsideration
from mlprov.errors import InputError
from mlprov.evaluation import EvalPredicate, Evaluator
from mlprov.identity import CodeRef, DataRef
from mlprov.sbom import Package, normalise_name, validate_bom
from tests.conftest import COMMIT

# --------------------------------------------------------------- the reference


def _library_licences(values: tuple[str, ...]) -> list[Any]:
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import fixup_id, is_expression

    if len(values) == 1 and fixup_id(values[0]) is None and is_expression(values[0]):
        return [LicenseExpression(values[0])]
    out = []
    for value in values:
        spdx_id = fixup_id(value)
        out.append(DisjunctiveLicense(id=spdx_id) if spdx_id else DisjunctiveLicense(name=value))
    return out


def _library_hashes(*digests: str) -> list[Any]:
    from cyclonedx.model import HashAlgorithm, HashType

    return [HashType(alg=HashAlgorithm.SHA_256, content=d) for d in digests]


def library_bom_body(basis: Any, packages: list[Package], card: CardInput,
                     evaluation: EvalPredicate | None, *, root: str) -> dict[str, Any]:
    """The BOM as mlprov built it with cyclonedx-python-lib (``Bom`` + ``JsonV1Dot6``)."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    code = basis.code
    properties = [Property(name="mlprov:identity", value=basis.identity),
                  Property(name="mlprov:code:commit", value=code.commit)]
    if code.dirty:
        properties.append(Property(name="mlprov:code:dirty", value="true"))
    references = []
    if code.uri:
        references.append(ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(code.uri),
                                            comment=f"training code, commit {code.commit}"))
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, name=basis.name, bom_ref="model",
        hashes=_library_hashes(root), description=card.description,
        licenses=_library_licences((card.license,)) if card.license else [],
        external_references=references, properties=properties)
    bom = Bom()
    bom.metadata.component = model
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION,
                                                name="mlprov", version=__version__))
    model_needs: list[Any] = []
    edges: list[tuple[Any, list[Any]]] = []
    data_refs = []
    for dataset in basis.data:
        ref = f"data:{dataset.name}"
        component = Component(type=ComponentType.DATA, name=dataset.name, bom_ref=ref,
                              hashes=_library_hashes(dataset.sha256))
        bom.components.add(component)
        edges.append((component, []))
        model_needs.append(component)
        data_refs.append(ref)
    for number, parent in enumerate(basis.parents, 1):
        props = [Property(name="mlprov:parent:role", value=parent.role)]
        if parent.identity:
            props.append(Property(name="mlprov:identity", value=parent.identity))
        component = Component(type=ComponentType.MACHINE_LEARNING_MODEL, name=parent.name,
                              bom_ref=f"parent:{number}:{parent.role}:{parent.name}",
                              hashes=_library_hashes(parent.sha256) if parent.sha256 else [],
                              properties=props)
        bom.components.add(component)
        edges.append((component, []))
        model_needs.append(component)
    components = {}
    for package in packages:
        components[package.key] = Component(
            type=ComponentType.LIBRARY, name=package.name, version=package.version,
            bom_ref=package.purl,
            purl=PackageURL(type="pypi", name=package.key, version=package.version),
            licenses=_library_licences(package.licenses),
            hashes=_library_hashes(*package.sha256))
        bom.components.add(components[package.key])
    for package in packages:
        edges.append((components[package.key], [
            components[r] for r in package.requires if r in components and r != package.key]))
    model_needs.extend(components[p.key] for p in sbom._roots(packages))
    edges.append((model, model_needs))
    for target, needs in edges:
        bom.register_dependency(target, needs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    component_json = document["metadata"]["component"]
    if card.developers:
        component_json["authors"] = [{"name": d} for d in card.developers]
    model_card = card.model_card_json(data_refs, evaluation)
    if model_card:
        component_json["modelCard"] = model_card
    datasets = {d.name: d for d in basis.data}
    for item in document.get("components", []):
        if item.get("type") == "data" and item.get("name") in datasets:
            entry: dict[str, Any] = {"type": "dataset", "name": item["name"]}
            uri = datasets[item["name"]].uri
            if uri:
                entry["contents"] = {"url": uri}
            item["data"] = [entry]
    first = ["$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata",
             "components", "dependencies"]
    return {**{k: document[k] for k in first if k in document},
            **{k: v for k, v in document.items() if k not in first}}


def _comparable(document: dict[str, Any]) -> str:
    """The document as text (key order counts) without its serial number and timestamp."""
    document = json.loads(json.dumps(document))
    assert document.pop("serialNumber").startswith("urn:uuid:")
    assert isinstance(document["metadata"].pop("timestamp"), str)
    return json.dumps(document, ensure_ascii=False)


# --------------------------------------------------------------- generated inputs

_HOSTILE = "aZ09._-@/%' \"+!~:#?=&éß\u00a0\u4e2d\U0001f600\n\t\x00\\"
_names = st.text(alphabet=_HOSTILE, min_size=1, max_size=12)
_hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | st.sampled_from(
    ["A" * 64, "0" * 64])
_licences = st.sampled_from(["MIT", "mit", "Apache-2.0", "apache-2.0", "BSD-3-Clause",
                             "MIT OR Apache-2.0", "(MIT AND BSD-3-Clause)", "GPL-2.0+",
                             "Some Licence", "Proprietary", "MIT License", "UNKNOWN",
                             "LicenseRef-acme", "Apache-2.0 WITH LLVM-exception"]) | st.text(
    alphabet=_HOSTILE, min_size=1, max_size=10)
#: Characters an RFC 3987 IRI reference may hold, and those the writer maps as the
#: library's XsUri does (space, quotes, brackets); ``%`` only as an escape.
_IRI_CHARACTERS = string.ascii_letters + string.digits + "-._~:/?@!$&()*+,;="
_uri = st.lists(st.sampled_from([*_IRI_CHARACTERS, "%20", "%2F", "é", "\u4e2d", "#frag"]),
                min_size=1, max_size=8).map("".join)
_code_uri = st.lists(_uri | st.sampled_from([" ", "'", '"', "[", "]", "<", ">", "{", "}"]),
                     min_size=1, max_size=4).map(lambda parts: "git+https://h/" + "".join(
                         parts)).filter(lambda uri: uri.count("#") <= 1)


@st.composite
def _packages(draw: Any) -> list[Package]:
    names = draw(st.lists(_names, max_size=7, unique_by=normalise_name))
    keys = [normalise_name(n) for n in names]
    out = []
    for name in names:
        out.append(Package(
            name=name, version=draw(st.text(alphabet=_HOSTILE, max_size=8)),
            licenses=tuple(draw(st.lists(_licences, max_size=3))),
            sha256=tuple(draw(st.lists(_hex64, max_size=3))),
            requires=tuple(draw(st.lists(st.sampled_from([*keys, "not-installed"]),
                                         max_size=3, unique=True)))))
    return sorted(out, key=lambda p: p.key)


_texts = st.text(alphabet=_HOSTILE, min_size=1, max_size=10).filter(str.strip)


@st.composite
def _cards(draw: Any) -> CardInput:
    optional = st.none() | _texts
    return CardInput(
        description=draw(optional), developers=draw(st.lists(_texts, max_size=3)),
        license=draw(st.none() | _licences.filter(str.strip)), task=draw(optional),
        approach=draw(st.none() | st.sampled_from(["supervised", "self-supervised"])),
        architecture_family=draw(optional), model_architecture=draw(optional),
        inputs=draw(st.lists(_texts, max_size=2)), outputs=draw(st.lists(_texts, max_size=2)),
        intended_use=draw(st.lists(_texts, max_size=2)),
        intended_users=draw(st.lists(_texts, max_size=2)),
        out_of_scope_uses=draw(st.lists(_texts, max_size=2)),
        factors=draw(st.lists(_texts, max_size=2)), base_model=draw(st.lists(_texts, max_size=2)),
        ethical_considerations=draw(st.lists(st.builds(
            EthicalConsideration, name=_texts, mitigation=st.none() | _texts), max_size=2)),
        caveats_and_recommendations=draw(st.lists(_texts, max_size=2)),
        tags=draw(st.lists(_texts, max_size=2)), model_date=draw(optional),
        citation=draw(optional))


_metrics = st.dictionaries(_texts, st.integers(-5, 5) | st.floats(
    allow_nan=False, allow_infinity=False, width=32), max_size=3)
_evaluations = st.none() | st.builds(
    lambda metrics, slices: EvalPredicate(evaluator=Evaluator(id="https://e.example"),
                                          metrics=metrics, slices=slices),
    _metrics, st.dictionaries(_texts, _metrics.filter(bool), max_size=2))


@st.composite
def _bases(draw: Any) -> Any:
    digests = _hex64.map(lambda hex64: "sha256:" + hex64.lower())
    # Dataset URIs go into the BOM as given; a plain jsonschema (attest's, verify's)
    # checks no IRI, the full one here does: generate IRI references only.
    uris = st.none() | _uri.map("s3://bucket/".__add__).filter(lambda u: u.count("#") <= 1)
    data = draw(st.lists(st.builds(DataRef, name=_names, digest=digests, uri=uris),
                         max_size=3, unique_by=lambda d: d.name))
    parents = draw(st.lists(st.builds(
        ParentRef, role=st.sampled_from(["base", "teacher", "fine-tune-of"]), name=_names,
        sha256=st.none() | _hex64, identity=st.none() | _texts), max_size=3))
    code = CodeRef(commit=COMMIT, uri=draw(st.none() | _code_uri), dirty=draw(st.booleans()))
    return sbom._BomBasis(name=draw(_names), identity="mlid:sha256:" + "c" * 64, code=code,
                          data=tuple(sorted(data, key=lambda d: d.name)), parents=tuple(parents))


def _unique_purls(packages: list[Package]) -> bool:
    return len({p.purl for p in packages}) == len(packages)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bases(), _packages(), _cards(), _evaluations, _hex64)
def test_the_writer_writes_the_library_s_document_and_it_is_valid(basis, packages, card,
                                                                  evaluation, root):
    try:
        assume(_unique_purls(packages))
    except (TypeError, ValueError):  # a name packageurl makes no purl of: refused
        with pytest.raises(InputError, match="has no purl"):
            sbom._bom_body(basis, packages, card, evaluation, root=root)
        return
    expected = library_bom_body(basis, packages, card, evaluation, root=root)
    written = sbom._bom_body(basis, packages, card, evaluation, root=root)
    assert _comparable(written) == _comparable(expected)
    assert written["serialNumber"] != expected["serialNumber"]
    validate_bom(written)  # the library's strict 1.6 schema, IRIs checked
    pinned = sbom.pin_evidence(written, {"MODEL_CARD.md": ("model-card", root)})
    validate_bom(pinned)


def test_the_library_s_timestamp_and_serial_number_forms():
    basis = sbom._BomBasis(name="m", identity="i", code=CodeRef(commit=COMMIT), data=(),
                           parents=())
    expected = library_bom_body(basis, [], CardInput(), None, root="a" * 64)
    written = sbom._bom_body(basis, [], CardInput(), None, root="a" * 64)
    for document in (expected, written):
        assert len(document["serialNumber"]) == len("urn:uuid:") + 36
        # datetime.isoformat() of an aware UTC time: ...T..:..:..[.ffffff]+00:00
        assert document["metadata"]["timestamp"].endswith("+00:00")
    assert list(written) == list(expected)
    assert list(written["metadata"]) == list(expected["metadata"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.lists(st.integers(0, 5), max_size=4)),
                max_size=10))
def test_the_dependency_graph_is_the_one_register_dependency_builds(edges):
    """Targets named twice, dependents met before and after their own entry, self loops."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    bom = Bom()
    nodes = [Component(type=ComponentType.LIBRARY, name=f"p{i}", bom_ref=f"ref-{i}")
             for i in range(6)]
    for target, needs in edges:
        bom.register_dependency(nodes[target], [nodes[n] for n in needs])
    named = {i for t, needs in edges for i in (t, *needs)}
    for i in sorted(named):
        bom.components.add(nodes[i])
    library = json.loads(JsonV1Dot6(bom).output_as_string()).get("dependencies", [])
    mine = sbom._dependency_graph([(f"ref-{t}", [f"ref-{n}" for n in needs])
                                   for t, needs in edges])
    assert json.dumps(mine) == json.dumps(library)


# --------------------------------------------------------------- what the writer refuses


def _basis(uri: str | None = None) -> Any:
    return sbom._BomBasis(name="m", identity="i", code=CodeRef(commit=COMMIT, uri=uri),
                          data=(), parents=())


@pytest.mark.parametrize("uri", ["git+https://h/a%zz", "https://h/#a#b"])
def test_a_code_uri_the_library_refuses_is_refused(uri):
    from cyclonedx.exception.model import InvalidUriException
    from cyclonedx.model import XsUri

    with pytest.raises(InvalidUriException):
        XsUri(uri)
    with pytest.raises(InputError, match=r"code URI .* is not a valid URI"):
        sbom._bom_body(_basis(uri), [], CardInput(), None, root="a" * 64)


def test_packages_listed_twice_or_sharing_a_purl_are_refused():
    twice = [Package(name="A_b", version="1"), Package(name="a-b", version="2")]
    with pytest.raises(InputError, match="listed twice"):
        sbom._bom_body(_basis(), twice, CardInput(), None, root="a" * 64)
    # '/' at the ends of a name is dropped from the purl: two names, one purl
    shared = [Package(name="a", version="1"), Package(name="a/", version="1")]
    assert shared[0].purl == shared[1].purl
    with pytest.raises(InputError, match="same purl"):
        sbom._bom_body(_basis(), shared, CardInput(), None, root="a" * 64)


@pytest.mark.parametrize(("packages", "message"), [
    ([Package(name="a", version="1", licenses=("",))], "licence of the SBOM is empty"),
    ([Package(name="a", version="1", sha256=("x" * 64,))], "not valid CycloneDX 1.6"),
])
def test_input_the_schema_refuses_is_refused(packages, message):
    with pytest.raises(InputError, match=message):
        sbom._bom_body(_basis(), packages, CardInput(), None, root="a" * 64)


def test_validate_true_still_checks_with_the_library(monkeypatch):
    monkeypatch.setattr(CardInput, "model_card_json", lambda self, refs, evaluation: {
        "modelParameters": {"approach": {"type": "guessing"}}})
    import datetime as dt

    from tests.test_sbom_fast_path import PACKAGES, ROOT, _provenance

    pending = _provenance(root="0" * 64, finished=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    card = CardInput(task="t")
    sbom.build_bom(provenance=pending, root=ROOT, packages=PACKAGES, card=card)  # no check
    with pytest.raises(InputError, match=r"not valid CycloneDX 1\.6: .*approach"):
        sbom.build_bom(provenance=pending, root=ROOT, packages=PACKAGES, card=card,
                       validate=True)
    with pytest.raises(InputError, match=r"not valid CycloneDX 1\.6: .*approach"):
        sbom.prepare_bom(provenance=pending, packages=PACKAGES, card=card, validate=True)


# --------------------------------------------------------------- what attest imports


_DRIVER = """
import sys
from mlprov._cli.main import console_main
sys.argv = ["mlprov", *sys.argv[1:]]
try:
    console_main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("cyclonedx", "jsonschema",
                                                               "license_expression"))
print(code, " ".join(loaded), file=sys.stderr)
"""


def test_attest_imports_neither_cyclonedx_nor_jsonschema(tmp_path, make_key):
    """A fresh interpreter: import mlprov, attest a small model, look at sys.modules.

    ``cyclonedx.spdx`` (and license-expression, which it imports) is allowed
    while the licence classification of the environment scan uses it.
    """
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\0" * 4096)
    key = make_key("ci")
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    done = subprocess.run(
        [sys.executable, str(driver), "attest", str(model), "--name", "m", "--key",
         str(key.private), "--out", str(tmp_path / "evidence"), "--commit", COMMIT],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    code, _, loaded = done.stderr.strip().splitlines()[-1].partition(" ")
    assert code == "0", done.stderr
    allowed = {"cyclonedx", "cyclonedx.spdx", "cyclonedx.schema", "cyclonedx.schema._res"}
    unexpected = [m for m in loaded.split() if m not in allowed
                  and not m.startswith("license_expression")]
    assert unexpected == [], unexpected
    assert (tmp_path / "evidence" / "sbom.cdx.json").is_file()
    assert Path(tmp_path / "evidence" / "sbom.cdx.json").read_text().startswith("{")
