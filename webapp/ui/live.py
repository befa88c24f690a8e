"""Live banners (SPEC 8): a template bound to a JSON/HTTP source or to pushed data, served at
``/live/<slug>.<ext>``. The pages live under ``/banners`` because ``/live/…`` are the public
picture and push URLs. Creating, changing, pushing and refreshing are ``webapp.live`` and the
API's helpers: this module only gathers the form, shows the domain's errors beside the fields
and polls the banner's state so the picture and status change without a reload."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from connectors.base import SourceError
from connectors.json_http import JsonHttpSource, flatten
from renderer import RendererError

from .. import live, syncs
from ..errors import ApiError
from ..extensions import db
from ..mapping import normalise
from ..models import LiveBanner, Source, Template
from ..models.base import utcnow
from ..rendering import get_version, load_version
from . import templates
from .common import options, owned, workspace_id
from .errors import page

bp = Blueprint("live", __name__)
FORMATS = ["png", "jpeg", "webp", "avif", "gif"]
NONE = ""
DOMAIN_ERRORS = (SourceError, RendererError, ApiError)


def _json_object(form, field) -> None:
    if not (field.data or "").strip():
        return
    try:
        value = json.loads(field.data)
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError('Give one JSON object, like {"title": "Hello"}.')


class PickForm(FlaskForm):
    """Step 1: which template, and where its data comes from."""

    class Meta:
        csrf = False  # a GET form: it changes nothing

    template = SelectField("Template", coerce=int)
    source = SelectField("Data source", default=NONE,
                         description="A JSON/HTTP source the banner follows, or none: then it "
                                     "shows the data you push to it.")


class BannerForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)],
                       description="For you; the banner's URL does not change with it.")
    format = SelectField("Format", choices=options((f, f.upper()) for f in FORMATS),
                         default="png")
    refresh_seconds = IntegerField(
        "Refresh every (seconds)", validators=[Optional(), NumberRange(1, 86_400)],
        description="How often the source is read, and how long browsers may keep the "
                    "picture. Empty: the source's own interval (60 s).")
    values = TextAreaField("First data (JSON)", validators=[_json_object], render_kw={
        "rows": 6, "spellcheck": "false"},
        description="One object; nested objects are read with dotted keys (price.amount). "
                    "Push new data later with the banner's data URL.")


class EditForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    refresh_seconds = IntegerField("Refresh every (seconds)", validators=[
        Optional(), NumberRange(1, 86_400)], description="Empty: keep the current interval.")


class PushForm(FlaskForm):
    values = TextAreaField("Data (JSON)", validators=[_json_object], render_kw={
        "rows": 6, "spellcheck": "false"},
        description="Replaces the data the banner shows (until its source answers "
                    "something new).")


# ---------------------------------------------------------------- lookups


def json_sources() -> list[Source]:
    return list(db.session.scalars(select(Source).where(
        Source.workspace_id == workspace_id(), Source.type == JsonHttpSource.type)
        .order_by(Source.id.desc())))


def banner_rows() -> list[LiveBanner]:
    return list(db.session.scalars(select(LiveBanner).where(
        LiveBanner.workspace_id == workspace_id()).order_by(LiveBanner.id.desc())))


def variables_of(tpl) -> list[str]:
    return list(dict.fromkeys(live.variable_names(tpl)))


def auto_mapping(names: list[str], keys: list[str]) -> dict[str, str]:
    """The key each variable reads when it is not mapped: the same name, case and spaces
    ignored (as ``live.resolve`` does)."""
    by_name = {normalise(key): key for key in keys}
    return {name: by_name[normalise(name)] for name in names if normalise(name) in by_name}


def read_sample(source: Source) -> dict[str, Any]:
    """The object the source gives a banner now (one read)."""
    connector = syncs.connect(source)
    if not isinstance(connector, JsonHttpSource):
        raise SourceError("unsupported_source", "live banners follow JSON/HTTP sources",
                          status=422)
    return connector.one_object(connector.fetch().data)


def mapping_from_form(names: list[str]) -> dict[str, str]:
    return {v: request.form[f"map.{v}"].strip() for v in names
            if request.form.get(f"map.{v}", "").strip()}


class Problems:
    """Errors from the domain, beside the field they concern (``mapping.<variable>``, the
    data, the source) or above the form."""

    def __init__(self, form: FlaskForm) -> None:
        self.form = form
        self.mapping: dict[str, str] = {}
        self.source: str | None = None

    def add(self, exc: Exception) -> None:
        message = message_of(exc)
        details = getattr(exc, "details", None)
        path = details.get("path", "") if isinstance(details, dict) else ""
        if path.startswith("mapping."):
            variable = path.split(".", 1)[1]
            self.mapping[variable] = _sentence(message.removeprefix(f"{path}: "))
        elif path.startswith(("config", "source")) or isinstance(exc, SourceError) and \
                exc.code.startswith("source_"):
            self.source = _sentence(message)
        elif isinstance(exc, RendererError) and "values" in self.form:
            self.form.values.errors = [*self.form.values.errors, _sentence(message)]
        else:
            self.form.form_errors.append(_sentence(message))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def message_of(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


# ---------------------------------------------------------------- pages


@bp.get("/banners")
def index():
    return render_template("live/index.html", banners=[_shown(b) for b in banner_rows()],
                           names=dict(templates.choices()),
                           sources={s.id: s.name for s in json_sources()})


def _shown(banner: LiveBanner) -> dict[str, Any]:
    return {**live.banner_object(banner), "row": banner}


@bp.get("/banners/status.json")
def statuses():
    """Every banner's picture and state, for the list to follow without a reload."""
    return jsonify({"banners": [state(b) for b in banner_rows()]})


