"""Deliver events from the outbox to hooks: a command, or a webhook signed with HMAC-SHA256.

Events and their pending deliveries are written in the same transaction as
the change they describe, so an event exists exactly when its change
committed. Delivery happens afterwards, outside any transaction: a slow or
failing hook cannot block or roll back the registry. A failed attempt is
retried with exponential backoff (1 s, 2 s, 4 s ... capped at an hour) until
``max_attempts``, then marked ``failed`` (``mlprov events --json`` shows it).
A delivery is leased before the attempt, so two deliverers never send it twice
at the same time; a receiver may still see a retry after a timeout, and can
de-duplicate by the ``X-Mlprov-Delivery`` id.

Webhook requests are ``POST`` with the event JSON as body and headers::

    Content-Type: application/json
    X-Mlprov-Event: <kind>
    X-Mlprov-Delivery: <delivery id>
    X-Mlprov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

Commands get the event JSON on stdin and ``MLPROV_EVENT_KIND``,
``MLPROV_EVENT_ID`` in the environment; exit status 0 means delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from mlprov._internal.arguments import BYTES, INT, NUMBER, TEXT, checked, optional
from mlprov._internal.plugins import user_environ
from mlprov.registry._config import HookConfig

__all__ = ["DeliveryOutcome", "backoff", "deliver_one", "sign_webhook", "verify_webhook"]

LEASE_SECONDS = 330.0
_MAX_BACKOFF = 3600.0


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``."""
    return float(min(2 ** max(attempts - 1, 0), _MAX_BACKOFF))


@checked(secret=BYTES, body=BYTES, timestamp=INT)
def sign_webhook(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Mlprov-Signature`` header value for ``body`` sent at ``timestamp``.

    Example:
        header = sign_webhook(b"secret", body, int(time.time()))
    """
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@checked(secret=BYTES, body=BYTES, header=TEXT, tolerance=NUMBER, now=optional(NUMBER))
def verify_webhook(secret: bytes, body: bytes, header: str, *, tolerance: float = 300.0,
                   now: float | None = None) -> bool:
    """Check a webhook's signature header (for receivers; constant-time compare).

    Example:
        ok = verify_webhook(b"secret", request.body, request.headers["X-Mlprov-Signature"])
    """
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        expected = sign_webhook(secret, body, timestamp).split("v1=", 1)[1]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass(frozen=True)
class DeliveryOutcome:
    """The result of one attempt."""

    ok: bool
    error: str | None = None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def deliver_one(hook: HookConfig, *, kind: str, event_id: int, delivery_id: int,
                payload: bytes) -> DeliveryOutcome:
    """Attempt one delivery; never raises for the hook's own failures."""
    if hook.url is not None:
        return _post(hook, kind=kind, delivery_id=delivery_id, payload=payload)
    assert hook.command is not None
    env = user_environ(MLPROV_EVENT_KIND=kind, MLPROV_EVENT_ID=str(event_id),
                       MLPROV_DELIVERY_ID=str(delivery_id))
    try:
        done = subprocess.run(hook.command, input=payload, capture_output=True,
                              timeout=hook.timeout, env=env, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return DeliveryOutcome(False, _one_line(f"command failed: {exc}"))
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace")
        return DeliveryOutcome(False, _one_line(f"command exited {done.returncode}: {detail}"))
    return DeliveryOutcome(True)


def _post(hook: HookConfig, *, kind: str, delivery_id: int, payload: bytes
          ) -> DeliveryOutcome:
    assert hook.url is not None
    headers = {"Content-Type": "application/json", "User-Agent": "mlprov-hooks/1",
               "X-Mlprov-Event": kind, "X-Mlprov-Delivery": str(delivery_id)}
    if hook.secret_env:
        secret = os.environ.get(hook.secret_env)
        if not secret:
            return DeliveryOutcome(False, f"secret {hook.secret_env} is not set in the "
                                          "environment; not sending an unsigned webhook")
        headers["X-Mlprov-Signature"] = sign_webhook(secret.encode(), payload, int(time.time()))
    # The config only accepts http:// and https:// URLs (HookConfig._http_only).
    request = urllib.request.Request(hook.url, data=payload, headers=headers,  # noqa: S310
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        return DeliveryOutcome(False, f"HTTP {exc.code} from {hook.url}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return DeliveryOutcome(False, _one_line(f"cannot reach {hook.url}: {reason}"))
    if not 200 <= status < 300:
        return DeliveryOutcome(False, f"HTTP {status} from {hook.url}")
    return DeliveryOutcome(True)
