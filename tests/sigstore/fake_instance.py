"""A Sigstore instance built at test time: a Fulcio-style CA, a CT log, a Rekor log.

SPECS.md §3.4. Everything the real ``sigstore.verify.Verifier`` checks is made
here for real, so the verifier runs unmodified and offline:

- a self-signed CA (the Fulcio root) issuing short-lived leaf certificates with
  an empty subject, a critical SAN, KU digitalSignature, EKU codeSigning, the
  Fulcio OIDC extensions and an embedded precertificate SCT (RFC 6962 §3.2)
  signed by the CT log key;
- a Rekor v1 log: ``dsse/0.0.1`` entry bodies in an RFC 6962 Merkle tree, each
  entry with a signed entry timestamp (SET), an inclusion proof and a signed
  checkpoint (https://github.com/transparency-dev/formats/blob/main/log/README.md);
- a trusted root (``application/vnd.dev.sigstore.trustedroot+json;version=0.1``)
  naming the three, and a ClientTrustConfig that points a SigningContext at a
  local Fulcio/Rekor stub (see ``stub_server.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

_SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
# Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md):
# 1.1-1.6 hold raw strings (deprecated), 1.8 onwards DER UTF8Strings.
_ISSUER_V1, _ISSUER_V2 = "1.3.6.1.4.1.57264.1.1", "1.3.6.1.4.1.57264.1.8"
GITHUB_V1_OIDS = {"trigger": "1.3.6.1.4.1.57264.1.2", "sha": "1.3.6.1.4.1.57264.1.3",
                  "workflow": "1.3.6.1.4.1.57264.1.4", "repository": "1.3.6.1.4.1.57264.1.5",
                  "ref": "1.3.6.1.4.1.57264.1.6"}
_GITHUB_V2_OIDS = {"sourceRepositoryUri": "1.3.6.1.4.1.57264.1.12",
                   "sourceRepositoryDigest": "1.3.6.1.4.1.57264.1.13",
                   "sourceRepositoryRef": "1.3.6.1.4.1.57264.1.14",
                   "buildTrigger": "1.3.6.1.4.1.57264.1.20",
                   "runInvocationUri": "1.3.6.1.4.1.57264.1.21"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the DER SPKI: the log id of CT logs and Rekor."""
    return hashlib.sha256(spki_der(key)).digest()


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (short or long form length)."""
    if len(content) < 128:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _utf8_der(value: str) -> bytes:
    return _der(0x0C, value.encode("utf-8"))


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (RFC 6962 §2.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path, leaf level first."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), merkle_root(leaves[:k])]


@dataclass
class FakeSigstore:
    """One Sigstore instance: CA, CT log and Rekor log keys, and the log's entries."""

    name: str = "mlprov-test"
    url: str = "http://127.0.0.1:1"
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    rekor_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    leaves: list[bytes] = field(default_factory=list)
    epoch: dt.datetime = field(default_factory=lambda: now() - dt.timedelta(days=1))

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} CA")])
        public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(self.epoch).not_valid_after(self.epoch + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256()))

    # -- Fulcio -------------------------------------------------------------------------------

    def issue(self, public_key: Any, *, subject: str, issuer: str,
              github: dict[str, str] | None = None,
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> x509.Certificate:
        """Issue a Fulcio-style leaf for ``subject`` (an email or a URI) with an embedded SCT."""
        start = not_before or now()
        san: x509.GeneralName = (x509.RFC822Name(subject) if "@" in subject and "/" not in subject
                                 else x509.UniformResourceIdentifier(subject))
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(not_after or start + dt.timedelta(minutes=10))
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier(_ISSUER_V1), issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier(_ISSUER_V2), _utf8_der(issuer)), critical=False))
        for claim, value in (github or {}).items():
            if claim in GITHUB_V1_OIDS:
                builder = builder.add_extension(x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(GITHUB_V1_OIDS[claim]), value.encode()),
                    critical=False)
            else:
                builder = builder.add_extension(x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(_GITHUB_V2_OIDS[claim]), _utf8_der(value)),
                    critical=False)
        # The SCT covers the TBS certificate without the SCT list; adding the list as the
        # last extension and signing again leaves tbs_precertificate_bytes equal to it.
        tbs = builder.sign(self.ca_key, hashes.SHA256()).tbs_certificate_bytes
        sct = self._sct(tbs, start)
        extension = struct.pack("!H", len(sct)) + sct
        sct_list = struct.pack("!H", len(extension)) + extension
        leaf = builder.add_extension(x509.UnrecognizedExtension(_SCT_LIST_OID,
                                                                _der(0x04, sct_list)),
                                     critical=False).sign(self.ca_key, hashes.SHA256())
        assert leaf.tbs_precertificate_bytes == tbs
        return leaf

    def _sct(self, tbs: bytes, when: dt.datetime) -> bytes:
        """An RFC 6962 v1 SCT for a precertificate with this TBS."""
        timestamp = int(when.timestamp() * 1000)
        issuer_key_hash = key_id(self.ca_key.public_key())
        signed = (struct.pack("!BBQH", 0, 0, timestamp, 1) + issuer_key_hash
                  + struct.pack("!I", len(tbs))[1:] + tbs + struct.pack("!H", 0))
        signature = _sign(self.ct_key, signed)
        return (struct.pack("!B", 0) + key_id(self.ct_key.public_key())
                + struct.pack("!QH", timestamp, 0)
                + struct.pack("!BBH", 4, 3, len(signature)) + signature)

    # -- Rekor v1 -----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"{self.name}-rekor - 1"

    def log_dsse(self, envelope: dict[str, Any], verifier_pem: bytes,
                 integrated_time: int | None = None) -> dict[str, Any]:
        """Append a ``dsse/0.0.1`` entry; return it as Rekor's v1 API returns it."""
        payload = base64.b64decode(envelope["payload"])
        body = rfc8785.dumps({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256",
                                 "value": hashlib.sha256(rfc8785.dumps(envelope)).hexdigest()},
                "payloadHash": {"algorithm": "sha256",
                                "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": b64(base64.b64decode(s["sig"])),
                                "verifier": b64(verifier_pem)} for s in envelope["signatures"]],
            },
        })
        index = len(self.leaves)
        self.leaves.append(_leaf_hash(body))
        size = len(self.leaves)
        root = merkle_root(self.leaves)
        log_id = key_id(self.rekor_key.public_key())
        when = integrated_time if integrated_time is not None else int(now().timestamp())
        set_payload = rfc8785.dumps({"body": b64(body), "integratedTime": when,
                                     "logID": log_id.hex(), "logIndex": index})
        note = f"{self.origin}\n{size}\n{b64(root)}\n"
        note_sig = _sign(self.rekor_key, note.encode())
        checkpoint = f"{note}\n\u2014 {self.name}-rekor {b64(log_id[:4] + note_sig)}\n"
        return {uuid.uuid4().hex: {
            "body": b64(body), "integratedTime": when, "logID": log_id.hex(), "logIndex": index,
            "verification": {
                "inclusionProof": {"logIndex": index, "treeSize": size, "rootHash": root.hex(),
                                   "hashes": [h.hex() for h in inclusion_path(index,
                                                                              self.leaves)],
                                   "checkpoint": checkpoint},
                "signedEntryTimestamp": b64(_sign(self.rekor_key, set_payload)),
            },
        }}

    # -- bundles and roots --------------------------------------------------------------------

    def sign_bundle(self, payload: bytes, *, subject: str, issuer: str,
                    payload_type: str = "application/vnd.in-toto+json",
                    github: dict[str, str] | None = None,
                    not_before: dt.datetime | None = None,
                    not_after: dt.datetime | None = None,
                    integrated_time: int | None = None) -> dict[str, Any]:
        """Sign ``payload`` as a keyless client would: a v0.3 bundle with cert and tlog entry."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(key.public_key(), subject=subject, issuer=issuer, github=github,
                          not_before=not_before, not_after=not_after)
        type_bytes = payload_type.encode()
        pae = b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)
        envelope = {"payload": b64(payload), "payloadType": payload_type,
                    "signatures": [{"sig": b64(_sign(key, pae))}]}
        [entry] = self.log_dsse(envelope, cert.public_bytes(serialization.Encoding.PEM),
                                integrated_time).values()
        proof = entry["verification"]["inclusionProof"]
        return {
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [{
                    "logIndex": str(entry["logIndex"]),
                    "logId": {"keyId": b64(bytes.fromhex(entry["logID"]))},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": str(entry["integratedTime"]),
                    "inclusionPromise": {
                        "signedEntryTimestamp": entry["verification"]["signedEntryTimestamp"]},
                    "inclusionProof": {
                        "logIndex": str(proof["logIndex"]),
                        "rootHash": b64(bytes.fromhex(proof["rootHash"])),
                        "treeSize": str(proof["treeSize"]),
                        "hashes": [b64(bytes.fromhex(h)) for h in proof["hashes"]],
                        "checkpoint": {"envelope": proof["checkpoint"]},
                    },
                    "canonicalizedBody": entry["body"],
                }],
            },
            "dsseEnvelope": envelope,
        }

    def _log_instance(self, key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
        public = key.public_key()
        return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(spki_der(public)),
                              "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": self.epoch.isoformat().replace("+00:00",
                                                                                   "Z")}},
                "logId": {"keyId": b64(key_id(public))}}

    def trusted_root(self) -> dict[str, Any]:
        start = self.epoch.isoformat().replace("+00:00", "Z")
        return {
            "mediaType": TRUSTED_ROOT_TYPE,
            "tlogs": [self._log_instance(self.rekor_key, self.url)],
            "certificateAuthorities": [{
                "subject": {"organization": self.name, "commonName": f"{self.name} CA"},
                "uri": self.url,
                "certChain": {"certificates": [
                    {"rawBytes": b64(self.ca_cert.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": start},
            }],
            "ctlogs": [self._log_instance(self.ct_key, self.url)],
            "timestampAuthorities": [],
        }

    def client_trust_config(self) -> dict[str, Any]:
        """A ClientTrustConfig whose signing config points at ``self.url`` (Fulcio and Rekor v1)."""
        start = self.epoch.isoformat().replace("+00:00", "Z")

        def service(url: str) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": 1, "validFor": {"start": start},
                    "operator": self.name}

        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [service(self.url + "/oidc")],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def write_trusted_root(self, path: Any) -> Any:
        path.write_text(json.dumps(self.trusted_root(), indent=2))
        return path
