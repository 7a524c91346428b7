"""The ML-BOM: a CycloneDX 1.6 document describing what went into a model.

``sbom.cdx.json`` (and the predicate of ``sbom.sigstore.json``, predicate type
``https://cyclonedx.org/bom``, subject = the model's root digest) holds:

- ``metadata.component``: the model (type ``machine-learning-model``), its root
  digest as a SHA-256 hash, its licence, the training code as a ``vcs``
  reference, the identity as a property, and a ``modelCard`` (approach, task,
  architecture, training datasets by ``bom-ref``, inputs/outputs, performance
  metrics as strings, considerations);
- one ``data`` component per training dataset, with its digest and a ``data``
  entry (``type: dataset``);
- parent models (when the provenance records them) as model components;
- the training environment's Python packages (name, version, purl, licences),
  read from the interpreter's installed distributions or from a
  requirements/lock file;
- the dependency graph: model -> datasets, parents and top-level packages;
  package -> the packages it requires.

The document is written here as plain JSON values: exactly what
cyclonedx-python-lib's ``JsonV1Dot6(bom).output_as_string()`` writes for the same
BOM (keys, key order, array order), then ``modelCard``, ``authors`` and
``component.data``, which the library does not model (SPECS.md §5.1). Building
it imports neither the library nor jsonschema, and ``attest`` does not validate
it: the library stays the authority in the tests (``tests/test_sbom_writer.py``
compares the writer's document with the library's for generated inputs and
checks it against the library's strict 1.6 schema), and every BOM is checked
with that strict schema when it is read back (:func:`read_bom`, on every
verify). ``validate=True`` (or :func:`validate_bom`) checks one on request.
Input the schema would refuse is refused by the writer (:class:`InputError`).
The model component also pins other evidence files by SHA-256
(``externalReferences``: the model card, the provenance and eval bundles), so
the builder's signature over the SBOM covers them.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mlprov import __version__
from mlprov._internal.cardfields import CardFields, CardView, licence_names
from mlprov._internal.documents import CYCLONEDX_BOM_PREDICATE, bom_statement_document
from mlprov._internal.readers import MAX_ENVIRONMENT_BYTES, load_toml, read_text
from mlprov.errors import BundleError, InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mlprov._internal.inputs import Code, Dataset
    from mlprov._internal.intoto import StatementLike
    from mlprov._internal.parents import ParentRef
    from mlprov._internal.provenance_reader import ProvenanceFacts
    from mlprov._internal.schema_verdicts import SchemaVerdicts
    from mlprov.evaluation import EvalPredicate
    from mlprov.identity import CodeRef, DataRef
    from mlprov.provenance import TrainingProvenance
    from mlprov.statements import Statement

__all__ = [
    "CYCLONEDX_BOM_PREDICATE",
    "SPEC_VERSION",
    "BomDraft",
    "Package",
    "PackageInfo",
    "SbomInfo",
    "bom_file_bytes",
    "bom_statement",
    "build_bom",
    "installed_packages",
    "is_spdx_id",
    "licence_names",
    "normalise_name",
    "pin_evidence",
    "prepare_bom",
    "read_bom",
    "read_environment_file",
    "sbom_info",
    "validate_bom",
]

SPEC_VERSION: Final = "1.6"
#: CycloneDX versions whose BOMs mlprov reads (validated against their schema).
_READABLE_VERSIONS = ("1.5", "1.6", "1.7")
MODEL_REF: Final = "model"
_PROPERTY = "mlprov:"
_TOOL_NAME = "mlprov"
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_PINNED_VERSION = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
                             r"===?\s*([^\s;,]+)\s*(?:;.*)?$")
_HASH_OPTION = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})")
_MAX_SAFE_FILE_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")

# Trove licence classifiers with one clear SPDX id. Others are kept by name.
_CLASSIFIER_SPDX = {
    "Apache Software License": "Apache-2.0",
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "zlib/libpng License": "Zlib",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
}


_NAME_SEPARATORS = re.compile(r"[-_.]+")


def normalise_name(name: str) -> str:
    """A Python package name in PEP 503 form (``Foo_Bar`` -> ``foo-bar``)."""
    return _NAME_SEPARATORS.sub("-", name).lower()


#: :func:`normalise_name`, remembered for :attr:`Package.key`: an attest asks for the
#: keys of its 100-odd packages some 1,600 times (about 1.5 ms uncached).
_package_key = lru_cache(maxsize=4096)(normalise_name)


@dataclass(frozen=True)
class Package:
    """A Python package of the training environment."""

    name: str
    version: str
    licenses: tuple[str, ...] = ()
    sha256: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # normalised names of the packages it requires

    @property
    def key(self) -> str:
        """The normalised name."""
        return _package_key(self.name)

    @property
    def purl(self) -> str:
        """``pkg:pypi/<name>@<version>`` (purl-spec: pypi names lower-case, ``-`` for ``_``)."""
        from packageurl import PackageURL

        return str(PackageURL(type="pypi", name=self.key, version=self.version).to_string())


# ---------------------------------------------------------------------------
# The training environment
# ---------------------------------------------------------------------------


def _one_line(value: str | None, limit: int = 100) -> str | None:
    """A metadata licence field worth keeping: one short line (not a licence text)."""
    if not value:
        return None
    value = value.strip()
    if not value or "\n" in value or len(value) > limit or value.upper() == "UNKNOWN":
        return None
    return value


@cache
def _spdx_ids() -> dict[str, str] | None:
    """The SPDX licence ids cyclonedx-python-lib knows, by their lower-case form.

    The list and the mapping ``cyclonedx.spdx.fixup_id`` uses (read from the same
    file of the library), without importing that module: its import builds
    license-expression's parser, about 50 ms. None when the list is not where
    that module reads it, or names two ids differing only in case (the
    library's pick would then depend on set order): the library is asked then.
    """
    try:
        from cyclonedx.schema._res import SPDX_JSON

        with open(SPDX_JSON, encoding="utf-8") as file:
            ids = json.load(file).get("enum", [])
        by_lower = {i.lower(): i for i in ids if isinstance(i, str)}
        distinct = len(set(ids))
    except (ImportError, OSError, ValueError, AttributeError, TypeError):
        return None
    return by_lower if by_lower and len(by_lower) == distinct else None


def _fixup_id(value: str) -> str | None:
    """The SPDX id ``value`` names in any case (``cyclonedx.spdx.fixup_id``), else None."""
    ids = _spdx_ids()
    if ids is None:
        from cyclonedx.spdx import fixup_id

        found = fixup_id(value)
        return None if found is None else str(found)
    return ids.get(value.lower())


def is_spdx_id(value: str) -> bool:
    """Whether ``value`` is exactly an SPDX licence id (case as SPDX writes it)."""
    return _fixup_id(value) == value


@lru_cache(maxsize=4096)
def _spdx(value: str) -> str | None:
    """The SPDX id or expression ``value`` names, else None.

    An id is looked up (:func:`_fixup_id`); the verdict on anything else is
    ``cyclonedx.spdx.is_expression``'s, decided from license-expression's list
    of licences where that list alone decides it (:func:`_expression_verdict`),
    else by the library, imported only then. Remembered: the scan of the
    environment and the BOM's licences ask about the same values.
    """
    fixed = _fixup_id(value)
    if fixed is not None:
        return fixed
    verdict = _expression_verdict(value)
    if verdict is None:
        from cyclonedx.spdx import is_expression

        verdict = is_expression(value)
    return value if verdict else None


#: license-expression's tokens (its ``_pyahocorasick.get_tokens``): runs of text,
#: of whitespace, and parentheses.
_EXPRESSION_TOKEN = re.compile(r"[^\s()]+|\s+|[()]")
_OPERATORS = frozenset({"and", "or"})


@dataclass(frozen=True)
class _LicenceWords:
    """What license-expression's SPDX licensing knows, as far as the verdicts below need.

    ``words``: every token (lower case) of every SPDX key and alias of its index.
    ``licences``: the one-token keys and aliases naming only licences (no
    exception) of that licensing, and no token of a key or alias of several.
    """

    words: frozenset[str]
    licences: frozenset[str]


@cache
def _licence_words() -> _LicenceWords | None:
    """:class:`_LicenceWords` from the index license-expression ships, or None.

    The file ``cyclonedx.spdx`` builds its licensing from (read with json:
    about 12 ms, against about 40 ms for importing ``cyclonedx.spdx`` and
    license-expression's parser). None when it is not there, or when a key of
    several tokens holds an operator or a parenthesis.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("license_expression")
        if spec is None or spec.origin is None:
            return None
        index = os.path.join(os.path.dirname(spec.origin), "data",
                             "scancode-licensedb-index.json")
        with open(index, encoding="utf-8") as file:
            entries = json.load(file)
    except (ImportError, OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    words: set[str] = set()
    several: set[str] = set()
    licence: dict[str, bool] = {}  # one-token name -> whether every use names a licence
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        aliases = entry.get("other_spdx_license_keys") or []
        used = bool(entry.get("spdx_license_key")) and not entry.get("is_exception", False)
        for name in [entry.get("spdx_license_key"), *(aliases if isinstance(aliases, list)
                                                       else [])]:
            if not isinstance(name, str):
                continue
            lowered = name.lower()
            if "(" in lowered or ")" in lowered or lowered.split() != [lowered]:
                tokens = [t for t in _EXPRESSION_TOKEN.findall(lowered) if not t.isspace()]
            else:  # one run of text (most keys): its only token, without the regex (~1.5 ms)
                tokens = [lowered]
            words.update(tokens)
            if len(tokens) == 1:
                licence[tokens[0]] = licence.get(tokens[0], True) and used
            else:
                several.update(tokens)
    if several & {"and", "or", "with", "(", ")"}:
        return None
    return _LicenceWords(words=frozenset(words), licences=frozenset(
        name for name, only_licences in licence.items()
        if only_licences and name not in several))


def _expression_verdict(value: str) -> bool | None:
    """``cyclonedx.spdx.is_expression(value)`` where the licence list decides it, else None.

    False: a word of ``value`` (ASCII) that is no token of any licence key or
    alias nor an operator: license-expression makes it an unknown licence,
    which fails validation. True: ``LICENCE OP LICENCE ...`` with single
    spaces, ``OP`` ``AND`` or ``OR`` in any case, each ``LICENCE`` a one-token
    licence key or alias (see :class:`_LicenceWords`). Anything else (``WITH``,
    parentheses, exceptions, keys of several words, other spacing): None.
    ``tests/test_sbom_env.py`` holds both verdicts to the library's.
    """
    if not value.isascii():
        return None  # lower-casing could shift license-expression's token positions
    known = _licence_words()
    if known is None:
        return None
    lowered = value.lower()
    for token in _EXPRESSION_TOKEN.findall(lowered):
        if token not in known.words and token not in ("and", "or", "with", "(", ")") and \
                not token.isspace():
            return False
    parts = lowered.split(" ")
    if len(parts) % 2 and all(p in known.licences for p in parts[0::2]) and \
            all(p in _OPERATORS for p in parts[1::2]):
        return True
    return None


def _field(metadata: Any, name: str) -> str | None:
    """One core-metadata field (``get_all`` is in the PackageMetadata protocol; ``get`` is not)."""
    values = metadata.get_all(name)
    return str(values[0]) if values else None


def _metadata_licenses(metadata: Any) -> tuple[str, ...]:
    """Licences of an installed distribution (PEP 639 expression, licence field, classifiers).

    A ``License-Expression`` is kept as the SPDX id it names, else as written,
    expression or not; a ``License`` field wins over the classifiers when it is
    an SPDX id or expression. So license-expression parses a value only when
    its verdict decides: a ``License`` field that is not an id, beside
    classifiers that name ids.
    """
    expression = _one_line(_field(metadata, "License-Expression"), 400)
    if expression:
        return (_fixup_id(expression) or expression,)
    field_value = _one_line(_field(metadata, "License"))
    classifiers = [c.split(" :: ")[-1] for c in metadata.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    ids = [_CLASSIFIER_SPDX[c] for c in classifiers if c in _CLASSIFIER_SPDX]
    if field_value:
        spdx_id = _fixup_id(field_value)
        if spdx_id:
            return (spdx_id,)
        if ids and _spdx(field_value):  # an expression (without ids, kept as written anyway)
            return (field_value,)
    if ids:
        return tuple(dict.fromkeys(ids))
    if field_value:
        return (field_value,)
    return tuple(dict.fromkeys(c for c in classifiers if c != "OSI Approved"))


def _requires(requirements: list[str] | None) -> tuple[str, ...]:
    """Names a distribution requires unconditionally (extras are left out)."""
    names = []
    for requirement in requirements or []:
        _, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        match = _NAME.match(requirement.strip())
        if match:
            names.append(normalise_name(match.group(1)))
    return tuple(dict.fromkeys(names))


def _path_state() -> tuple[tuple[str, int], ...]:
    """``sys.path`` with each entry's mtime: installing or removing a package changes it."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def installed_packages() -> list[Package]:
    """The distributions installed for this interpreter, first on ``sys.path`` winning.

    Licences come from the metadata (``License-Expression``, else a short
    ``License`` field that is an SPDX id, else the licence classifiers, else the
    field as a name); requirements with an ``extra`` marker are left out of the graph.
    The result is reused while ``sys.path`` and its directories are unchanged.

    Raises:
        InputError: a distribution's metadata headers cannot be read (not UTF-8,
            larger than 4 MiB, not a regular file).
    """
    return list(_installed(_path_state()))


#: A core-metadata header line as the stdlib's email parser (policy ``compat32``,
#: what ``importlib.metadata`` uses) recognises one: a Unix ``From `` line, a
#: name of printable ASCII but ``:`` followed by ``:``, or a continuation. The
#: first other line, the empty one included, ends the headers.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
#: The end of a core-metadata file's headers, in its bytes: its first empty line
#: (a line break, ``\r\n``, ``\r`` or ``\n``, right after another; atomic
#: groups, so a ``\r\n`` is never read as two breaks).
_HEADERS_END = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
#: Bound on a core-metadata file's headers (the long description, in the body,
#: is not read). Some projects put a whole licence text in the ``License``
#: header: SciPy's headers are 58 KB.
_MAX_HEADER_BYTES: Final = 4 * 1024 * 1024
_READ_CHUNK = 16 * 1024
_DAMAGED_HINT: Final = ("reinstall or remove that distribution, or describe the training "
                        "environment with --environment FILE (a requirements or lock file)")


class _Headers:
    r"""The headers of a core-metadata text, read as ``Distribution.metadata`` reads them.

    ``importlib.metadata`` parses the file with ``email.message_from_string``
    and re-indents values spanning several lines (RFC 822 folding). The same
    rules, for headers only: lines end at ``\r\n``, ``\r`` or ``\n``; a line
    starting with a space or tab continues the header before it (its line breaks
    kept), or is dropped when none is open; a ``From `` line or one starting
    with ``:`` closes the open header and is dropped; a header's value is what
    follows its ``:`` with leading spaces and tabs removed, trailing line breaks
    removed. ``tests/test_sbom_env.py`` holds it to the email parser on any text.
    """

    __slots__ = ("_fields",)

    def __init__(self, text: str) -> None:
        self._fields: dict[str, list[str]] = {}  # lower-case name -> values, in order
        if "\r" not in text:
            self._read_lines(text.split("\n"))
            return
        pieces = _LINE_BREAK.split(text)
        lines, ends = pieces[0::2], [*pieces[1::2], ""]
        header_line = _HEADER_LINE.match
        name: str | None = None  # the header open, its value so far and its last line break
        value = pending = ""
        for line, end in zip(lines, ends, strict=True):
            if not line or not header_line(line):
                break
            if line[0] in " \t":
                if name is not None:
                    value += pending + line
                    pending = end
                continue
            if name is not None:
                self._fields.setdefault(name.lower(), []).append((value + pending).rstrip("\r\n"))
                name = None
            colon = line.find(":")
            if line.startswith("From ") or colon == 0:
                continue
            name, value, pending = line[:colon], line[colon + 1:].lstrip(" \t"), end
        if name is not None:
            self._fields.setdefault(name.lower(), []).append((value + pending).rstrip("\r\n"))

    def _read_lines(self, lines: list[str]) -> None:
        r"""The same, faster, for lines that all ended with ``\n`` (but maybe the last).

        Every line break kept inside a value is then ``\n``, and the one a value
        would end with is the one removed from it.
        """
        header_line = _HEADER_LINE.match
        name: str | None = None
        parts: list[str] = []  # the open header's value: first line, continuations
        for line in lines:
            if not line or not header_line(line):
                break
            if line[0] in " \t":
                if name is not None:
                    parts.append(line)
                continue
            if name is not None:
                self._fields.setdefault(name.lower(), []).append("\n".join(parts))
                name = None
            colon = line.find(":")
            if line.startswith("From ") or colon == 0:
                continue
            name, parts = line[:colon], [line[colon + 1:].lstrip(" \t")]
        if name is not None:
            self._fields.setdefault(name.lower(), []).append("\n".join(parts))

    def get_all(self, name: str) -> list[str] | None:
        """Every value of the header ``name`` (case-insensitive), or None."""
        values = self._fields.get(name.lower())
        if values is None:
            return None
        return [_refolded(v) if "\n" in v else v for v in values]


def _refolded(value: str) -> str:
    """A folded value as ``importlib.metadata`` gives it (its ``_adapters.Message``)."""
    import textwrap

    return textwrap.dedent(" " * 8 + value)


def _metadata_head(path: str) -> str | None:
    r"""The text of a core-metadata file up to its headers' end, newlines made ``\n``.

    Decoded and translated as ``Distribution.read_text`` (UTF-8, universal
    newlines) reads the whole file; None where it gives None (no such file, a
    directory, no permission).

    Raises:
        InputError: not UTF-8, not a regular file, headers too large, a read error.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | \
        getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return None
        if not stat.S_ISREG(mode):
            raise InputError(f"{path}: not a regular file", hint=_DAMAGED_HINT)
        data = bytearray()  # amortised appends: headers may run to the bound below
        while chunk := os.read(fd, _READ_CHUNK):
            start = max(0, len(data) - 3)  # an end of headers may span two chunks
            data += chunk
            if b"\r" in data:
                found = _HEADERS_END.search(data, start)
                end = found.end() if found else -1
            else:  # the usual case, found faster
                end = data.find(b"\n\n", start)
                end = end + 2 if end >= 0 else -1
            if end >= 0:
                data = data[:end]
                break
            if len(data) > _MAX_HEADER_BYTES:
                raise InputError(f"{path}: core metadata headers over "
                                 f"{_MAX_HEADER_BYTES} bytes", hint=_DAMAGED_HINT)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: core metadata that is not UTF-8",
                         hint=_DAMAGED_HINT) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _metadata(path: str) -> _Headers:
    """The core metadata headers of the distribution at ``path`` (``*.dist-info``/``*.egg-info``).

    The files ``Distribution.metadata`` reads, in its order: ``METADATA``, else
    ``PKG-INFO``, else ``path`` itself (an ``.egg-info`` file); an empty one counts
    as missing.
    """
    text = (_metadata_head(os.path.join(path, "METADATA"))
            or _metadata_head(os.path.join(path, "PKG-INFO")) or _metadata_head(path))
    return _Headers(text or "")


def _distribution_metadata(dist: Any) -> _Headers:
    """The core metadata headers of an ``importlib.metadata`` distribution (any kind)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("")
    return _Headers(text or "")


def _distribution_paths() -> list[str] | None:
    """The paths ``importlib.metadata.distributions()`` finds, in its order, or None.

    Its rules (``MetadataPathFinder``, ``FastPath``, ``Lookup``), for each
    ``sys.path`` entry in turn (``""`` is the current directory): the entry's
    children (``os.listdir`` order) ending in ``.dist-info`` or ``.egg-info``
    (any case), grouped by the normalised project name before the first ``-``
    (groups in order of first appearance), then, in a ``*.egg`` directory, its
    ``EGG-INFO``. None when that is not the whole answer: a ``sys.path`` entry
    that is a file (a zip archive), one that is not a string, or an import
    finder other than the standard ``PathFinder`` that finds distributions
    (``importlib.metadata`` is asked then).
    """
    import importlib.machinery

    finders = [f for f in sys.meta_path if getattr(f, "find_distributions", None)]
    if finders != [importlib.machinery.PathFinder]:
        return None
    paths: list[str] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            return None
        try:
            children = os.listdir(entry or ".")
        except Exception:  # as importlib.metadata: an entry it cannot list has none
            if os.path.isfile(entry or "."):
                return None
            continue
        groups: dict[str, list[str]] = {}
        eggs: list[str] = []
        in_egg = os.path.basename(entry).lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                project = normalise_name(low.rpartition(".")[0].partition("-")[0])
                groups.setdefault(project, []).append(os.path.join(entry, child))
            elif in_egg and low == "egg-info":
                eggs.append(os.path.join(entry, child))
        paths.extend(path for group in groups.values() for path in group)
        paths.extend(eggs)
    return paths


def _environment() -> Iterator[_Headers]:
    """The metadata headers of every distribution, in ``importlib.metadata``'s order."""
    paths = _distribution_paths()
    if paths is None:
        import importlib.metadata

        yield from map(_distribution_metadata, importlib.metadata.distributions())
    else:
        yield from map(_metadata, paths)


@cache
def _installed(_state: tuple[tuple[str, int], ...]) -> tuple[Package, ...]:
    found: dict[str, Package] = {}
    for metadata in _environment():
        name, version = _field(metadata, "Name"), _field(metadata, "Version")
        if not name or not version or normalise_name(name) in found:
            continue
        found[normalise_name(name)] = Package(
            name=name, version=version, licenses=_metadata_licenses(metadata),
            requires=_requires(metadata.get_all("Requires-Dist")))  # parsed once
    return tuple(sorted(found.values(), key=lambda p: p.key))


def _requirements_lines(text: str) -> list[tuple[int, str]]:
    """Logical lines (continuations joined, comments dropped) with their line numbers."""
    lines: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            lines.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        lines.append((start, buffer.strip()))
    return lines


def _parse_requirements(text: str, what: str) -> list[Package]:
    packages = []
    for number, line in _requirements_lines(text):
        if line.startswith("-"):
            if re.match(r"^(-r|-c|-e|--requirement|--constraint|--editable)\b", line):
                raise InputError(f"{what} line {number}: {line.split()[0]} is not supported",
                                 hint="pass one fully pinned file (pip freeze, pip-compile, "
                                      "uv export), not includes or editables")
            continue  # index and install options say nothing about the packages
        hashes = tuple(h.lower() for h in _HASH_OPTION.findall(line))
        requirement = _HASH_OPTION.sub("", line).strip()
        match = _PINNED_VERSION.match(requirement)
        if not match:
            raise InputError(f"{what} line {number}: {requirement!r} is not pinned to one "
                             "version (NAME==VERSION)",
                             hint="use a lock file or `pip freeze` output")
        packages.append(Package(name=match.group(1), version=match.group(2), sha256=hashes))
    return packages


def _parse_lock(text: str, what: str) -> list[Package]:
    document = load_toml(text, what=what)
    # pylock.toml (PEP 751) has [[packages]]; uv.lock and poetry.lock have [[package]].
    entries = document.get("packages", document.get("package"))
    if not isinstance(entries, list):
        raise InputError(f"{what} lists no packages",
                         hint="expected pylock.toml ([[packages]]) or uv.lock/poetry.lock "
                              "([[package]])")
    packages = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        version = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise InputError(f"{what}: a package entry has no name")
        if not isinstance(version, str) or not version:
            raise InputError(f"{what}: package {name!r} has no version")
        packages.append(Package(name=name, version=version))
    return packages


def read_environment_file(path: Path) -> list[Package]:
    """Read the training environment from a requirements or lock file.

    ``*.toml`` and ``*.lock`` files are read as pylock.toml (PEP 751), uv.lock or
    poetry.lock; anything else as a pinned requirements file (``NAME==VERSION``,
    optionally with ``--hash=sha256:...``). A package also installed here, at the
    same version, gets its licences and requirements from the installed metadata.

    Raises:
        InputError: unreadable, an unpinned or unsupported line, a package twice.
    """
    what = f"environment file {path}"
    try:
        text = read_text(path, what="environment file", limit=MAX_ENVIRONMENT_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}") from exc
    if path.suffix in (".toml", ".lock"):
        packages = _parse_lock(text, what)
    else:
        packages = _parse_requirements(text, what)
    installed = {p.key: p for p in installed_packages()}
    seen: dict[str, Package] = {}
    for package in packages:
        if package.key in seen:
            raise InputError(f"{what}: package {package.name!r} is listed twice")
        local = installed.get(package.key)
        if local is not None and local.version == package.version:
            package = Package(name=package.name, version=package.version,
                              licenses=local.licenses, sha256=package.sha256,
                              requires=local.requires)
        seen[package.key] = package
    return sorted(seen.values(), key=lambda p: p.key)


# ---------------------------------------------------------------------------
# Building the BOM
# ---------------------------------------------------------------------------


def _spdx_licence_id(value: str) -> str | None:
    """The SPDX licence id ``value`` names (case fixed as SPDX writes it), else None.

    cyclonedx-python-lib's ``spdx.fixup_id``, asked through this module's own
    classification (:func:`_spdx`, :func:`is_spdx_id`): ``_spdx`` gives the fixed
    id, or ``value`` itself for an expression, which :func:`is_spdx_id` tells apart.
    """
    fixed = _spdx(value)
    if fixed is None or (fixed == value and not is_spdx_id(value)):
        return None
    return fixed


def _license_objects(values: tuple[str, ...]) -> list[dict[str, Any]]:
    """CycloneDX ``licenses``: SPDX ids, else names; one expression stands alone (schema rule).

    As cyclonedx-python-lib writes its ``LicenseRepository``: a set (duplicates
    dropped) of licences ordered by id, ids before names, then by name.
    """
    if len(values) == 1 and _spdx_licence_id(values[0]) is None and _spdx(values[0]):
        return [{"expression": values[0]}]
    ids: dict[str, None] = {}
    names: dict[str, None] = {}
    for value in values:
        if not value:
            raise InputError("a licence of the SBOM is empty",
                             hint="name each licence by SPDX id, expression or name")
        spdx_id = _spdx_licence_id(value)
        if spdx_id:
            ids[spdx_id] = None
        else:
            names[value] = None
    return [*({"license": {"id": i}} for i in sorted(ids)),
            *({"license": {"name": n}} for n in sorted(names))]


_SHA256_HEX = re.compile(r"\A[0-9a-fA-F]{64}\Z")


def _sha256_hashes(*digests: str) -> list[dict[str, str]]:
    """CycloneDX ``hashes`` (SHA-256): a set, ordered by content, as the library writes it.

    Raises:
        InputError: a digest is not 64 hex digits (the schema's ``hash-content``).
    """
    for digest in digests:
        if not _SHA256_HEX.match(digest):
            raise InputError(f"the SBOM is not valid CycloneDX {SPEC_VERSION}: "
                             f"SHA-256 {digest!r} is not 64 hex digits")
    return [{"alg": "SHA-256", "content": d} for d in sorted(set(digests))]


def _properties(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """CycloneDX ``properties``: a set, ordered by (name, value), as the library writes it."""
    return [{"name": n, "value": v} for n, v in sorted(set(pairs))]


#: What cyclonedx-python-lib's ``XsUri`` refuses (a ``%`` not starting an escape, two
#: ``#``) and how it maps the characters an ``iri-reference`` may not hold.
_INVALID_URI = re.compile(r"%(?![0-9A-F]{2})|#.*#", re.IGNORECASE | re.MULTILINE)
_URI_ESCAPES = str.maketrans({" ": "%20", '"': "%22", "'": "%27", "[": "%5B", "]": "%5D",
                              "<": "%3C", ">": "%3E", "{": "%7B", "}": "%7D"})


def _xs_uri(uri: str, what: str) -> str:
    """``uri`` as the library's ``XsUri`` writes it (a few characters percent-encoded).

    Raises:
        InputError: ``uri`` is not a URI by the library's test.
    """
    if _INVALID_URI.search(uri):
        raise InputError(f"{what} {uri!r} is not a valid URI",
                         hint="percent-encode a % as %25; a URI has at most one #")
    return uri.translate(_URI_ESCAPES)


def _roots(packages: list[Package]) -> list[Package]:
    """Packages no other package requires, plus one per cycle nothing else reaches."""
    keys = {p.key for p in packages}
    by_key = {p.key: p for p in packages}
    required = {r for p in packages for r in p.requires if r in keys and r != p.key}
    roots = [p for p in packages if p.key not in required]
    reached: set[str] = set()
    stack = [p.key for p in roots]
    for package in packages:  # sorted: deterministic
        if not stack and package.key not in reached:
            roots.append(package)
            stack.append(package.key)
        while stack:
            key = stack.pop()
            if key in reached:
                continue
            reached.add(key)
            stack.extend(r for r in by_key[key].requires if r in keys)
    return roots


#: The top-level arrays whose items are memoised by :func:`_validator` (see there).
_MEMO_ARRAYS = ("components", "dependencies")
#: Items proven valid, per validator; cleared when it grows past this (a long-lived
#: process validating many BOMs), which costs only speed.
_MEMO_LIMIT = 50_000


def _canonical(item: Any) -> str:
    """One JSON text per JSON value: equal texts are equal values (sorted keys)."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def _has_number(value: Any) -> bool:
    """Whether a JSON value holds a number anywhere (``bool`` is not a number)."""
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_number(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fast_validator_class(base: Any, root: dict[str, Any]) -> Any:
    """``base`` (jsonschema's Draft 7 validator) with two keywords made cheaper, same verdicts.

    - ``uniqueItems``: jsonschema compares objects pairwise, O(n²) for the
      BOM's hundred-odd components and dependencies. For an array without
      numbers, jsonschema's equality (``jsonschema._utils.equal``) is exactly
      equality of the canonical JSON texts (strings compare by value, arrays in
      order, objects by key set and values, ``true`` is not ``1``), so a set of
      those texts decides it in O(n). Arrays holding numbers (where ``1`` equals
      ``1.0``) go to jsonschema's own check.
    - ``items`` of the top-level ``components`` and ``dependencies`` arrays:
      the schema checks each item on its own against one subschema, and in
      Draft 7 that verdict depends only on the subschema and the item (these
      two subschemas sit in the root schema's ``properties``, so they are always
      resolved against the root). An item whose canonical JSON was already found
      valid by this validator is not checked again: a draft BOM validated on
      request (``prepare_bom(..., validate=True)``), then the final BOM (the
      same packages and graph, plus the model's digest and evidence pins),
      leaves only the metadata to check; a registry verifying many versions of
      one environment sees the same items. Invalid items are never remembered; every item
      not remembered is checked in full, with the usual error.
    """
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
    from jsonschema.validators import extend  # type: ignore[import-untyped]

    plain_items = base.VALIDATORS["items"]
    plain_unique = base.VALIDATORS["uniqueItems"]
    properties = root.get("properties", {})
    memo_schemas = {id(properties[name]["items"]) for name in _MEMO_ARRAYS
                    if isinstance(properties.get(name), dict)
                    and isinstance(properties[name].get("items"), dict)}
    valid: set[tuple[int, str]] = set()

    def items(validator: Any, schema_items: Any, instance: Any, schema: Any) -> Any:
        if id(schema_items) not in memo_schemas or not isinstance(instance, list):
            yield from plain_items(validator, schema_items, instance, schema)
            return
        if len(valid) > _MEMO_LIMIT:
            valid.clear()
        for index, item in enumerate(instance):
            key = (id(schema_items), _canonical(item))
            if key in valid:
                continue
            failed = False
            for error in validator.descend(item, schema_items, path=index):
                failed = True
                yield error
            if not failed:
                valid.add(key)

    def unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
        if unique is True and isinstance(instance, list) and not _has_number(instance):
            if len({_canonical(item) for item in instance}) != len(instance):
                yield ValidationError(f"{instance!r} has non-unique elements")
            return
        yield from plain_unique(validator, unique, instance, schema)

    return extend(base, {"items": items, "uniqueItems": unique_items})


@cache
def _validator(version: str) -> Callable[[Any], Any]:
    """The strict CycloneDX ``version`` schema check: JSON value -> first error, or None.

    The value is plain JSON, as ``json.loads`` makes it (see :func:`_json_copy`).

    It is cyclonedx-python-lib's own strict validator (schema, referenced
    schemas, format checker), run through :func:`_fast_validator_class`; should
    the library's internals change shape, the library's validator is used as is.
    """
    _import_jsonschema_lean()
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    library = JsonStrictValidator(SchemaVersion.from_version(version))
    try:
        strict = library._validator  # jsonschema's Draft7Validator over the strict schema
        fast = _fast_validator_class(type(strict), strict.schema)(
            strict.schema, registry=strict._registry, format_checker=strict.format_checker)
    except AttributeError:
        def slow(structure: Any) -> Any:
            error = library.validate_str(json.dumps(structure))
            return getattr(error, "data", error)

        return slow

    def first_error(structure: Any) -> Any:
        return next(fast.iter_errors(structure), None)

    return first_error


#: Format-checker backends that jsonschema imports when they are installed and that a
#: plain mlprov install lacks (``jsonschema[format-nongpl]``, in every JupyterLab
#: environment, brings them all). rfc3987-syntax compiles an RFC 3987 grammar at import
#: (about 1 s on this project's machine, 2.4 s under load); isoduration pulls in arrow
#: (25 ms); each adds format checks to every validation. ``idna`` is not here: a plain
#: install has it (through requests).
_FORMAT_EXTRAS = ("rfc3987", "rfc3987_syntax", "rfc3339_validator", "rfc3986_validator",
                  "isoduration", "webcolors", "uri_template", "fqdn", "jsonpointer")


def _import_jsonschema_lean() -> None:
    """Import jsonschema as a plain install has it, whatever else is installed.

    While jsonschema is first imported, the IRI format backends are hidden
    (``sys.modules[name] = None`` makes their import fail, which jsonschema
    expects: it then leaves ``iri``/``iri-reference`` unchecked, as in a plain
    install). They are visible again right after, for any other code. So BOM
    validation checks the same formats, and costs the same, in every
    environment. A process that imported jsonschema before mlprov (the test
    suite does, to check IRIs) keeps its full format checker.
    """
    import sys

    if "jsonschema" in sys.modules:
        return
    hidden = [name for name in _FORMAT_EXTRAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import jsonschema  # type: ignore[import-untyped]  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def _json_copy(document: dict[str, Any]) -> dict[str, Any]:
    """A deep copy made of plain JSON values (tuples become lists): what is written."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    return copy


def _schema_errors(document: dict[str, Any], version: str, *, copied: bool = False
                   ) -> str | None:
    """The first strict-schema error of ``document`` as one line, or None.

    ``copied``: ``document`` is already a :func:`_json_copy` (saves a copy).
    """
    from cyclonedx.exception import MissingOptionalDependencyException

    try:
        error = _validator(version)(document if copied else _json_copy(document))
    except MissingOptionalDependencyException as exc:
        raise InputError("CycloneDX schema validation needs jsonschema",
                         hint="pip install 'cyclonedx-python-lib[json-validation]'") from exc
    if error is None:
        return None
    message = getattr(error, "message", None) or str(error).splitlines()[0]
    path = "/".join(str(p) for p in getattr(error, "absolute_path", ()))
    return f"{path or '(document)'}: {message}"


def _check(document: dict[str, Any], *, copied: bool = False) -> None:
    error = _schema_errors(document, SPEC_VERSION, copied=copied)
    if error is not None:
        raise InputError(f"the SBOM is not valid CycloneDX {SPEC_VERSION}: {error}")


def validate_bom(document: dict[str, Any]) -> None:
    """Check ``document`` against the strict CycloneDX 1.6 JSON schema.

    Raises:
        InputError: the document does not validate (naming the first error).
    """
    _check(document)


def _package_component(package: Package) -> dict[str, Any]:
    """The CycloneDX component of one environment package (keys as the library orders them).

    Raises:
        InputError: the name makes no purl (e.g. ``/``: packageurl drops the slashes).
    """
    try:
        purl = package.purl
    except (TypeError, ValueError) as exc:  # packageurl on a name that is empty once encoded
        raise InputError(f"package {package.name!r} has no purl: {exc}") from exc
    component: dict[str, Any] = {"bom-ref": purl}
    if package.sha256:
        component["hashes"] = _sha256_hashes(*package.sha256)
    licenses = _license_objects(package.licenses)
    if licenses:
        component["licenses"] = licenses
    component.update({"name": package.name, "purl": purl, "type": "library",
                      "version": package.version})
    return component


#: The model digest a draft BOM carries until the real one is known. The schema
#: checks only the form of a SHA-256 hash, which every digest shares.
_PENDING_ROOT: Final = "0" * 64


@dataclass(frozen=True)
class _BomBasis:
    """What :func:`build_bom` reads from the provenance (all of it but the finish time)."""

    name: str
    identity: str
    code: CodeRef | Code
    data: tuple[DataRef | Dataset, ...]
    parents: tuple[ParentRef, ...]

    @classmethod
    def of(cls, provenance: TrainingProvenance | ProvenanceFacts) -> _BomBasis:
        from mlprov._internal.parents import parents_from_predicate

        return cls(name=provenance.name, identity=provenance.identity,
                   code=provenance.inputs.code, data=tuple(provenance.inputs.data),
                   parents=parents_from_predicate(provenance.predicate))


@dataclass(frozen=True)
class BomDraft:
    """A BOM built before the model's digest is known (see :func:`prepare_bom`).

    ``document`` is the BOM :func:`build_bom` makes from the same inputs, with
    a placeholder for the model's digest and not yet the provenance's finish time.
    """

    basis: _BomBasis
    packages: tuple[Package, ...]
    card: CardView
    evaluation: EvalPredicate | None
    document: dict[str, Any] = field(repr=False)


def prepare_bom(*, provenance: TrainingProvenance | ProvenanceFacts, packages: list[Package],
                card: CardView | None = None, evaluation: EvalPredicate | None = None,
                validate: bool = False) -> BomDraft:
    """Build, ahead of the model's digest, the BOM :func:`build_bom` will finish.

    ``attest`` calls this while the model is hashed, with a provenance built
    for a placeholder digest: all that depends on the model's bytes is its
    digest, the provenance's finish time and the evidence pins, so
    ``build_bom(..., draft=draft)`` after the hash only fills those in. Input
    the writer refuses (see :func:`build_bom`) fails here, before the hash ends.

    Args:
        provenance: the provenance, for any root digest.
        packages: the training environment.
        card: the model card input (a ``CardInput``; None: no human-written parts).
        evaluation: the eval predicate.
        validate: also check the draft against the strict CycloneDX 1.6 schema
            (cyclonedx-python-lib's, with jsonschema): not needed for the
            writer's own output, which the test suite holds to the schema.

    Raises:
        InputError: input the writer refuses; with ``validate``, a draft that
            is not valid CycloneDX 1.6.
    """
    card = card or CardFields()
    basis = _BomBasis.of(provenance)
    document = _bom_body(basis, packages, card, evaluation, root=_PENDING_ROOT)
    if validate:
        _check(document)
    return BomDraft(basis=basis, packages=tuple(packages), card=card, evaluation=evaluation,
                    document=document)


def build_bom(*, provenance: TrainingProvenance | ProvenanceFacts, root: str,
              packages: list[Package],
              card: CardView | None = None, evaluation: EvalPredicate | None = None,
              validate: bool = False, draft: BomDraft | None = None) -> dict[str, Any]:
    """Build the ML-BOM of a model from its (verified or just built) provenance.

    The document is written here, as plain JSON values, the way
    cyclonedx-python-lib's ``JsonV1Dot6`` writes the same BOM (same keys, key
    order and array order; see :func:`_bom_body`), without importing the
    library. Its validity is the writer's: the test suite compares it with the
    library's output and checks it against the library's strict schema for
    generated inputs, and every ``verify`` checks the signed BOM again.

    Args:
        provenance: the model's training provenance (name, identity, code, data, parents).
        root: the model's root digest (hex).
        packages: the training environment (one entry per normalised name).
        card: the model card input (modelCard considerations, licence...), a
            ``CardInput``; None: no human-written parts (the same BOM as
            ``CardInput()``, written without building a pydantic model).
        evaluation: the eval predicate, whose metrics become performanceMetrics.
        validate: also check the result against the strict CycloneDX 1.6 schema
            with cyclonedx-python-lib and jsonschema (off by default: costs
            their import and about 50 ms; ``attest`` never asks).
        draft: a :func:`prepare_bom` draft; used when it was built from these
            same inputs (else ignored), which gives the same document, faster.

    Returns:
        The BOM as a JSON object, valid against the strict CycloneDX 1.6 schema.

    Raises:
        InputError: input the writer refuses: a package listed twice or two
            packages with one purl, an empty licence, a digest that is not
            SHA-256 hex, a code URI the library would refuse; with
            ``validate``, a result that is not valid CycloneDX 1.6.
    """
    card = card or CardFields()
    basis = _BomBasis.of(provenance)
    if draft is not None and (draft.basis, draft.packages, draft.card, draft.evaluation) == (
            basis, tuple(packages), card, evaluation):
        # The draft is this very document but for the model's digest (its one
        # hash) and the timestamp: fill those into a copy (the draft stays).
        document = _json_copy(draft.document)
        document["metadata"]["component"]["hashes"] = _sha256_hashes(root)
    else:
        document = _bom_body(basis, packages, card, evaluation, root=root)
    if provenance.finished_on:
        document["metadata"]["timestamp"] = provenance.finished_on
    if validate:
        _check(document)
    return document


_TYPE_ORDER = {"data": 0, "library": 1, "machine-learning-model": 2}


def _component_order(component: dict[str, Any]) -> tuple[int, str, str, str]:
    """The library's component order (``Component.__lt__``) for the components written here.

    It compares type, group, name, version, bom-ref, ...: these components
    have no group, within a type all have a version or none, and bom-refs
    are unique, so the first four decide.
    """
    return (_TYPE_ORDER[component["type"]], component["name"], component.get("version", ""),
            component["bom-ref"])


def _bom_body(basis: _BomBasis, packages: list[Package], card: CardView,
              evaluation: EvalPredicate | None, *, root: str) -> dict[str, Any]:
    """The BOM as cyclonedx-python-lib writes it, plus the parts it does not model.

    The library's JSON (``JsonV1Dot6(bom).output_as_string()``) has each
    object's keys in alphabetical order and its sets (components, hashes,
    licences, properties, external references, dependencies and their
    ``dependsOn``) sorted as its model classes compare; the top-level keys are
    put in the order the spec lists them. Then, as before, the model card,
    authors and dataset entries that the library does not model (SPECS.md §5.1).
    ``tests/test_sbom_writer.py`` holds this writer to the library's output.
    """
    import uuid

    code = basis.code
    properties = [(f"{_PROPERTY}identity", basis.identity),
                  (f"{_PROPERTY}code:commit", code.commit)]
    if code.dirty:
        properties.append((f"{_PROPERTY}code:dirty", "true"))
    model: dict[str, Any] = {"bom-ref": MODEL_REF}
    if card.description is not None:
        model["description"] = card.description
    if code.uri:
        model["externalReferences"] = [{"comment": f"training code, commit {code.commit}",
                                        "type": "vcs", "url": _xs_uri(code.uri, "code URI")}]
    model["hashes"] = _sha256_hashes(root)
    licenses = _license_objects((card.license,)) if card.license else []
    if licenses:
        model["licenses"] = licenses
    model.update({"name": basis.name, "properties": _properties(properties),
                  "type": "machine-learning-model"})

    components: list[dict[str, Any]] = []
    edges: list[tuple[str, list[str]]] = []  # (bom-ref, the bom-refs it needs)
    model_needs: list[str] = []
    data_refs = []
    for dataset in basis.data:
        ref = f"data:{dataset.name}"
        entry: dict[str, Any] = {"type": "dataset", "name": dataset.name}
        if dataset.uri:
            entry["contents"] = {"url": dataset.uri}
        components.append({"bom-ref": ref, "hashes": _sha256_hashes(dataset.sha256),
                           "name": dataset.name, "type": "data", "data": [entry]})
        edges.append((ref, []))
        model_needs.append(ref)
        data_refs.append(ref)
    for number, parent in enumerate(basis.parents, 1):
        ref = f"parent:{number}:{parent.role}:{parent.name}"
        props = [(f"{_PROPERTY}parent:role", parent.role)]
        if parent.identity:
            props.append((f"{_PROPERTY}identity", parent.identity))
        component: dict[str, Any] = {"bom-ref": ref}
        if parent.sha256:
            component["hashes"] = _sha256_hashes(parent.sha256)
        component.update({"name": parent.name, "properties": _properties(props),
                          "type": "machine-learning-model"})
        components.append(component)
        edges.append((ref, []))
        model_needs.append(ref)
    purls: dict[str, str] = {}  # normalised name -> purl (bom-ref)
    for package in packages:
        if package.key in purls:
            raise InputError(f"package {package.name!r} is listed twice in the environment")
        package_json = _package_component(package)
        purls[package.key] = package_json["bom-ref"]
        components.append(package_json)
    if len(set(purls.values())) != len(purls):
        raise InputError("two packages of the environment have the same purl",
                         hint="package names must differ in more than '/' at their ends")
    for package in packages:
        edges.append((purls[package.key], [purls[r] for r in package.requires
                                           if r in purls and r != package.key]))
    model_needs.extend(purls[p.key] for p in _roots(packages))
    edges.append((MODEL_REF, model_needs))
    components.sort(key=_component_order)

    document: dict[str, Any] = {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
        "metadata": {"component": model, "timestamp": _now(),
                     "tools": {"components": [{"name": _TOOL_NAME, "type": "application",
                                               "version": __version__}]}}}
    if components:
        document["components"] = components
    document["dependencies"] = _dependency_graph(edges)
    # The parts the library does not model (SPECS.md §5.1), after its keys.
    if card.developers:  # the library would sort and de-duplicate them
        model["authors"] = [{"name": d} for d in card.developers]
    model_card = card.model_card_json(data_refs, evaluation)
    if model_card:
        model["modelCard"] = model_card
    return document


def _now() -> str:
    """The library's default BOM timestamp: now, UTC, ISO 8601 with microseconds."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat()


def _dependency_graph(edges: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """CycloneDX ``dependencies`` for ``edges`` (bom-ref -> the bom-refs it needs).

    As the library writes the graph ``register_dependency`` builds: one entry
    per bom-ref named, as a target or as a dependency, whose ``dependsOn`` is
    the union of those given for it; entries and ``dependsOn`` sorted by
    bom-ref, an empty ``dependsOn`` left out, ``dependsOn`` before ``ref``.
    """
    graph: dict[str, set[str]] = {}
    for target, needs in edges:
        graph.setdefault(target, set()).update(needs)
        for need in needs:
            graph.setdefault(need, set())
    return [{"dependsOn": sorted(needs), "ref": ref} if needs else {"ref": ref}
            for ref, needs in sorted(graph.items())]


def pin_evidence(bom: dict[str, Any], files: dict[str, tuple[str, str]], *,
                 validate: bool = False) -> dict[str, Any]:
    """Return ``bom`` with other evidence files pinned by SHA-256 on the model component.

    ``bom`` itself is left as it was: the result is a new document.

    Args:
        bom: a BOM from :func:`build_bom`.
        files: evidence file name -> (CycloneDX external reference type, sha256 hex),
            e.g. ``{"MODEL_CARD.md": ("model-card", "<hex>")}``.
        validate: also check the result against the strict CycloneDX 1.6 schema
            (see :func:`build_bom`).

    Raises:
        InputError: a digest is not SHA-256 hex; with ``validate``, the result
            does not validate.
    """
    metadata = bom["metadata"]
    component = metadata["component"]
    references = [*component.get("externalReferences", [])]
    for name, (kind, sha256) in sorted(files.items()):
        references.append({"type": kind, "url": name,
                           "comment": "mlprov evidence file, pinned by digest",
                           "hashes": _sha256_hashes(sha256)})
    # Only the path to the new references is rebuilt (keys keep their order: a
    # new key goes last); the JSON copy below makes the result independent.
    pinned = {**bom, "metadata": {**metadata,
                                  "component": {**component, "externalReferences": references}}}
    document = _json_copy(pinned)
    if validate:
        _check(document, copied=True)
    return document


def bom_statement(bom: dict[str, Any], *, name: str, root: str) -> Statement:
    """The in-toto statement carrying ``bom`` (subject: the model's root digest).

    The model of :func:`mlprov._internal.documents.bom_statement_document`.
    """
    from mlprov.statements import Statement

    return Statement.model_validate(bom_statement_document(bom, name=name, root=root))


def bom_file_bytes(bom: dict[str, Any]) -> bytes:
    """``sbom.cdx.json``: the BOM as indented JSON (the same document that is signed)."""
    return (json.dumps(bom, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------
# Reading a signed BOM
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageInfo:
    """A package as the BOM lists it."""

    name: str
    version: str | None
    purl: str | None
    licenses: tuple[str, ...]


@dataclass(frozen=True)
class SbomInfo:
    """What mlprov reads out of a verified SBOM."""

    document: dict[str, Any]
    spec_version: str
    packages: tuple[PackageInfo, ...]
    datasets: tuple[tuple[str, str | None], ...]  # (name, sha256)
    #: evidence file name -> SHA-256 the SBOM pins it to
    pinned: dict[str, str] = field(default_factory=dict)

    def license_counts(self) -> dict[str, int]:
        """Licence -> number of packages under it (``unknown`` when none is stated)."""
        counts: Counter[str] = Counter()
        for package in self.packages:
            for name in package.licenses or ("unknown",):
                counts[name] += 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_summary(self) -> dict[str, Any]:
        """A JSON summary: spec version, package count, licences, datasets."""
        return {"specVersion": self.spec_version, "packages": len(self.packages),
                "licenses": self.license_counts(),
                "datasets": [{"name": n, "digest": f"sha256:{d}" if d else None}
                             for n, d in self.datasets]}


def _sha256_of(component: dict[str, Any]) -> str | None:
    for entry in component.get("hashes") or []:
        if isinstance(entry, dict) and entry.get("alg") == "SHA-256":
            content = entry.get("content")
            return content if isinstance(content, str) else None
    return None


def read_bom(statement: StatementLike, *, what: str,
             verdicts: SchemaVerdicts | None = None) -> SbomInfo:
    """Read and check the BOM of a verified SBOM statement.

    Checks: the predicate type; a CycloneDX JSON BOM of a known version that
    validates against that version's strict schema; a model component
    (``machine-learning-model``) whose SHA-256 is the statement's subject.
    ``verdicts`` (``verify --cache``): a BOM that passed the schema check under
    the same validator before is not checked again, and a pass is remembered
    (:mod:`mlprov._internal.schema_verdicts`).

    Raises:
        BundleError: any of those fails.
    """
    if statement.predicate_type != CYCLONEDX_BOM_PREDICATE:
        raise BundleError(f"{what}: predicate type {statement.predicate_type!r} is not "
                          f"{CYCLONEDX_BOM_PREDICATE!r}")
    document = statement.predicate
    version = document.get("specVersion")
    if document.get("bomFormat") != "CycloneDX" or version not in _READABLE_VERSIONS:
        raise BundleError(f"{what}: not a CycloneDX {'/'.join(_READABLE_VERSIONS)} JSON BOM")
    key = verdicts.key(document, str(version)) if verdicts is not None else None
    if key is None or verdicts is None or not verdicts.passed(key):
        try:
            error = _schema_errors(document, str(version))
        except InputError as exc:
            raise BundleError(f"{what}: {exc}", hint=exc.hint) from exc
        if error is not None:
            raise BundleError(f"{what}: the SBOM is not valid CycloneDX {version}: {error}")
        if key is not None and verdicts is not None:
            verdicts.add(key)
    component = document.get("metadata", {}).get("component")
    if not isinstance(component, dict) or component.get("type") != "machine-learning-model":
        raise BundleError(f"{what}: the SBOM describes no machine-learning-model component")
    if _sha256_of(component) not in statement.subject_sha256():
        raise BundleError(f"{what}: the model component's SHA-256 is not the statement's "
                          "subject")
    return sbom_info(document)


def sbom_info(document: dict[str, Any]) -> SbomInfo:
    """Summarise a BOM already checked (by :func:`read_bom`, or built here)."""
    packages, datasets = [], []
    for item in document.get("components") or []:
        if item.get("type") == "data":
            datasets.append((str(item.get("name")), _sha256_of(item)))
        elif isinstance(item.get("purl"), str):
            packages.append(PackageInfo(name=str(item.get("name")), version=item.get("version"),
                                        purl=item["purl"], licenses=licence_names(item)))
    pinned = {}
    component = document.get("metadata", {}).get("component", {})
    for reference in component.get("externalReferences") or []:
        url, sha256 = reference.get("url"), _sha256_of(reference)
        if isinstance(url, str) and _MAX_SAFE_FILE_NAME.match(url) and sha256:
            pinned[url] = sha256
    return SbomInfo(document=document, spec_version=str(document.get("specVersion")),
                    packages=tuple(packages), datasets=tuple(datasets), pinned=pinned)