@bp.route("/banners/new", methods=["GET", "POST"])
def new():
    pick = PickForm(request.args)
    pick.template.choices = options(templates.choices())
    pick.source.choices = options([(NONE, "— none: data pushed to it —"),
                                   *[(s.id, s.name) for s in json_sources()]])
    template_id = request.values.get("template", type=int)
    if template_id is None:
        return render_template("live/new.html", pick=pick, ready=False)
    template = owned(Template, template_id)
    source_id = request.values.get("source", type=int)
    source = owned(Source, source_id) if source_id else None
    if source is not None and source.type != JsonHttpSource.type:
        return page(422, f"“{source.name}” is not a JSON/HTTP source: live banners follow "
                    "JSON APIs, or show the data pushed to them.", "unsupported_source")
    return _creator(pick, template, source)


def _creator(pick: PickForm, template: Template, source: Source | None):
    tpl = load_version(get_version(template, None))
    names = variables_of(tpl)
    form = BannerForm()
    problems = Problems(form)
    sample, problem = None, None
    if source is not None and request.method == "GET":
        try:
            sample = read_sample(source)
        except DOMAIN_ERRORS as exc:
            problem = message_of(exc)
    if request.method == "POST" and form.validate_on_submit():
        made = _create(form, template, source, names, problems)
        if made is not None:
            flash("The banner is live: embed its URL wherever the picture should show.",
                  "success")
            return redirect(url_for(".detail", banner_id=made.id))
    pick.template.data, pick.source.data = template.id, str(source.id) if source else NONE
    keys = list(sample) if sample else _posted_keys(form)
    mapping = mapping_from_form(names) if request.method == "POST" else auto_mapping(names,
                                                                                      keys)
    status = 422 if request.method == "POST" else 200
    return render_template("live/new.html", pick=pick, ready=True, form=form,
                           template=template, source=source, names=names, keys=keys,
                           mapping=mapping, auto=auto_mapping(names, keys), sample=sample,
                           problem=problem or problems.source, problems=problems), status


def _posted_keys(form: BannerForm) -> list[str]:
    try:
        data = json.loads(form.values.data or "{}")
    except ValueError:
        return []
    return list(flatten(data)) if isinstance(data, dict) else []


def _create(form: BannerForm, template: Template, source: Source | None, names: list[str],
            problems: Problems) -> LiveBanner | None:
    """The API's creation, step for step: nothing is kept unless the first picture rendered."""
    banner = LiveBanner(workspace_id=workspace_id(), template_id=template.id,
                        source_id=source.id if source else None,
                        name=(form.name.data or "").strip() or None,
                        mapping=mapping_from_form(names), format=form.format.data)
    banner.refresh_seconds = form.refresh_seconds.data or int(
        (source.config.get("refresh_seconds") if source else None) or 60)
    data = json.loads(form.values.data) if source is None and (form.values.data or "").strip() \
        else None
    try:
        live.create(banner, data)
    except DOMAIN_ERRORS as exc:
        problems.add(exc)
        return None
    return banner


