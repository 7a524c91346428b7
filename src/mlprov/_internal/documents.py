"""The statements and the evidence index ``mlprov attest`` writes, as plain documents.

The pydantic models own the rules: :class:`mlprov.statements.Statement` and
:class:`~mlprov.statements.ResourceDescriptor` (the JSON their ``to_json_dict``
gives: aliases, no None fields) and :class:`mlprov.evidence.EvidenceIndex`
(``model_dump_json(by_alias=True, indent=2)``). The builders here give exactly those
documents and bytes without importing pydantic, so ``mlprov attest`` does not pay
for it (issue 16); the public builders (``oms.manifest_statement``,
``provenance.build_provenance``, ``sbom.bom_statement``) are the models of these
documents, so each predicate is built in one place.

Each builder works on a *plain* domain: exact ``dict``/``list``/``str``/``int``/
``bool``/``None`` and finite ``float`` values, valid Unicode (no lone surrogate),
spec keys under their aliases. That is what mlprov passes. Anything else (a tuple,
a ``str`` subclass, a bad digest, a missing locator, a surrogate...) is decided by
the pydantic model itself, imported only then: it raises its own error, or writes
the document (a tuple as a list...). Either way the answer is the model's, so a
builder never writes a document the model would not. ``tests/test_documents.py``
holds both paths to the same documents, bytes, signatures and refusals on arbitrary
and hostile input (hypothesis), and checks that mlprov's own inputs never leave the
plain domain.

One deliberate difference: pydantic writes a lone surrogate in a key of the index's
``files`` as U+FFFD replacement characters (a name no file has); :func:`index_bytes`
refuses it (:class:`~mlprov.errors.InputError`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Protocol

from mlprov import __version__
from mlprov._internal.evidence_names import EVIDENCE_SCHEMA
from mlprov._internal.inputs import IDENTITY_PREFIX
from mlprov._internal.inputs import compute_identity as identity_of
from mlprov._internal.intoto import (
    MLPROV_PREDICATE_PREFIX,
    STATEMENT_TYPE_V1,
    bad_digest,
    read_statement,
)
from mlprov._internal.provenance_reader import BUILD_TYPE, SLSA_PROVENANCE_V1
from mlprov.canonical import _fast_canonical, canonical_json
from mlprov.errors import BundleError, InputError

if TYPE_CHECKING:
    from mlprov.hashing import Manifest

__all__ = [
    "BUILD_TYPE",
    "CYCLONEDX_BOM_PREDICATE",
    "DEFAULT_BUILDER_ID",
    "EVAL_PREDICATE_TYPE",
    "EVIDENCE_SCHEMA",
    "IDENTITY_PREFIX",
    "OMS_PREDICATE_TYPE",
    "SLSA_PROVENANCE_V1",
    "CodeLike",
    "DataLike",
    "InputsLike",
    "bom_statement_document",
    "descriptor",
    "identity_of",
    "index_bytes",
    "manifest_document",
    "provenance_document",
    "rfc3339",
    "statement_document",
    "statement_payload",
]

#: The OMS signature predicate (https://github.com/sigstore/model-transparency).
OMS_PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"
DEFAULT_BUILDER_ID: Final = "https://mlprov.dev/builders/local/v1"
#: The predicate type cosign and policy-controller match for CycloneDX.
CYCLONEDX_BOM_PREDICATE: Final = "https://cyclonedx.org/bom"
#: mlprov's eval statement (:mod:`mlprov.evaluation`); here so that ``verify`` knows it
#: without importing that module's models.
EVAL_PREDICATE_TYPE: Final = MLPROV_PREDICATE_PREFIX + "eval/v1"


# -- the inputs, duck-typed ----------------------------------------------------------------

class CodeLike(Protocol):
    """The training code (:class:`mlprov.identity.CodeRef` or a twin)."""

    @property
    def commit(self) -> str:
        """The full git commit id."""

    @property
    def uri(self) -> str | None:
        """Where the code lives."""

    @property
    def dirty(self) -> bool:
        """Whether the work tree had uncommitted changes."""


class DataLike(Protocol):
    """A dataset (:class:`mlprov.identity.DataRef` or a twin)."""

    @property
    def name(self) -> str:
        """The dataset's name."""

    @property
    def sha256(self) -> str:
        """Its hex digest."""

    @property
    def uri(self) -> str | None:
        """Where it lives, when known."""


