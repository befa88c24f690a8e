"""Webhooks: REST-hook subscriptions (the secret shown once), each one's delivery log with
every attempt, and redelivery."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, URLField
from wtforms.validators import InputRequired, Length

from ..errors import ApiError
from ..extensions import db
from ..models import Delivery, Hook
from ..models.hook import EVENTS
from ..queues import WEBHOOKS, QueueUnavailable, queue
from ..webhooks import check_target, delivery_object, forget_hooks, queue_delivery
from . import templates
from .common import field_error, options, owned, show_once, take_once, workspace_id

bp = Blueprint("hooks", __name__)


class HookForm(FlaskForm):
    target_url = URLField("Receiver URL", validators=[
        InputRequired("Where should we send the events?"), Length(max=2000)],
        description="We POST signed JSON there; a 2xx answer ends a delivery, others are "
                    "retried for a day, 410 unsubscribes.")
    event = SelectField("Event", choices=options((e, e) for e in EVENTS))
    template = SelectField("Only for template", coerce=lambda v: int(v) if v else None)


def hook_form(formdata=...) -> HookForm:
    form = HookForm() if formdata is ... else HookForm(formdata=formdata)
    form.template.choices = options([("", "Any template"), *templates.choices()])
    return form


def page(form: HookForm, secret: str | None = None, status: int = 200):
    hooks = db.session.scalars(select(Hook).where(Hook.workspace_id == workspace_id())
                               .order_by(Hook.id.desc())).all()
    names = dict(templates.choices())
    response = make_response(render_template("hooks/index.html", hooks=hooks, names=names,
                                             form=form, secret=secret), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/webhooks")
def index():
    return page(hook_form(), secret=take_once("hook"))


@bp.post("/webhooks")
def create():
    form = hook_form()
    if not form.validate_on_submit():
        return page(form, status=422)
    try:
        queue(WEBHOOKS)
        target = check_target(form.target_url.data.strip(), "target_url")
    except QueueUnavailable:
        flash("Webhooks need the background workers (REDIS_URL); none are configured.", "error")
        return page(form, status=503)
    except ApiError as exc:
        field_error(form, "target_url", exc.message)
        return page(form, status=422)
    hook = Hook(workspace_id=workspace_id(), event=form.event.data, target_url=target,
                template_id=form.template.data)
    secret = hook.new_secret()
    db.session.add(hook)
    db.session.commit()
    forget_hooks(hook.workspace_id)
    show_once("hook", secret)
    return redirect(url_for(".index"))


@bp.get("/webhooks/<int:hook_id>")
def detail(hook_id: int):
    hook = owned(Hook, hook_id)
    deliveries = db.session.scalars(select(Delivery).where(Delivery.hook_id == hook.id)
                                    .order_by(Delivery.id.desc()).limit(100)).all()
    return render_template("hooks/detail.html", hook=hook,
                           names=dict(templates.choices()),
                           deliveries=[_shown(d) for d in deliveries])


def _shown(delivery: Delivery) -> dict:
    data = delivery_object(delivery)
    data["pretty"] = json.dumps(data["body"], indent=2, ensure_ascii=False)
    data["row"] = delivery
    return data


@bp.post("/webhooks/<int:hook_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver(hook_id: int, delivery_id: int):
    hook = owned(Hook, hook_id)
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.hook_id != hook.id:
        abort(404)
    try:
        queue(WEBHOOKS)
    except QueueUnavailable:
        flash("Webhooks need the background workers (REDIS_URL); none are configured.", "error")
        return redirect(url_for(".detail", hook_id=hook.id))
    delivery.status, delivery.delivered_at = "pending", None
    db.session.commit()
    queue_delivery(delivery.id)
    flash(f"Delivery {delivery.id} is on its way again.", "success")
    return redirect(url_for(".detail", hook_id=hook.id))


@bp.post("/webhooks/<int:hook_id>/delete")
def delete(hook_id: int):
    hook = owned(Hook, hook_id)
    db.session.delete(hook)
    db.session.commit()
    forget_hooks(hook.workspace_id)
    flash("Unsubscribed. Its delivery log is kept.", "info")
    return redirect(url_for(".index"))