@bp.get("/banners/<int:banner_id>")
def detail(banner_id: int):
    banner = owned(LiveBanner, banner_id)
    return _detail(banner, PushForm(formdata=None))


def _detail(banner: LiveBanner, push_form: PushForm, status: int = 200):
    source = db.session.get(Source, banner.source_id) if banner.source_id else None
    template = db.session.get(Template, banner.template_id)
    return render_template("live/detail.html", banner=banner, obj=live.banner_object(banner),
                           state=state(banner), source=source, template=template,
                           push_form=push_form,
                           data_json=json.dumps(banner.data or {}, indent=2,
                                                ensure_ascii=False)), status


@bp.get("/banners/<int:banner_id>/status.json")
def status_json(banner_id: int):
    return jsonify(state(owned(LiveBanner, banner_id)))


def state(banner: LiveBanner) -> dict[str, Any]:
    """What the pages show of a banner and update by polling."""
    from . import _ago  # the package imports this module first

    obj = live.banner_object(banner)
    origin = {"source": "from the source", "push": "pushed"}.get(obj["data_origin"] or "",
                                                                  "none yet")
    return {"id": banner.id, "status": banner.status,
            "error": (banner.error or {}).get("message"), "picture": obj["render_url"],
            "data": json.dumps(banner.data or {}, indent=2, ensure_ascii=False),
            "fields": {"status": banner.status, "origin": origin,
                       "error": (banner.error or {}).get("message") or "",
                       "refreshed": _ago(banner.refreshed_at) if banner.refreshed_at else "—",
                       "next": _next(banner, _ago), "changed": _ago(banner.changed_at)
                       if banner.changed_at else "—"}}


def _next(banner: LiveBanner, ago) -> str:
    if banner.source_id is None:
        return "when data is pushed"
    if banner.next_refresh_at is None:
        return "—"
    return "due now" if banner.next_refresh_at <= utcnow() else ago(banner.next_refresh_at)


@bp.post("/banners/<int:banner_id>/data")
def push(banner_id: int):
    banner = owned(LiveBanner, banner_id)
    form = PushForm()
    if form.validate_on_submit():
        if not (form.values.data or "").strip():
            form.values.errors = ["Give the data as a JSON object."]
        else:
            try:
                live.push(banner, json.loads(form.values.data))
            except DOMAIN_ERRORS as exc:
                db.session.rollback()
                form.values.errors = [_sentence(message_of(exc))]
            else:
                flash("Pushed: the banner shows the new data.", "success")
                return redirect(url_for(".detail", banner_id=banner.id))
    return _detail(banner, form, 422)


@bp.route("/banners/<int:banner_id>/edit", methods=["GET", "POST"])
def edit(banner_id: int):
    banner = owned(LiveBanner, banner_id)
    template = owned(Template, banner.template_id)
    names = variables_of(load_version(get_version(template, banner.version)))
    form = EditForm(data={"name": banner.name, "refresh_seconds": banner.refresh_seconds})
    problems = Problems(form)
    if form.validate_on_submit() and _update(banner, form, names, problems):
        flash("Saved: the banner shows its data with the new settings.", "success")
        return redirect(url_for(".detail", banner_id=banner.id))
    keys = list(banner.data or {})
    mapping = mapping_from_form(names) if request.method == "POST" else dict(
        banner.mapping or {})
    return render_template("live/edit.html", banner=banner, form=form, names=names, keys=keys,
                           mapping=mapping, auto=auto_mapping(names, keys),
                           problems=problems), 422 if request.method == "POST" else 200


def _update(banner: LiveBanner, form: EditForm, names: list[str], problems: Problems) -> bool:
    """Shows the banner's data again with the new settings, as ``PUT /live/{id}`` does."""
    changes = {"name": (form.name.data or "").strip() or None,
               "mapping": mapping_from_form(names)}
    if form.refresh_seconds.data:
        changes["refresh_seconds"] = form.refresh_seconds.data
    try:
        live.change(banner, changes)
    except DOMAIN_ERRORS as exc:
        problems.add(exc)
        return False
    return True


@bp.post("/banners/<int:banner_id>/delete")
def delete(banner_id: int):
    banner = owned(LiveBanner, banner_id)
    slug = banner.slug
    db.session.delete(banner)
    db.session.commit()
    live.forget(slug)
    flash("Deleted the banner: its URL answers 404 from now on.", "info")
    return redirect(url_for(".index"))
