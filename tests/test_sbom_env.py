"""The environment scan gives what ``importlib.metadata`` and the email parser give.

``installed_packages`` lists distributions by scanning ``sys.path`` itself,
reads only the headers of their metadata with a small parser, and looks SPDX
ids up in cyclonedx-python-lib's list without importing ``cyclonedx.spdx``.
These tests hold each part to the reference it replaces: the email-based
header reader it had before (kept here), ``importlib.metadata.distributions()``,
``cyclonedx.spdx.fixup_id``, and the whole scan as it was.
"""

from __future__ import annotations

import email
import importlib.metadata
import os
import re
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.spdx import fixup_id, is_expression
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov import sbom
from mlprov.errors import InputError
from mlprov.sbom import Package, installed_packages

# --- the reference: the scan as it was, on importlib.metadata and the email parser ---------

_REFERENCE_END = re.compile(r"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


class EmailHeaders:
    """Core-metadata headers as ``email.message_from_string`` reads them (the former reader)."""

    def __init__(self, text: str) -> None:
        found = _REFERENCE_END.search(text)
        self._message = email.message_from_string(text[:found.end()] if found else text)

    def get_all(self, name: str) -> list[str] | None:
        values = self._message.get_all(name)
        if values is None:
            return None
        return [textwrap.dedent(" " * 8 + str(v)) if "\n" in str(v) else v for v in values]


def _reference_spdx(value: str) -> str | None:
    fixed = fixup_id(value)
    if fixed is not None:
        return str(fixed)
    return value if is_expression(value) else None


def reference_licenses(metadata: Any) -> tuple[str, ...]:
    """``_metadata_licenses`` as it was, asking the library for every verdict."""
    expression = sbom._one_line(sbom._field(metadata, "License-Expression"), 400)
    if expression:
        return (_reference_spdx(expression) or expression,)
    field_value = sbom._one_line(sbom._field(metadata, "License"))
    if field_value and _reference_spdx(field_value):
        return (str(_reference_spdx(field_value)),)
    classifiers = [c.split(" :: ")[-1] for c in metadata.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    ids = [sbom._CLASSIFIER_SPDX[c] for c in classifiers if c in sbom._CLASSIFIER_SPDX]
    if ids:
        return tuple(dict.fromkeys(ids))
    if field_value:
        return (field_value,)
    return tuple(dict.fromkeys(c for c in classifiers if c != "OSI Approved"))


def reference_installed() -> list[Package]:
    found: dict[str, Package] = {}
    for dist in importlib.metadata.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("")
        metadata = EmailHeaders(text or "")
        name, version = sbom._field(metadata, "Name"), sbom._field(metadata, "Version")
        if not name or not version or sbom.normalise_name(name) in found:
            continue
        found[sbom.normalise_name(name)] = Package(
            name=name, version=version, licenses=reference_licenses(metadata),
            requires=sbom._requires(metadata.get_all("Requires-Dist")))
    return sorted(found.values(), key=lambda p: p.key)


@pytest.fixture
def fresh_scan(monkeypatch):
    """A fresh scan, with the import system as a plain interpreter has it.

    The ``importlib_metadata`` backport, once a dependency imports it (MLflow does,
    and other tests of this session import MLflow), appends its own finder to
    ``sys.meta_path`` and deletes ``PathFinder.find_distributions`` for the whole
    process; the scan then leaves the listing to ``importlib.metadata`` (correct,
    only slower: ``test_another_distribution_finder_is_left_to_importlib_metadata``).
    Here that finder is taken out and the stdlib's method put back, as CPython
    defines it, so these tests see what ``mlprov attest`` sees.
    """
    from importlib.machinery import PathFinder

    monkeypatch.setattr(sys, "meta_path", [
        f for f in sys.meta_path
        if not getattr(type(f), "__module__", "").startswith("importlib_metadata")])
    if not hasattr(PathFinder, "find_distributions"):
        def find_distributions(*args: Any, **kwargs: Any) -> Any:
            from importlib.metadata import MetadataPathFinder

            return MetadataPathFinder.find_distributions(*args, **kwargs)

        monkeypatch.setattr(PathFinder, "find_distributions", staticmethod(find_distributions),
                            raising=False)
    sbom._installed.cache_clear()
    yield
    sbom._installed.cache_clear()


def test_installed_packages_are_the_reference_scans_on_this_venv(fresh_scan):
    assert len(installed_packages()) > 50
    assert installed_packages() == reference_installed()


def test_the_scan_asks_neither_importlib_metadata_nor_the_email_parser(fresh_scan, monkeypatch):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not on the fast path")

    expected = reference_installed()
    sbom._installed.cache_clear()
    monkeypatch.setattr(importlib.metadata, "distributions", refused)
    monkeypatch.setattr(email, "message_from_string", refused)
    assert installed_packages() == expected


# --- the header parser against the email parser ----------------------------------------

_NAMES = ("Name", "Version", "License-Expression", "License", "Classifier", "Requires-Dist",
          "Description", "From", "name", "X", "Na me", "é")
_LINE = st.one_of(
    st.sampled_from(["Name: demo", "Version: 1.0", "License: MIT", "name:  lower ",
                     "License-Expression: MIT OR Apache-2.0", "Requires-Dist: a; extra == 'x'",
                     "Classifier: License :: OSI Approved :: MIT License", "Name:", "Name:\t",
                     "From demo", "From: x", "From  x:y", "        continued", "\tcontinued", " ",
                     "\t", "", ":no name", "not a header", "Na me: x", "Näme: x", "X:é",
                     "Description: " + "long " * 3000, "License: a\x0bb\x0cc\x1cd\x85e\u2028f",
                     "\ufeffName: bom", "Name :x", "X-:y", "~!#$%&'*+-.^_`|: odd"]),
    st.text(alphabet="Na:me \t-xV1\u00e9\x0b\x85\u2028F", max_size=14),
    st.text(max_size=20))
_BREAK = st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", "\n\r"])


def _same_headers(text: str) -> None:
    ours, theirs = sbom._Headers(text), EmailHeaders(text)
    names = {*_NAMES, *(line.partition(":")[0] for line in re.split(r"\r\n|\r|\n", text))}
    for name in names:
        assert ours.get_all(name) == theirs.get_all(name), (text, name)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_LINE, _BREAK), max_size=16), st.text(max_size=40))
