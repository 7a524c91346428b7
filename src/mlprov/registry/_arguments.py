"""What the registry's public methods take: checks run at their entry.

See :mod:`mlprov._internal.arguments`; the bodies check names and aliases further.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlprov._internal.arguments import (
    PATH,
    STRINGS,
    TEXT,
    Check,
    Invalid,
    either,
    int_in,
    lazy_instance,
)

__all__ = ["COUNT", "ORDER_BY", "PAGE_SIZE", "PATH_OBJ", "STAGE", "THRESHOLDS", "TRUST_OBJ",
           "URI", "VERSION"]


def _path_object(value: Any) -> None:
    if not isinstance(value, Path):
        raise Invalid("a pathlib.Path")
    PATH(value)


#: A path where the signature says ``Path`` (not ``str``): the method uses it as one.
PATH_OBJ: Check = _path_object
#: A version number: 1, 2, 3... (``check_version`` in the body says the same for other ints).
VERSION: Check = int_in(1)
#: A sequence number or a count: 0 or more.
COUNT: Check = int_in(0)
#: A stage: a :class:`~mlprov.registry.Stage` or its name (``"Staging"``).
STAGE: Check = either(lazy_instance("mlprov.registry.interface", "Stage", "a Stage"), TEXT)
#: A ``models:/`` URI, as text or parsed.
URI: Check = either(TEXT, lazy_instance("mlprov.registry._uri", "ModelUri", "a ModelUri"))
#: A loaded :class:`~mlprov.trust.Trust` (a trust file is loaded with ``mlprov.trust.load_trust``).
TRUST_OBJ: Check = lazy_instance("mlprov.trust", "Trust",
                                 "a mlprov.trust.Trust (mlprov.trust.load_trust(path))")
#: Thresholds: a :class:`~mlprov.thresholds.Thresholds` or flags (``["test/auc>=0.85"]``).
THRESHOLDS: Check = either(lazy_instance("mlprov.thresholds", "Thresholds", "a Thresholds"),
                           STRINGS)
#: A search's sort order: ``"created_at DESC"`` or a list of such items.
ORDER_BY: Check = either(TEXT, STRINGS)
#: A page size: 1 to 1000 results.
PAGE_SIZE: Check = int_in(1, 1000)
