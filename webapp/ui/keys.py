"""API keys: create with scopes and an expiry (the key is shown once, with a copy button),
list, revoke."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.validators import InputRequired, Length, StopValidation, ValidationError

from ..auth import forget
from ..extensions import db
from ..models import SCOPES, ApiKey
from ..models.base import utcnow
from .common import options, owned, show_once, take_once, workspace, workspace_id

bp = Blueprint("keys", __name__)
SCOPE_HELP = {"render": "render pictures, batches, webhooks",
              "templates:read": "read templates", "templates:write": "create and change templates",
              "sources": "data sources and bindings", "admin": "everything, and the signing secret"}
EXPIRY = [("never", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"),
          ("365", "In a year"), ("date", "On a date…")]


class CheckboxList(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False, html_tag="ul")
    option_widget = widgets.CheckboxInput()


class KeyForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the key after where it is used."),
                                           Length(max=200)],
                       description="Where it is used, e.g. “Zapier” or “website”.")
    scopes = CheckboxList("Scopes", choices=options(
                              (s, f"{s} — {SCOPE_HELP[s]}") for s in SCOPES),
                          default=["render", "templates:read"])
    expires = SelectField("Expires", choices=options(EXPIRY), default="never")
    expires_on = DateField("Expiry date")

    def validate_scopes(self, field) -> None:
        if not field.data:
            raise ValidationError("Pick at least one scope.")

    def validate_expires_on(self, field) -> None:
        if self.expires.data != "date":
            field.errors[:] = []  # a half-typed date does not matter then
            raise StopValidation()
        if field.data is None:
            raise ValidationError("Pick the day the key stops working.")
        if field.data <= dt.date.today():
            raise ValidationError("Pick a day after today.")

    def expires_at(self) -> dt.datetime | None:
        if self.expires.data == "never":
            return None
        if self.expires.data == "date":
            return dt.datetime.combine(self.expires_on.data, dt.time(), tzinfo=dt.UTC)
        return utcnow() + dt.timedelta(days=int(self.expires.data))


def key_rows() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace_id())
                                   .order_by(ApiKey.id.desc())))


def state(key: ApiKey) -> str:
    reason = key.usable()
    return "active" if reason is None else "revoked" if key.revoked_at else "expired"


def page(form: KeyForm, token: str | None = None, status: int = 200):
    response = make_response(render_template(
        "keys.html", keys=[(k, state(k)) for k in key_rows()], form=form, token=token), status)
    response.headers["Cache-Control"] = "no-store"  # a page with a new key is never kept
    return response


@bp.get("/keys")
def index():
    return page(KeyForm(), token=take_once("key"))


@bp.post("/keys")
def create():
    form = KeyForm()
    if not form.validate_on_submit():
        return page(form, status=422)
    key, token = ApiKey.issue(workspace(), scopes=form.scopes.data, user=current_user.user,
                              name=form.name.data.strip(), expires_at=form.expires_at())
    db.session.add(key)
    db.session.commit()
    show_once("key", token)  # the key is stored only as a digest: this is its one showing
    return redirect(url_for(".index"))


@bp.post("/keys/<int:key_id>/revoke")
def revoke(key_id: int):
    key = owned(ApiKey, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()
        forget(key.key_hash)
    flash(f"Revoked “{key.name or key.prefix}”. Calls with it now answer 401.", "success")
    return redirect(url_for(".index"))