def test_headers_are_the_email_parsers_on_any_text(lines, tail):
    """Line breaks of every kind and mixed, folding, stray lines, odd names, any tail."""
    _same_headers("".join(line + end for line, end in lines) + tail)


@pytest.mark.parametrize("text", [
    "", "\n", "Name: a", "Name: a\n", "Name: a\r", "Name: a\r\n\r\nName: b", "From x\nName: a\n",
    "Name: a\nFrom x\n", " lead\nName: a\n", "Name: a\n b\n\tc\n \nVersion: 1\n",
    "Name: a\n:bad\n more\nVersion: 1\n", "License: x\n  y\n z\n", "License:\n  y\n\n",
    "Name: a\nFrom x", "Name: a\r\n folded\r\n", "Name: a\r folded\r", "X: é\nY\n: z\n",
])
def test_headers_are_the_email_parsers_on_edge_cases(text):
    _same_headers(text)


# --- reading metadata files: bounded, as Distribution.read_text reads them -------------

_BYTES_LINE = st.one_of(_LINE.map(lambda s: s.encode("utf-8")),
                        st.sampled_from([b"Name: x" * 2000, b" " + b"y" * 20000]))
_BYTES_BREAK = _BREAK.map(lambda s: s.encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_BYTES_LINE, _BYTES_BREAK), max_size=12), st.binary(max_size=40),
       st.integers(0, 40000))