class InputsLike(Protocol):
    """What an identity is derived from (:class:`mlprov.identity.IdentityInputs` or a twin)."""

    @property
    def code(self) -> CodeLike:
        """The training code."""

    @property
    def data(self) -> Sequence[DataLike]:
        """The datasets, sorted by name."""

    def canonical_inputs(self) -> dict[str, Any]:
        """The exact document the identity hashes."""


# -- the plain domain ----------------------------------------------------------------------

def _text(value: Any) -> bool:
    """An exact ``str`` holding valid Unicode (pydantic keeps it as it is)."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain(value: Any) -> bool:
    """Whether pydantic's ``mode="json"`` dump of an ``Any`` value is the value itself."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _text(value)
    if kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(_text(key) and _plain(item) for key, item in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    return False


def _models() -> ModuleType:
    """The pydantic models, for input outside the plain domain (tests replace this)."""
    from mlprov import statements

    return statements


# -- descriptors and statements ------------------------------------------------------------

#: ResourceDescriptor's fields by alias, in the order the model writes them.
_DESCRIPTOR_ORDER = ("name", "uri", "digest", "content", "downloadLocation", "mediaType",
                     "annotations")
_DESCRIPTOR_NAMES = {"download_location": "downloadLocation", "media_type": "mediaType"}
_STATEMENT_NAMES = frozenset({"type_", "predicate_type"})


def _descriptor_form(document: Any, *, subject: bool = False) -> dict[str, Any] | None:
    """``ResourceDescriptor.model_validate(document).to_json_dict()``, or None off the domain.

    ``subject``: also require a digest (as ``Statement`` does of its subjects).
    """
    if type(document) is not dict:
        return None
    out: dict[str, Any] = {}
    for key in _DESCRIPTOR_ORDER:
        value = document.get(key)
        if value is None:
            continue
        if key == "digest":
            if type(value) is not dict or not all(
                    _text(k) and _text(v) for k, v in value.items()) \
                    or bad_digest(value) is not None:
                return None
        elif key == "annotations":
            if not (type(value) is dict and _plain(value)):
                return None
        elif not _text(value):
            return None
        out[key] = value
    if not (out.get("uri") or out.get("digest") or out.get("content")):
        return None  # the model refuses: no locator
    if subject and not out.get("digest"):
        return None
    for key, value in document.items():
        if key in _DESCRIPTOR_ORDER:
            continue
        if key in _DESCRIPTOR_NAMES or not _text(key) or not _plain(value):
            return None
        if value is not None:
            out[key] = value
    return out


def descriptor(name: str, sha256: str, **extra: Any) -> dict[str, Any]:
    """``sha256_descriptor(name, sha256, **extra).to_json_dict()``.

    Raises:
        pydantic.ValidationError: what the model raises (e.g. a malformed digest).
    """
    fields: dict[str, Any] = {"name": name, "digest": {"sha256": sha256}}
    form = None
    if "name" not in extra and "digest" not in extra \
            and not any(key in extra for key in _DESCRIPTOR_NAMES):
        fields.update(extra)
        form = _descriptor_form(fields)
    if form is None:
        model = _models().sha256_descriptor(name, sha256, **extra)
        return model.to_json_dict()  # type: ignore[no-any-return]
    return form


def _statement_form(document: Any, *, deep: bool = True) -> dict[str, Any] | None:
    """``Statement.model_validate(document).to_json_dict()``, or None off the plain domain.

    ``deep=False``: the caller vouches that the predicate and any extra fields hold
    plain values only (checked another way), so they are not walked here.
    """
    if type(document) is not dict or any(key in document for key in _STATEMENT_NAMES):
        return None
    kind = document.get("_type", STATEMENT_TYPE_V1)
    subjects = document.get("subject")
    predicate_type = document.get("predicateType")
    predicate = document.get("predicate", {})
    if type(kind) is not str or kind != STATEMENT_TYPE_V1 or type(subjects) is not list \
            or not subjects or not _text(predicate_type) or not predicate_type \
            or type(predicate) is not dict or (deep and not _plain(predicate)):
        return None
    forms = [_descriptor_form(item, subject=True) for item in subjects]
    if any(form is None for form in forms):
        return None
    out: dict[str, Any] = {"_type": kind, "subject": forms, "predicateType": predicate_type,
                           "predicate": predicate}
    for key, value in document.items():
        if key in out:
            continue
        if not _text(key) or (deep and not _plain(value)):
            return None
        if value is not None:
            out[key] = value
    return out


def statement_document(subject: list[dict[str, Any]], predicate_type: str,
                       predicate: dict[str, Any]) -> dict[str, Any]:
    """``Statement(subject=..., predicate_type=..., predicate=...).to_json_dict()``.

    Raises:
        pydantic.ValidationError: what the model raises.
    """
    return _statement_document(subject, predicate_type, predicate)


def _statement_document(subject: list[dict[str, Any]], predicate_type: str,
                        predicate: dict[str, Any], *, deep: bool = True) -> dict[str, Any]:
    form = _statement_form({"subject": subject, "predicateType": predicate_type,
                            "predicate": predicate}, deep=deep)
    if form is None:
        statement = _models().Statement(subject=subject, predicate_type=predicate_type,
                                        predicate=predicate)
        return statement.to_json_dict()  # type: ignore[no-any-return]
    return form


def statement_payload(document: Any, *, what: str = "statement") -> bytes:
    """The bytes to sign for a statement given as a document.

    ``Statement.model_validate(document).canonical_bytes()``: the document checked
    by :func:`mlprov._internal.intoto.read_statement`, then its RFC 8785 canonical
    JSON (of the model's form of it: aliases, no None fields, defaults filled in).

    Raises:
        BundleError: not an in-toto Statement v1 (the model's own message).
        InputError: a value canonical JSON cannot carry.
    """
    if read_statement(document) is None:
        from mlprov.statements import statement_from_document

        statement_from_document(document, what=what)
        # tests/test_intoto.py proves this cannot happen; refuse rather than guess.
        raise BundleError(f"{what}: mlprov's Statement model accepts what its reader refuses "
                          "(a bug)", hint="please report it; nothing was signed")
    # Most documents (an OMS manifest, a BOM) hold no float: canonical JSON's fast path
    # then proves them plain (exact JSON types) while writing them, and the values need
    # no walk of their own. A tuple there is written as the list the model would give.
    form = _statement_form(document, deep=False)
    if form is not None:
        fast = _fast_canonical(form)
        if fast is not None:
            return fast
        form = _statement_form(document)
    if form is None:
        statement = _models().Statement.model_validate(document)
        return statement.canonical_bytes()  # type: ignore[no-any-return]
    return canonical_json(form)


# -- the statements attest writes ----------------------------------------------------------

def manifest_document(manifest: Manifest) -> dict[str, Any]:
    """The OMS statement for ``manifest``: ``oms.manifest_statement(manifest).to_json_dict()``."""
    serialization: dict[str, Any] = {"method": "files", "hash_type": "sha256",
                                     "allow_symlinks": manifest.allow_symlinks}
    if manifest.ignore_paths:
        serialization["ignore_paths"] = list(manifest.ignore_paths)
    paths = [f.path for f in manifest.files]
    digests = [f.sha256 for f in manifest.files]
    resources = [{"name": path, "algorithm": "sha256", "digest": digest}
                 for path, digest in zip(paths, digests, strict=True)]
    predicate = {"serialization": serialization, "resources": resources}
    # A manifest lists up to 100k files: check its strings at once, not node by node.
    plain = all(type(text) is str for text in paths) \
        and all(type(text) is str for text in digests) \
        and _text("".join(paths)) and _text("".join(digests)) and _plain(serialization)
    return _statement_document([descriptor(manifest.name, manifest.root)], OMS_PREDICATE_TYPE,
                               predicate, deep=not plain)


def rfc3339(moment: dt.datetime) -> str:
    """Format a time as RFC 3339 UTC with a ``Z`` (what in-toto requires)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _given_descriptor(document: Any) -> dict[str, Any]:
    """A descriptor given as its JSON (``ResourceDescriptor.to_json_dict()``), checked.

    Raises:
        pydantic.ValidationError: the model refuses it.
    """
    form = _descriptor_form(document)
    if form is None:
        model = _models().ResourceDescriptor.model_validate(document)
        return model.to_json_dict()  # type: ignore[no-any-return]
    return form


def _code_descriptor(code: CodeLike) -> dict[str, Any]:
    uri = f"{code.uri}@{code.commit}" if code.uri else None
    annotations = {"dirty": True} if code.dirty else None
    fields = {"name": "code", "uri": uri, "digest": {"gitCommit": code.commit},
              "annotations": annotations}
    form = _descriptor_form(fields)
    if form is None:
        model = _models().ResourceDescriptor(name="code", uri=uri,
                                             digest={"gitCommit": code.commit},
                                             annotations=annotations)
        return model.to_json_dict()  # type: ignore[no-any-return]
    return form


def provenance_document(*, name: str, root: str, inputs: InputsLike,
                        started_on: dt.datetime, finished_on: dt.datetime,
                        builder_id: str = DEFAULT_BUILDER_ID, invocation_id: str | None = None,
                        byproducts: Sequence[Mapping[str, Any]] | None = None,
                        parents: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The SLSA Provenance v1 statement: ``provenance.build_provenance(...).to_json_dict()``.

    ``byproducts`` and ``parents`` are descriptors as JSON
    (``ResourceDescriptor.to_json_dict()``); ``parents`` are appended to
    ``resolvedDependencies`` and are not part of the identity.

    Raises:
        pydantic.ValidationError: what the models raise (a malformed root digest...).
        InputError: the identity inputs cannot be written as canonical JSON.
    """
    dependencies = [_code_descriptor(inputs.code)]
    for dataset in inputs.data:
        dependencies.append(descriptor(f"dataset:{dataset.name}", dataset.sha256,
                                       uri=dataset.uri))
    dependencies.extend(_given_descriptor(parent) for parent in parents or [])
    external = {"name": name, **inputs.canonical_inputs()}
    metadata: dict[str, Any] = {"startedOn": rfc3339(started_on),
                                "finishedOn": rfc3339(finished_on)}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    run_details: dict[str, Any] = {
        "builder": {"id": builder_id, "version": {"mlprov": __version__}},
        "metadata": metadata,
    }
    if byproducts:
        run_details["byproducts"] = [_given_descriptor(b) for b in byproducts]
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {
                "identity": identity_of(inputs),
                "python": platform.python_version(),
                "platform": f"{sys.platform}-{platform.machine()}",
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": run_details,
    }
    return statement_document([descriptor(name, root)], SLSA_PROVENANCE_V1, predicate)


def bom_statement_document(bom: dict[str, Any], *, name: str, root: str) -> dict[str, Any]:
    """The statement carrying ``bom``: ``sbom.bom_statement(bom, ...).to_json_dict()``."""
    return statement_document([descriptor(name, root)], CYCLONEDX_BOM_PREDICATE, bom)


# -- the evidence index --------------------------------------------------------------------

def index_bytes(*, name: str, identity: str, root_digest: str, files: dict[str, str],
                mlprov_version: str) -> bytes:
    """``evidence.json``: ``EvidenceIndex(...).model_dump_json(by_alias=True, indent=2)`` + newline.

    Raises:
        pydantic.ValidationError: the model refuses a value (not a string...).
        pydantic_core.PydanticSerializationError: a lone surrogate in a value.
        InputError: a lone surrogate in a file name (pydantic would write U+FFFD).
    """
    values = (name, identity, root_digest, mlprov_version)
    if all(_text(v) for v in values) and type(files) is dict \
            and all(_text(k) and _text(v) for k, v in files.items()):
        document = {"schema": EVIDENCE_SCHEMA, "name": name, "identity": identity,
                    "rootDigest": root_digest, "files": files, "mlprovVersion": mlprov_version}
        # pydantic-core writes JSON as serde_json does: UTF-8 as is, the short escapes
        # (\" \\ \b \f \n \r \t), other controls as lower-case \u00XX, U+2028 and DEL
        # as is, two-space indent, "key": value; json with ensure_ascii=False is the same.
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    from mlprov.evidence import EvidenceIndex

    index = EvidenceIndex(name=name, identity=identity, root_digest=root_digest, files=files,
                          mlprov_version=mlprov_version)
    data = index.model_dump_json(by_alias=True, indent=2).encode() + b"\n"
    if any(not _text(str(k)) for k in index.files):
        raise InputError("cannot write evidence.json: a file name is not valid Unicode "
                         "(a lone surrogate)")
    return data
