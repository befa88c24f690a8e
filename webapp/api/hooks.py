"""REST hooks: ``POST/GET /hooks``, ``DELETE /hooks/{id}``, ``GET /hooks/{id}/deliveries`` and
redelivery — the subscribe/unsubscribe calls Zapier and Make use."""

from __future__ import annotations

from flask import Blueprint, Response

from ..auth import authenticate
from ..errors import not_found
from ..extensions import db
from ..models import Delivery, Hook
from ..models.base import iso
from ..openapi import operation
from ..queues import WEBHOOKS, require
from ..schemas import DeliveryList, DeliveryOut, HookIn, HookList, HookOut
from ..webhooks import check_target, delivery_object, forget_hooks, queue_delivery

bp = Blueprint("hooks", __name__)


def hook_object(hook: Hook, secret: str | None = None) -> dict:
    return HookOut.model_validate({
        "id": hook.id, "target_url": hook.target_url, "event": hook.event,
        "template": hook.template_id, "created_at": iso(hook.created_at), "secret": secret,
    }).model_dump(mode="json")


def _hook(hook_id: int) -> Hook:
    hook = db.session.get(Hook, hook_id)
    if hook is None or hook.workspace_id != authenticate().workspace_id:
        raise not_found("hook", hook_id)
    return hook


@operation(bp, "POST", "/hooks", summary="Subscribe to an event", tag="hooks", scope="render",
           body=HookIn, responses={201: HookOut}, errors=(400, 401, 403, 422, 503))
def create_hook(body: HookIn):
    """The answer's ``secret`` (shown once) verifies each delivery's Pixelmerge-Signature."""
    principal = authenticate()
    require(WEBHOOKS, "webhooks")
    hook = Hook(workspace_id=principal.workspace_id, event=body.event,
                target_url=check_target(body.target_url, "target_url"),
                template_id=body.template)
    secret = hook.new_secret()
    db.session.add(hook)
    db.session.commit()
    forget_hooks(principal.workspace_id)
    return hook_object(hook, secret), 201


@operation(bp, "GET", "/hooks", summary="List subscriptions", tag="hooks", scope="render",
           responses={200: HookList})
def list_hooks():
    hooks = db.session.scalars(db.select(Hook).where(
        Hook.workspace_id == authenticate().workspace_id).order_by(Hook.id.desc())).all()
    return {"data": [hook_object(hook) for hook in hooks]}


@operation(bp, "DELETE", "/hooks/<int:hook_id>", summary="Unsubscribe", tag="hooks",
           scope="render", responses={204: None}, errors=(401, 403, 404))
def delete_hook(hook_id: int):
    hook = _hook(hook_id)
    db.session.delete(hook)
    db.session.commit()
    forget_hooks(hook.workspace_id)
    return Response(status=204)


@operation(bp, "GET", "/hooks/<int:hook_id>/deliveries", summary="A hook's delivery log",
           tag="hooks", scope="render", responses={200: DeliveryList}, errors=(401, 403, 404))
def list_deliveries(hook_id: int):
    """Newest first, each with every attempt (time, status, error, duration)."""
    hook = _hook(hook_id)
    deliveries = db.session.scalars(db.select(Delivery).where(Delivery.hook_id == hook.id)
                                    .order_by(Delivery.id.desc()).limit(100)).all()
    return {"data": [delivery_object(delivery) for delivery in deliveries]}


@operation(bp, "POST", "/hooks/<int:hook_id>/deliveries/<int:delivery_id>/redeliver",
           summary="Deliver again", tag="hooks", scope="render", responses={202: DeliveryOut},
           errors=(401, 403, 404, 503))
def redeliver(hook_id: int, delivery_id: int):
    """Sends the same body again (freshly signed), with the usual retries."""
    hook = _hook(hook_id)
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.hook_id != hook.id:
        raise not_found("delivery", delivery_id)
    delivery.status, delivery.delivered_at = "pending", None
    db.session.commit()
    queue_delivery(delivery.id)
    return DeliveryOut.model_validate(delivery_object(delivery)).model_dump(mode="json"), 202