def test_a_metadata_file_reads_as_importlib_metadata_reads_it(tmp_path_factory, lines, tail,
                                                             pad):
    """CR/LF mixes (also across the read chunks), large headers and bodies, any body bytes."""
    head = b"".join(line + end for line, end in lines)
    data = b"Pad: " + b"p" * pad + b"\n" + head + tail
    where = tmp_path_factory.mktemp("dist")
    (where / "METADATA").write_bytes(data)
    dist = importlib.metadata.PathDistribution(where)
    try:
        text = dist.read_text("METADATA")
    except UnicodeDecodeError:
        # Bytes that are not UTF-8: refused when in the headers, not read when past them.
        text = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace("\r", "\n")
        try:
            ours = sbom._metadata(str(where))
        except InputError as error:
            assert "not UTF-8" in str(error)
            head = text.split("\n\n", 1)[0]
            assert any(0xDC80 <= ord(c) <= 0xDCFF for c in head)
            return
    else:
        ours = sbom._metadata(str(where))
    theirs = EmailHeaders(text or "")
    for name in {*_NAMES, "Pad"}:
        assert ours.get_all(name) == theirs.get_all(name), name


@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_the_end_of_headers_across_two_reads(tmp_path, split):
    """The blank line (here ``\\r\\n\\r\\n``) cut at each place by the read chunk's end."""
    start = b"Name: a\r\nX: "
    prefix = start + b"x" * (sbom._READ_CHUNK - len(start) - split)
    data = prefix + b"\r\n\r\n Body: not a header\r\n"
    assert len(prefix) + split == sbom._READ_CHUNK
    (tmp_path / "METADATA").write_bytes(data)
    ours = sbom._metadata(str(tmp_path))
    theirs = EmailHeaders(importlib.metadata.PathDistribution(tmp_path).read_text("METADATA")
                          or "")
    assert ours.get_all("X") == theirs.get_all("X") and ours.get_all("Body") is None


def test_only_the_headers_are_read(tmp_path, monkeypatch):
    reads: list[int] = []
    real_read = os.read

    def counting(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        reads.append(len(data))
        return data

    (tmp_path / "METADATA").write_bytes(b"Name: a\nVersion: 1\n\n" + b"body\n" * 100_000)
    monkeypatch.setattr(os, "read", counting)
    assert sbom._metadata(str(tmp_path)).get_all("Name") == ["a"]
    assert sum(reads) <= sbom._READ_CHUNK


def test_bad_metadata_fails_closed_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "METADATA").write_bytes(b"Name: \xff\n\n")
    with pytest.raises(InputError, match="not UTF-8"):
        sbom._metadata(str(tmp_path))
    (tmp_path / "METADATA").write_bytes(b"Name: a\nX: " + b"x" * 5000)
    monkeypatch.setattr(sbom, "_MAX_HEADER_BYTES", 1000)
    with pytest.raises(InputError, match="headers over 1000 bytes"):
        sbom._metadata(str(tmp_path))
    (tmp_path / "METADATA").unlink()
    os.mkfifo(tmp_path / "METADATA")
    with pytest.raises(InputError, match="not a regular file"):
        sbom._metadata(str(tmp_path))  # at once: a FIFO without a writer does not block


def test_which_file_is_read(tmp_path):
    """METADATA, else PKG-INFO (an empty file counts as none), else the path itself."""
    (tmp_path / "a.dist-info").mkdir()
    (tmp_path / "a.dist-info" / "METADATA").write_text("")
    (tmp_path / "a.dist-info" / "PKG-INFO").write_text("Name: pkg-info\n")
    (tmp_path / "b.egg-info").write_text("Name: egg-file\n")
    (tmp_path / "c.dist-info").mkdir()
    (tmp_path / "c.dist-info" / "METADATA").mkdir()
    for child in ("a.dist-info", "b.egg-info", "c.dist-info"):
        path = tmp_path / child
        dist = importlib.metadata.PathDistribution(path)
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("")
        assert sbom._metadata(str(path)).get_all("Name") == EmailHeaders(text or "").get_all(
            "Name")
    assert sbom._metadata(str(tmp_path / "b.egg-info")).get_all("Name") == ["egg-file"]


