"""The event outbox: list events, and deliver pending ones to hooks (see :mod:`._hooks`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlprov.registry._hooks import LEASE_SECONDS, backoff, deliver_one

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["DeliveryReport", "deliver_due"]


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery run did."""

    delivered: int
    failed: int
    retrying: int
    errors: tuple[str, ...]


def deliver_due(registry: RegistryContext, *, seq: int | None = None, now: float | None = None,
                limit: int = 100) -> DeliveryReport:
    """Attempt every due delivery (only those of audit entry ``seq`` if given).

    Each delivery is leased in its own short transaction, attempted outside any
    transaction, then its outcome recorded: a hook never holds the registry's
    write lock, and a crash mid-delivery only delays a retry until the lease ends.
    """
    from mlprov.registry._records import dumps_event

    config = registry.settings.config
    hooks = {h.name: h for h in config.hooks}
    moment = time.time() if now is None else now
    delivered = failed = retrying = 0
    errors: list[str] = []
    with registry.metadata.read() as tx:
        due = tx.due_deliveries(moment, limit=limit)
        events: dict[int, Any] = {}
        for item in due:
            if item.event_id not in events:
                events[item.event_id] = tx.get_event(item.event_id)
    for item in due:
        event = events.get(item.event_id)
        if event is None or (seq is not None and event.seq != seq):
            continue
        with registry.metadata.write() as wtx:
            if not wtx.claim_delivery(item.id, moment, moment + LEASE_SECONDS):
                continue
        hook = hooks.get(item.hook)
        attempts = item.attempts + 1
        error: str | None
        if hook is None:
            outcome_ok, error = False, f"hook {item.hook!r} is no longer configured"
            attempts = config.max_attempts
        else:
            outcome = deliver_one(hook, kind=event.kind, event_id=event.id,
                                  delivery_id=item.id, payload=dumps_event(event))
            outcome_ok, error = outcome.ok, outcome.error
        if outcome_ok:
            state, delivered = "delivered", delivered + 1
        elif attempts >= config.max_attempts:
            state, failed = "failed", failed + 1
        else:
            state, retrying = "pending", retrying + 1
        if error:
            errors.append(f"event {event.id} to hook {item.hook}: {error}")
        with registry.metadata.write() as wtx:
            wtx.finish_delivery(item.id, state=state, attempts=attempts,
                                next_attempt_at=moment + backoff(attempts),
                                last_error=error)
    return DeliveryReport(delivered=delivered, failed=failed, retrying=retrying,
                          errors=tuple(errors))
