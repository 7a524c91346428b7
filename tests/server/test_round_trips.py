"""How many requests a verified remote read makes, so that it cannot creep up unnoticed.

Counted at the tampering proxy of the malicious-server tests (every request it
receives). A warm resolve asks the signed head once, the model, alias and
version rows and the audit entry the decision names: content-addressed answers
(decisions, evidence blobs) verified before are not asked again, and the head
is read again only when a check failed (a race).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.server.proxy import Proxy

URI = "models:/credit-risk@production"


def kinds(log: list[tuple[str, str]]) -> Counter[str]:
    """Requests by what they ask: head, decision, blob GET/HEAD, audit entry, or the path."""
    out: Counter[str] = Counter()
    for method, path in log:
        if path.startswith("/api/v1/blobs/"):
            out[f"{method} blob"] += 1
        elif path.startswith("/api/v1/store/decisions/"):
            out["decision"] += 1
        elif path.startswith("/api/v1/store/audit/"):
            out["audit entry"] += 1
        else:
            out[path.removeprefix("/api/v1/store/")] += 1
    return out


def test_a_warm_verified_resolve_makes_five_requests(proxied: dict[str, Any]) -> None:
    client = proxied["client"]()
    log = proxied["proxy"].log
    log.clear()
    assert client.resolve(URI).version == 2
    assert kinds(log)["head"] == 1 and kinds(log)["decision"] == 1
    log.clear()
    assert client.resolve(URI).version == 2
    assert kinds(log) == Counter({
        "head": 1, "models/credit-risk": 1, "models/credit-risk/aliases/production": 1,
        "models/credit-risk/versions/2": 1, "audit entry": 1})


def test_pull_and_load_ask_the_head_once_and_no_verified_digest_again(
        proxied: dict[str, Any], tmp_path: Any) -> None:
    client = proxied["client"]()
    log = proxied["proxy"].log
    files = sum(1 for p in proxied["models"][1].model.rglob("*") if p.is_file())
    log.clear()
    client.pull(URI, tmp_path / "one")
    first = kinds(log)
    assert first["head"] == 1
    assert first["GET blob"] > files and first["HEAD blob"] >= files  # cold: sizes, then bytes
    log.clear()
    client.pull(URI, tmp_path / "two")
    second = kinds(log)
    # Only the model files themselves: they are streamed to their destination.
    assert (second["head"], second["decision"], second["HEAD blob"], second["GET blob"]) == \
        (1, 0, 0, files)
    client.load(URI)
    log.clear()
    client.load(URI)
    warm = kinds(log)
    assert (warm["head"], warm["decision"], warm["HEAD blob"], warm["GET blob"]) == (1, 0, 0, 0)
    assert sum(warm.values()) == 8


def test_a_resolve_raced_by_a_change_reads_the_head_again_and_retries(
        proxied: dict[str, Any]) -> None:
    client = proxied["client"]()
    proxy: Proxy = proxied["proxy"]
    heads: list[bytes] = []

    def keep(method: str, path: str, status: int, headers: dict[str, str], data: bytes
             ) -> tuple[int, dict[str, str], bytes]:
        if path == "/api/v1/store/head":
            heads.append(data)
        return status, headers, data

    proxy.tamper = keep
    assert client.resolve(URI).version == 2
    proxied["served"].client("admin").set_alias("credit-risk", "production", 1, reason="r")
    stale = [heads[0]]

    def once_stale(method: str, path: str, status: int, headers: dict[str, str], data: bytes
                   ) -> tuple[int, dict[str, str], bytes]:
        # The head of before the move, once: as if the move committed between the
        # head and the rows being read.
        if path == "/api/v1/store/head" and stale:
            return status, headers, stale.pop()
        return status, headers, data

    proxy.tamper = once_stale
    proxy.log.clear()
    assert client.resolve(URI).version == 1
    assert kinds(proxy.log)["head"] == 3  # the stale one, the check after the failure, the retry


def test_the_digest_cache_keeps_only_verified_bytes_within_its_bounds() -> None:
    import hashlib

    from mlprov.server._remote_store import DigestCache

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    cache = DigestCache(3, 400)
    assert not cache.put(digest(b"a"), b"b")  # other bytes than the digest names: not kept
    assert cache.get(digest(b"a")) is None
    assert not cache.put(digest(b"x" * 101), b"x" * 101)  # over a quarter of the bytes
    blobs = [bytes([n]) * 90 for n in range(4)]
    for blob in blobs[:3]:
        assert cache.put(digest(blob), blob)
    assert cache.get(digest(blobs[0])) == blobs[0]  # now the most recently used
    cache.put(digest(blobs[3]), blobs[3])  # four entries: the least recently used goes
    assert digest(blobs[1]) not in cache and len(cache) == 3
    assert cache.get(digest(blobs[0])) == blobs[0]
    by_bytes = DigestCache(100, 400)
    for n in range(4, 10):  # 90 bytes each: four fit in 400
        assert by_bytes.put(digest(bytes([n]) * 90), bytes([n]) * 90)
    assert len(by_bytes) == 4 and digest(bytes([9]) * 90) in by_bytes
