"""Outgoing webhooks (SPEC 6): a JSON body ``{"event", "created_at", "data"}`` signed in the
``Pixelmerge-Signature`` header (``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed
by the hook's secret, or the workspace's signing secret for a per-request ``webhook_url``),
delivered by workers through the guarded outbound session. A 2xx ends a delivery; other answers
and timeouts are retried with growing delays for more than a day; ``410 Gone`` removes a
subscription. Every attempt is logged on the delivery, which can be delivered again."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from flask import current_app

from connectors.http import OutboundError, check_url

from .errors import ApiError
from .extensions import db
from .models import Delivery, Hook, Workspace
from .models.base import iso, utcnow
from .queues import WEBHOOKS, QueueUnavailable, queue

log = logging.getLogger(__name__)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def check_target(url: str, field: str) -> str:
    """A receiver the guarded session may reach (checked when it is given, and again when a
    delivery goes out)."""
    from .rendering import outbound

    try:
        check_url(url, outbound().policy)
    except OutboundError as exc:
        raise ApiError(422, "target_refused", f"{field}: {exc.message}",
                       details={"path": field}) from None
    return url


def retry_intervals() -> list[int]:
    """Seconds between attempts; the default adds up to more than a day."""
    text = str(current_app.config["WEBHOOK_RETRY_INTERVALS"])
    return [int(part) for part in text.split(",") if part.strip()]


HOOKS_SECONDS = 1.0  # a new subscription reaches other processes within this time


def subscribed_events(workspace_id: int) -> frozenset[str]:
    """The events the workspace has subscribers for, kept a second: most renders have none,
    and must not pay a query for it."""
    cache = current_app.extensions.setdefault("webhooks.events", {})
    hit = cache.get(workspace_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < HOOKS_SECONDS:
        return hit[1]
    events = frozenset(db.session.scalars(db.select(Hook.event).where(
        Hook.workspace_id == workspace_id).distinct()))
    cache[workspace_id] = (now, events)
    return events


def forget_hooks(workspace_id: int) -> None:
    current_app.extensions.setdefault("webhooks.events", {}).pop(workspace_id, None)


def emit(workspace_id: int, event: str, data: dict[str, Any], *, template_id: int | None = None,
         webhook_url: str | None = None) -> int:
    """Record and queue a delivery for every subscriber of ``event`` (and ``webhook_url``)."""
    if not webhook_url and event not in subscribed_events(workspace_id):
        return 0
    try:
        queue(WEBHOOKS)
    except QueueUnavailable:
        return 0  # no workers to deliver: nothing is recorded that would wait forever
    hooks = db.session.scalars(db.select(Hook).where(
        Hook.workspace_id == workspace_id, Hook.event == event)).all()
    targets = [(hook.id, hook.target_url) for hook in hooks
               if hook.template_id in (None, template_id)]
    if webhook_url:
        targets.append((None, webhook_url))
    body = json.dumps({"event": event, "created_at": iso(utcnow()), "data": data},
                      separators=(",", ":"))
    deliveries = [Delivery(workspace_id=workspace_id, hook_id=hook_id, target_url=url,
                           event=event, body=body) for hook_id, url in targets]
    db.session.add_all(deliveries)
    db.session.commit()
    for delivery in deliveries:
        queue_delivery(delivery.id)
    return len(deliveries)


def queue_delivery(delivery_id: int) -> None:
    from rq import Retry

    from .tasks.webhooks import deliver as deliver_job

    intervals = retry_intervals()
    queue(WEBHOOKS).enqueue(deliver_job, delivery_id, job_id=f"delivery-{delivery_id}-"
                            f"{time.time_ns()}", retry=Retry(max=len(intervals),
                                                             interval=intervals),
                            job_timeout=120)


def deliver(delivery_id: int, *, last_try: bool) -> str:
    """One attempt. Raises ``RetryLater`` when it should be tried again."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status in ("delivered", "gone"):
        return "nothing to do"
    hook = db.session.get(Hook, delivery.hook_id) if delivery.hook_id else None
    if delivery.hook_id and hook is None:
        return _settle(delivery, "gone")  # unsubscribed meanwhile
    status, error = _post(delivery, hook)
    if status is not None and 200 <= status < 300:
        return _settle(delivery, "delivered")
    if status == 410 and hook is not None:
        db.session.delete(hook)  # the receiver asked to be unsubscribed
        return _settle(delivery, "gone")
    if last_try:
        return _settle(delivery, "failed")
    raise RetryLater(f"delivery {delivery_id}: {error or f'HTTP {status}'}")


class RetryLater(Exception):
    """The receiver did not take it; RQ tries again after the next interval."""


def _post(delivery: Delivery, hook: Hook | None) -> tuple[int | None, str | None]:
    from .rendering import outbound

    secret = hook.secret if hook else db.session.get(Workspace,
                                                     delivery.workspace_id).signing_secret
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json",
               "Pixelmerge-Signature": signature(secret, body, int(time.time())),
               "Pixelmerge-Event": delivery.event, "Pixelmerge-Delivery": str(delivery.id)}
    started = time.perf_counter()
    status, error = None, None
    try:
        status = outbound().request("POST", delivery.target_url, headers=headers,
                                    data=body).status
    except OutboundError as exc:
        error = exc.message
    delivery.attempts = [*delivery.attempts, {
        "at": iso(utcnow()), "status": status, "error": error,
        "ms": round((time.perf_counter() - started) * 1000, 1)}]
    db.session.commit()
    return status, error


def _settle(delivery: Delivery, status: str) -> str:
    delivery.status = status
    if status == "delivered":
        delivery.delivered_at = utcnow()
    db.session.commit()
    return status


def delivery_object(delivery: Delivery) -> dict[str, Any]:
    return {"id": delivery.id, "hook": delivery.hook_id, "event": delivery.event,
            "target_url": delivery.target_url, "status": delivery.status,
            "attempts": delivery.attempts, "body": json.loads(delivery.body),
            "created_at": iso(delivery.created_at),
            "delivered_at": iso(delivery.delivered_at)}