# --- listing distributions as importlib.metadata does ----------------------------------

def _importlib_paths() -> list[Path]:
    return [Path(d._path) for d in importlib.metadata.distributions()]  # type: ignore[attr-defined]


def test_the_distributions_of_this_venv_in_importlib_metadatas_order(fresh_scan):
    paths = sbom._distribution_paths()
    assert paths is not None and len(paths) > 50
    assert [Path(p) for p in paths] == _importlib_paths()


def _dist(where: Path, child: str, name: str, version: str = "1", *, egg: bool = False) -> None:
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
    if egg and child.endswith(".egg-info") and "file" in name:
        (where / child).write_text(text)
        return
    (where / child).mkdir(parents=True)
    (where / child / ("PKG-INFO" if egg else "METADATA")).write_text(text)


def test_a_synthetic_sys_path_in_importlib_metadatas_order(tmp_path, monkeypatch, fresh_scan):
    """Duplicates within and across entries, odd names and cases, eggs, missing entries."""
    first, second, egg = tmp_path / "first", tmp_path / "second", tmp_path / "x_y-2.0-py3.egg"
    for where in (first, second, egg):
        where.mkdir()
    _dist(first, "Foo_Bar-1.0.dist-info", "Foo_Bar", "1.0")
    _dist(first, "foo.bar-2.0.dist-info", "foo.bar", "2.0")
    _dist(first, "FOO-BAR-3.0.DIST-INFO", "FOO-BAR", "3.0")
    _dist(first, "zed-1.egg-info", "zed", "1", egg=True)
    _dist(first, "filed-1.egg-info", "filed", "1", egg=True)
    _dist(first, "noversion-1.dist-info", "noversion", "")
    _dist(first, "empty.dist-info", "", "")
    _dist(first, "mixed.Egg-Info", "mixed", "4", egg=True)
    (first / "notadist").mkdir()
    (first / "plain.py").write_text("")
    _dist(second, "foo_bar-9.dist-info", "foo-bar", "9")
    _dist(second, "zed-2.dist-info", "Zed", "2")
    _dist(second, "only_here-1.dist-info", "only.here", "1")
    _dist(egg, "EGG-INFO", "x_y", "2.0", egg=True)
    _dist(egg, "inner-1.dist-info", "inner", "1")
    monkeypatch.chdir(second)
    for entries in ([str(first), str(second), str(egg)], [str(second), "", str(first)],
                    [str(tmp_path / "missing"), str(egg) + "/", str(first) + "//"]):
        monkeypatch.setattr(sys, "path", entries)
        sbom._installed.cache_clear()
        assert [Path(p) for p in sbom._distribution_paths() or []] == _importlib_paths()
        assert installed_packages() == reference_installed()


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(tmp_path, monkeypatch, fresh_scan):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    _dist(plain, "plain-1.dist-info", "plain")
    monkeypatch.setattr(sys, "path", [str(plain), str(archive)])
    assert sbom._distribution_paths() is None
    assert [(p.name, p.version) for p in installed_packages()] == [("plain", "1"),
                                                                   ("zipped", "1.0")]
    assert installed_packages() == reference_installed()


def test_another_distribution_finder_is_left_to_importlib_metadata(monkeypatch, fresh_scan):
    class Finder:
        @staticmethod
        def find_distributions(*args: Any, **kwargs: Any) -> list[Any]:
            return []

        @staticmethod
        def find_spec(*args: Any, **kwargs: Any) -> None:
            return None

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    assert sbom._distribution_paths() is None
    assert installed_packages() == reference_installed()


