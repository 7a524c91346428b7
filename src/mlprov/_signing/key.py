"""Key-signed bundles: a DSSE signature over PAE by a key mlprov holds.

The bundle carries ``verificationMaterial.publicKey.hint`` (the key id) and no
transparency-log entry, as OMS writes key-signed bundles
(https://github.com/sigstore/protobuf-specs, ``sigstore_bundle.proto``).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from mlprov.bundles import BUNDLE_MEDIA_TYPE
from mlprov.signing import pae
from mlprov.statements import PAYLOAD_TYPE_IN_TOTO

if TYPE_CHECKING:
    from mlprov.signing import Signer
    from mlprov.statements import Statement

__all__ = ["key_bundle"]


def key_bundle(statement: Statement, signer: Signer) -> bytes:
    """Sign ``statement`` (canonical JSON) with ``signer`` into bundle v0.3 JSON bytes."""
    payload = statement.canonical_bytes()
    signature = signer.sign(pae(PAYLOAD_TYPE_IN_TOTO, payload))
    keyid = signer.public_key.keyid
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": keyid}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE_IN_TOTO,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"),
                            "keyid": keyid}],
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
