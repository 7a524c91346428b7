"""``evidence.json`` read without pydantic (``read_index_fields``) and by its model agree.

The twin (:func:`mlprov.evidence.index_fields`) accepts only documents the model
accepts, with the same values; what it leaves to the model (Python field names,
missing or unknown fields, wrong types) the model accepts or refuses with its own
words, through :func:`mlprov.evidence.read_index_fields` as through
:func:`mlprov.evidence.read_index`. Hostile values throughout: wrong types, NUL,
lone surrogates, nested objects, duplicate-looking keys.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mlprov._internal.evidence_index import EvidenceIndex
from mlprov.errors import MlprovError
from mlprov.evidence import (
    EVIDENCE_SCHEMA,
    INDEX_FILE,
    IndexFields,
    MemorySource,
    index_fields,
    read_index,
    read_index_fields,
)

_TEXT = st.text(max_size=12)
_VALUE = st.one_of(_TEXT, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False),
                   st.lists(_TEXT, max_size=2), st.dictionaries(_TEXT, _TEXT, max_size=2))
_FILES = st.one_of(st.dictionaries(_TEXT, _TEXT, max_size=4),
                   st.dictionaries(_TEXT, _VALUE, max_size=3), _VALUE)
_KEYS = ["schema", "name", "identity", "rootDigest", "files", "mlprovVersion",
         "root_digest", "mlprov_version", "schema_", "extra"]


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    good = {"schema": EVIDENCE_SCHEMA, "name": draw(_TEXT), "identity": draw(_TEXT),
            "rootDigest": draw(_TEXT), "files": draw(st.dictionaries(_TEXT, _TEXT, max_size=4)),
            "mlprovVersion": draw(_TEXT)}
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=3)):
        if draw(st.booleans()):
            good.pop(key, None)
        else:
            good[key] = draw(_FILES if key == "files" else _VALUE)
    return good


def _model(document: Any) -> EvidenceIndex | None:
    try:
        return EvidenceIndex.model_validate(document)
    except ValidationError:
        return None


def _as_fields(model: EvidenceIndex) -> IndexFields:
    return IndexFields(name=model.name, identity=model.identity, root_digest=model.root_digest,
                       files=dict(model.files), mlprov_version=model.mlprov_version)


@given(_documents())
def test_the_twin_accepts_only_what_the_model_accepts_with_the_same_fields(document: Any):
    fields = index_fields(document)
    model = _model(document)
    if fields is not None:
        assert model is not None, document
        assert fields == _as_fields(model)
    elif model is not None:  # left to the model: only a form the twin does not read
        assert document.keys() != {"schema", "name", "identity", "rootDigest", "files",
                                   "mlprovVersion"}


@given(_documents())
def test_both_readers_accept_and_refuse_alike(document: Any):
    data = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    source = MemorySource({INDEX_FILE: data})
    outcomes = []
    for reader in (read_index, read_index_fields):
        try:
            result = reader(source)
        except MlprovError as exc:
            outcomes.append(("refused", type(exc), str(exc)))
        else:
            fields = result if isinstance(result, IndexFields) else _as_fields(result)
            outcomes.append(("read", fields))
    assert outcomes[0] == outcomes[1]


def test_the_common_form_is_read_without_the_model():
    document = {"schema": EVIDENCE_SCHEMA, "name": "m", "identity": "mlid:sha256:" + "0" * 64,
                "rootDigest": "sha256:" + "1" * 64, "files": {"model.sig": "sha256:" + "2" * 64},
                "mlprovVersion": "1"}
    assert index_fields(document) == IndexFields(
        name="m", identity=document["identity"], root_digest=document["rootDigest"],
        files={"model.sig": "sha256:" + "2" * 64}, mlprov_version="1")


@pytest.mark.parametrize("change", [
    {"name": 5}, {"files": {"a": 1}}, {"files": ["a"]}, {"extra": "x"},
    {"mlprovVersion": None}, {"identity": {"nested": "x"}},
])
def test_hostile_fields_are_refused_in_the_models_words(change: dict[str, Any]):
    document = {"schema": EVIDENCE_SCHEMA, "name": "m", "identity": "i", "rootDigest": "r",
                "files": {}, "mlprovVersion": "1", **change}
    assert index_fields(document) is None
    source = MemorySource({INDEX_FILE: json.dumps(document).encode()})
    with pytest.raises(MlprovError, match="is malformed") as twin:
        read_index_fields(source)
    with pytest.raises(MlprovError) as model:
        read_index(source)
    assert str(twin.value) == str(model.value)
