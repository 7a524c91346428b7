"""The plugin's URIs, parsed as whole strings (no MLflow needed): store URIs and downloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprov._mlflow.locations import (
    StoreKind,
    StoreLocation,
    VersionRef,
    check_verified_root,
    is_store_uri,
    parse_store_uri,
    parse_verified_uri,
    verified_uri,
)
from mlprov.errors import InputError

RID = "829235cf-9c02-4fc4-a5c8-7e4cd2a5105e"


@pytest.mark.parametrize(("uri", "kind", "address"), [
    ("mlprov:///srv/registry", StoreKind.DIRECTORY, "/srv/registry"),
    ("mlprov://registry", StoreKind.DIRECTORY, "registry"),
    ("mlprov://", StoreKind.DIRECTORY, None),
    ("mlprov+postgresql://ml@db.internal/registry", StoreKind.DATABASE,
     "postgresql://ml@db.internal/registry"),
    ("mlprov+postgresql+psycopg://ml@db/reg", StoreKind.DATABASE,
     "postgresql+psycopg://ml@db/reg"),
    ("mlprov+sqlite:///srv/team.db", StoreKind.DATABASE, "sqlite:///srv/team.db"),
    ("mlprov+https://registry.internal", StoreKind.SERVER, "https://registry.internal"),
])
def test_store_uris(uri, kind, address):
    assert is_store_uri(uri)
    assert parse_store_uri(uri) == StoreLocation(kind, address)


@pytest.mark.parametrize("uri", [
    "sqlite:///x.db", "mlprov:/x", "mlprov", "", "mlprov:///x?y=1", "mlprov:///x#f",
    "mlprov:///x\ny", "mlprov:///x\\y", "mlprov+postgresql://", "mlprov+https://u:p@host",
    "mlprov+https://", "mlprovx:///x", "mlprov:///" + "a" * 5000,
])
def test_other_store_uris_are_refused(uri):
    with pytest.raises(InputError):
        parse_store_uri(uri)


def test_a_database_url_is_described_without_its_password():
    location = parse_store_uri("mlprov+postgresql://ml:s3cret@db/registry")
    assert "s3cret" not in location.describe() and "db/registry" in location.describe()


def test_verified_uris_round_trip_and_split_as_mlflow_splits_them():
    uri = verified_uri(RID, "credit-risk", 3)
    assert uri == f"mlprov-verified://{RID}/credit-risk/3"
    assert parse_verified_uri(uri) == VersionRef(RID, "credit-risk", 3)
    # MLflow splits the last part off a URI it downloads from, and adds paths.
    assert parse_verified_uri(f"mlprov-verified://{RID}/credit-risk", "3") \
        == VersionRef(RID, "credit-risk", 3)
    assert parse_verified_uri(uri, "sub/MLmodel").subpath == "sub/MLmodel"
    assert check_verified_root(f"mlprov-verified://{RID}/credit-risk")
    VersionRef(RID, "credit-risk", 3).check_registry(RID)
    with pytest.raises(InputError, match="is a version of registry"):
        VersionRef(RID, "credit-risk", 3).check_registry("other")


@pytest.mark.parametrize(("uri", "path"), [
    (f"mlprov-verified://{RID}/credit-risk/03", None),
    (f"mlprov-verified://{RID}/credit risk/3", None),
    (f"mlprov-verified://{RID}/credit-risk", None),
    (f"mlprov-verified://{RID}/credit-risk/3", "../../etc/passwd"),
    (f"mlprov-verified://{RID}/credit-risk/3/./x", None),
    (f"mlprov-verified://{RID}/credit-risk/3?registry=/tmp/x", None),
    ("mlprov-verified://../credit-risk/3", None),
    (f"mlprov-verified://{RID.upper()}/credit-risk/3", None),
    (f"models:/{RID}/credit-risk/3", None),
])
def test_bad_verified_uris_are_refused(uri, path):
    with pytest.raises(InputError):
        parse_verified_uri(uri, path)


@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=100)))
def test_any_text_parses_or_is_one_input_error(uri, path):
    for parse in (lambda: parse_store_uri(uri), lambda: parse_verified_uri(uri, path)):
        try:
            parse()
        except InputError as exc:
            assert "\n" not in str(exc)