# --- SPDX ids without cyclonedx.spdx -----------------------------------------------------

_IDS = sorted(vars(sys.modules["cyclonedx.spdx"])["__IDS"])


def test_every_spdx_id_in_every_case_is_the_librarys():
    assert sbom._spdx_ids() is not None and len(_IDS) > 500
    for spdx_id in _IDS:
        for variant in (spdx_id, spdx_id.lower(), spdx_id.upper(), spdx_id.swapcase()):
            assert sbom._fixup_id(variant) == fixup_id(variant), variant
            assert sbom.is_spdx_id(variant) == (fixup_id(variant) == variant)


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.tuples(st.sampled_from(_IDS), st.randoms(use_true_random=False)).map(
        lambda t: "".join(c.swapcase() if t[1].random() < 0.5 else c for c in t[0])),
    st.sampled_from(_IDS).map(lambda s: s.replace("K", "\u212a").replace("i", "\u0130")),
    st.text(max_size=30)))
def test_spdx_ids_are_the_librarys_for_any_text(value):
    assert sbom._fixup_id(value) == fixup_id(value)
    assert sbom.is_spdx_id(value) == (fixup_id(value) == value)


_LICENCE_VALUES = st.one_of(
    st.sampled_from(["MIT", "mit", "Apache-2.0", "apache-2.0", "MIT OR Apache-2.0",
                     "Apache License 2.0", "BSD", "BSD License", "UNKNOWN", "", "  MIT  ",
                     "GPL-2.0+", "MPL-2.0 AND MIT", "Copyright ACME\nAll rights", "x" * 120,
                     "LGPL-2.1-or-later WITH Classpath-exception-2.0", "(MIT)", "Dual License"]),
    st.text(max_size=12))
_CLASSIFIERS = st.lists(st.sampled_from(
    [f"License :: OSI Approved :: {name}" for name in [*sbom._CLASSIFIER_SPDX, "BSD License"]]
    + ["License :: OSI Approved", "License :: Other/Proprietary License", "Topic :: X"]),
    max_size=3)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), _LICENCE_VALUES), st.one_of(st.none(), _LICENCE_VALUES),
       _CLASSIFIERS)
def test_licences_are_the_reference_ones(expression, field_value, classifiers):
    message = email.message.Message()
    if expression is not None:
        message["License-Expression"] = expression
    if field_value is not None:
        message["License"] = field_value
    for classifier in classifiers:
        message["Classifier"] = classifier
    assert sbom._metadata_licenses(message) == reference_licenses(message)


# --- SPDX expressions: the verdicts the licence list decides ------------------------------

def _index() -> list[dict[str, Any]]:
    import json

    import license_expression

    with open(license_expression.vendored_scancode_licensedb_index_location) as file:
        return list(json.load(file))


_ENTRIES = _index()
_NAMES_IN_INDEX = sorted({n for e in _ENTRIES for n in [e.get("spdx_license_key") or
                                                        e.get("license_key"),
                                                        *e.get("other_spdx_license_keys", [])]
                          if isinstance(n, str) and n})
_EXCEPTIONS = sorted(e["spdx_license_key"] for e in _ENTRIES
                     if e.get("is_exception") and e.get("spdx_license_key"))
_OPERAND = st.one_of(
    st.sampled_from(_NAMES_IN_INDEX), st.sampled_from(_EXCEPTIONS),
    st.sampled_from(["GPL 2.0", "GPL 2.0+", "GPL", "2.0", "MIT", "mit", "MIT-like", "BSD",
                     "License", "LicenseRef-foo", "Apache License", "x", "", "é", "MIT\u212a"]),
    st.text(alphabet="ABCMITGPL-.+0123 ", max_size=8))
_JOIN = st.sampled_from([" AND ", " OR ", " and ", " Or ", " WITH ", " with ", " ", "  AND ",
                         " AND\t", "\tOR ", " AND (", ") OR ", "(", ")", ",", " / ", "\x1cOR "])


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_OPERAND, _JOIN), min_size=1, max_size=5), _OPERAND)
def test_expression_verdicts_are_the_librarys(parts, last):
    value = "".join(operand + join for operand, join in parts) + last
    verdict = sbom._expression_verdict(value)
    if verdict is not None:
        assert verdict == is_expression(value), value


_ONE_TOKEN = [n for n in _NAMES_IN_INDEX if not re.search(r"[\s()]", n)]


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([" AND ", " OR ", " and ", " oR "]),
                          st.sampled_from(_ONE_TOKEN)), max_size=4),
       st.sampled_from(_ONE_TOKEN), st.sampled_from([str, str.upper, str.lower, str.swapcase]))
def test_licences_joined_by_operators_are_the_librarys_verdict(rest, first, case):
    """The shape decided True: licences (exceptions, aliases, deprecated ids among them)."""
    value = case(first + "".join(operator + name for operator, name in rest))
    verdict = sbom._expression_verdict(value)
    if verdict is not None:
        assert verdict == is_expression(value), value


def test_every_licence_alone_and_paired_is_the_librarys_verdict():
    decided = 0
    for number, name in enumerate(_NAMES_IN_INDEX):
        partner = _NAMES_IN_INDEX[(number * 7919) % len(_NAMES_IN_INDEX)]
        for value in (name, name.upper(), f"{name} OR {partner}", f"{partner} and {name}"):
            verdict = sbom._expression_verdict(value)
            if verdict is not None:
                decided += 1
                assert verdict == is_expression(value), value
    assert decided > 3 * len(_NAMES_IN_INDEX)


def test_the_licence_values_of_this_venv_are_decided_without_the_library(fresh_scan):
    """Every non-id licence of the environment: decided from the list (none left to parse)."""
    values = {v for p in reference_installed() for v in p.licenses} | {
        "Apache License, Version 2.0", "MIT License", "Apache 2.0", "PSFL", "Dual License"}
    for value in values:
        if fixup_id(value) is None:
            assert sbom._expression_verdict(value) == is_expression(value), value


def test_the_scan_and_the_licence_verdicts_import_no_parser():
    import subprocess

    code = ("import sys\nfrom mlprov import sbom\nsbom.installed_packages()\n"
            "print(sbom._spdx('MIT OR Apache-2.0'), sbom._spdx('BSD License'))\n"
            "print(sorted(m for m in ('cyclonedx.spdx', 'license_expression', 'email.parser')"
            " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines() == ["MIT OR Apache-2.0 None", "[]"], done.stderr


def test_licence_words_are_the_tokens_of_every_key_and_alias():
    """The shortcut for one-run keys gives what tokenising every key gives."""
    import importlib.util
    import json
    import os

    known = sbom._licence_words()
    if known is None:
        pytest.skip("license-expression's index is not installed")
    spec = importlib.util.find_spec("license_expression")
    assert spec is not None and spec.origin is not None
    index = os.path.join(os.path.dirname(spec.origin), "data", "scancode-licensedb-index.json")
    with open(index, encoding="utf-8") as file:
        entries = json.load(file)
    words: set[str] = set()
    several: set[str] = set()
    licence: dict[str, bool] = {}
    for entry in entries:
        used = bool(entry.get("spdx_license_key")) and not entry.get("is_exception", False)
        for name in [entry.get("spdx_license_key"), *(entry.get("other_spdx_license_keys") or [])]:
            if isinstance(name, str):
                tokens = [t for t in sbom._EXPRESSION_TOKEN.findall(name.lower())
                          if not t.isspace()]
                words.update(tokens)
                if len(tokens) == 1:
                    licence[tokens[0]] = licence.get(tokens[0], True) and used
                else:
                    several.update(tokens)
    assert known.words == words
    assert known.licences == {n for n, only in licence.items() if only and n not in several}
