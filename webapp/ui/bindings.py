"""Bindings of a template to a source (SPEC 7): the column mapping (auto-mapped, changeable),
output columns, Sync now with a live progress bar, each row's outcome and the run history.
Syncing itself is ``webapp.syncs``: this module only starts runs and shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, ValidationError

from connectors.base import SourceError
from renderer.encode import EXTENSIONS
from renderer.key import referenced_names

from .. import syncs
from ..errors import ApiError
from ..extensions import db
from ..mapping import make_plan
from ..models import Batch, BatchItem, Binding, Source, SyncRun, Template
from ..models.base import utcnow
from ..queues import SYNCS, QueueUnavailable, queue
from ..rendering import get_template, get_version, load_version
from . import sources, templates
from .common import field_error, options, owned, public_url, workspace_id
from .errors import wants_json

bp = Blueprint("bindings", __name__)
MIN_POLL = 30
FORMATS = ["png", "jpeg", "webp", "avif", "gif", "pdf"]
NONE = ""


def _poll_check(form, field) -> None:
    if field.data and field.data < MIN_POLL:
        raise ValidationError(f"At least {MIN_POLL} seconds (Google allows about 60 requests "
                              "a minute), or 0 for no polling.")


class BindingForm(FlaskForm):
    template = SelectField("Template", coerce=int, validators=[InputRequired()])
    source = SelectField("Data source", coerce=int, validators=[InputRequired()])
    url_column = StringField("Image URL column", default="Image", validators=[
        InputRequired("Name the column that gets each row's URL."), Length(max=200)],
        description="Added after the last column if the sheet has no such header.")
    status_column = StringField("Status column", default="Status", validators=[Length(max=200)],
                                description="queued, done or error: <reason>; empty for none.")
    thumbnail_column = StringField("Thumbnail column", default="Preview",
                                   validators=[Length(max=200)],
                                   description="=IMAGE(url) formulas; empty for none.")
    key_column = SelectField("Key column", default=NONE,
                             description="Identifies a row when Zapier or Make push values.")
    filter_column = SelectField("Filter column", default=NONE,
                                description="Only rows where it is TRUE are rendered.")
    format = SelectField("Format", choices=options((f, f.upper()) for f in FORMATS), default="png")
    size = SelectField("Size", default=NONE)
    poll_seconds = IntegerField("Poll every (seconds)", default=60, validators=[
        NumberRange(0, 86_400), _poll_check], description="0: only on Sync now and pushes.")


def binding_form(binding: Binding | None, header: list[str], tpl) -> BindingForm:
    data = None
    if binding is not None:
        output = syncs.binding_object(binding)["output"]
        data = {"template": binding.template_id, "source": binding.source_id,
                "url_column": output["url_column"], "status_column": output["status_column"],
                "thumbnail_column": output["thumbnail_column"],
                "key_column": binding.key_column or NONE,
                "filter_column": binding.filter_column or NONE, "format": binding.format,
                "size": binding.size or NONE, "poll_seconds": binding.poll_seconds or 0}
    form = BindingForm(data=data) if request.method == "GET" else BindingForm()
    form.template.choices = options(templates.choices())
    form.source.choices = options(sources.choices())
    form.key_column.choices = options([(NONE, "— none —"), *[(h, h) for h in header]])
    form.filter_column.choices = options([(NONE, "— none —"), *[(h, h) for h in header]])
    form.size.choices = options([(NONE, "Default"),
                                *[(s, s) for s in (tpl.sizes if tpl else [])]])
    return form


def variables_of(tpl) -> list[str]:
    return [*tpl.variables, *sorted(set(referenced_names(tpl)) - set(tpl.variables))]


def read_header(source: Source) -> list[str]:
    connector = syncs.connect(source)
    if not connector.writable:
        raise SourceError("read_only", f"{connector.name} sources cannot be written to, so they "
                          "cannot hold pictures; pick a sheet or an uploaded file", status=422,
                          details={"path": "source"})
    return connector.read().header


def _chosen(binding: Binding | None) -> tuple[Template | None, Source | None]:
    if binding is not None and request.method == "GET" and "template" not in request.args:
        template_id, source_id = binding.template_id, binding.source_id
    else:
        template_id = request.values.get("template", type=int)
        source_id = request.values.get("source", type=int)
    template = owned(Template, template_id) if template_id else None
    source = owned(Source, source_id) if source_id else None
    return template, source


def editor(binding: Binding | None):
    """The new-binding and change-binding page: pick a template and a source, then map."""
    template, source = _chosen(binding)
    tpl = load_version(get_version(template, None)) if template else None
    header, problem = [], None
    if template and source:
        try:
            header = read_header(source)
        except (SourceError, ApiError) as exc:
            problem = exc.message
    form = binding_form(binding, [h.strip() for h in header if h.strip()], tpl)
    if template and source and form.template.data is None:
        form.template.data, form.source.data = template.id, source.id
    plan = None
    if header and request.method == "POST" and form.validate_on_submit():
        saved = _save(form, binding, template, source, tpl, header)
        if saved is not None:
            return saved
    if header and tpl is not None:
        plan = _shown_plan(binding, form, tpl, header)
    status = 422 if request.method == "POST" else 200
    return render_template("bindings/form.html", form=form, binding=binding, tpl=tpl,
                           header=[h.strip() for h in header if h.strip()], plan=plan,
                           problem=problem, ready=bool(header and tpl),
                           variables=variables_of(tpl) if tpl else []), status


def _mapping_from_form(tpl) -> dict[str, str]:
    return {v: request.form[f"map.{v}"] for v in variables_of(tpl)
            if request.form.get(f"map.{v}")}


def _shown_plan(binding, form, tpl, header) -> dict[str, str]:
    """What each variable reads: as chosen on the form, else as saved, else auto-mapped."""
    probe = Binding(mapping=_mapping_from_form(tpl) if request.method == "POST"
                    else (binding.mapping if binding else {}), output={})
    try:
        return make_plan(probe, variables_of(tpl), header).mapping
    except SourceError:
        return dict(probe.mapping)


def _save(form: BindingForm, binding: Binding | None, template, source, tpl, header):
    target = binding or Binding(workspace_id=workspace_id())
    target.template_id, target.source_id = template.id, source.id
    target.mapping = _mapping_from_form(tpl)
    target.output = {"url_column": form.url_column.data.strip(),
                     "status_column": (form.status_column.data or "").strip() or None,
                     "thumbnail_column": (form.thumbnail_column.data or "").strip() or None}
    target.key_column = form.key_column.data or None
    target.filter_column = form.filter_column.data or None
    target.format, target.size = form.format.data, form.size.data or None
    target.poll_seconds = form.poll_seconds.data or 0
    try:
        target.mapping = make_plan(target, variables_of(tpl), header).mapping
    except SourceError as exc:
        db.session.rollback()
        path = exc.details.get("path", "")
        field_error(form, path, exc.message,
                    fallback="url_column" if path == "output" else None)
        return None
    target.next_poll_at = (utcnow() + dt.timedelta(seconds=target.poll_seconds)
                           if target.poll_seconds else None)
    target.updated_at = utcnow()
    if binding is None:
        db.session.add(target)
    db.session.commit()
    flash("Saved. Press Sync now to fill the sheet." if binding is None else "Saved.",
          "success")
    return redirect(url_for(".detail", binding_id=target.id))


def binding_rows() -> list[Binding]:
    return list(db.session.scalars(select(Binding).where(Binding.workspace_id == workspace_id())
                                   .order_by(Binding.id.desc())))


@bp.get("/bindings")
def index():
    names = dict(templates.choices())
    source_names = dict(sources.choices())
    return render_template("bindings/index.html", bindings=binding_rows(), names=names,
                           source_names=source_names)


@bp.route("/bindings/new", methods=["GET", "POST"])
def new():
    return editor(None)


@bp.route("/bindings/<int:binding_id>/edit", methods=["GET", "POST"])
def edit(binding_id: int):
    return editor(owned(Binding, binding_id))


@bp.get("/bindings/<int:binding_id>")
def detail(binding_id: int):
    binding = owned(Binding, binding_id)
    runs = db.session.scalars(select(SyncRun).where(SyncRun.binding_id == binding.id)
                              .order_by(SyncRun.id.desc()).limit(20)).all()
    latest = runs[0] if runs else None
    template = _template_or_none(binding)
    return render_template(
        "bindings/detail.html", binding=binding, obj=syncs.binding_object(binding),
        template=template, source=db.session.get(Source, binding.source_id),
        runs=[syncs.run_object(r) for r in runs], progress=progress(binding, latest),
        rows=row_outcomes(binding, latest))


def _template_or_none(binding: Binding) -> Template | None:
    try:
        return get_template(binding.workspace_id, binding.template_id)
    except ApiError:
        return None


@bp.post("/bindings/<int:binding_id>/sync")
def sync(binding_id: int):
    binding = owned(Binding, binding_id)
    try:
        queue(SYNCS)
    except QueueUnavailable:
        message = "Syncs need the background workers (REDIS_URL); none are configured."
        if wants_json():
            return jsonify({"error": {"code": "queue_unavailable", "message": message}}), 503
        flash(message, "error")
        return redirect(url_for(".detail", binding_id=binding.id))
    run = syncs.request_sync(binding, "manual")
    if wants_json():
        return jsonify(syncs.run_object(run)), 202
    flash("Syncing: the progress bar shows how far it got.", "info")
    return redirect(url_for(".detail", binding_id=binding.id))


@bp.get("/bindings/<int:binding_id>/progress.json")
def progress_json(binding_id: int):
    binding = owned(Binding, binding_id)
    latest = db.session.scalar(select(SyncRun).where(SyncRun.binding_id == binding.id)
                               .order_by(SyncRun.id.desc()).limit(1))
    return jsonify(progress(binding, latest))


def progress(binding: Binding, run: SyncRun | None) -> dict[str, Any]:
    """How far the latest run got: reading, then rendering (rows done of rows to render),
    then writing back."""
    if run is None:
        return {"state": "idle", "active": False, "percent": 0, "indeterminate": False,
                "fields": {"status": "never synced", "done": "—", "errors": "—"}}
    batch = db.session.scalar(select(Batch).where(Batch.run_id == run.id))
    done = (batch.done + batch.failed) if batch else 0
    total = batch.total if batch else run.to_render
    active = run.status in syncs.ACTIVE
    if run.status == "completed":
        percent = 100
    elif total:
        percent = min(99, round(100 * done / total))
    else:
        percent = 0 if active else 100
    label = {"queued": "queued", "reading": "reading the sheet",
             "rendering": "rendering" if done < total else "writing back"}.get(run.status,
                                                                                run.status)
    errors = batch.failed if batch else run.errors
    return {"state": run.status, "active": active, "percent": percent,
            "indeterminate": run.status in ("queued", "reading"), "run": run.id,
            "fields": {"status": label, "done": f"{done} of {total}" if total else
                       ("nothing to render" if not active else "—"),
                       "errors": errors, "rows_seen": run.rows_seen,
                       "rows_current": run.rows_current, "binding_status": binding.status}}


def row_outcomes(binding: Binding, run: SyncRun | None, limit: int = 500) -> list[dict]:
    """Each sheet row the run rendered: its status and URL or error."""
    if run is None:
        return []
    batch = db.session.scalar(select(Batch).where(Batch.run_id == run.id))
    if batch is None:
        return []
    items = db.session.scalars(select(BatchItem).where(BatchItem.batch_id == batch.id)
                               .order_by(BatchItem.position).limit(limit)).all()
    ext = EXTENSIONS[batch.format]
    found = []
    for item in items:
        url = f"{public_url()}/r/{item.key}.{ext}" if item.key else None
        for number in (item.meta or {}).get("rows", []):
            found.append({"row": number, "status": item.status, "url": url,
                          "error": (item.error or {}).get("message"),
                          "written": item.delivered_at is not None})
    return sorted(found, key=lambda r: r["row"])


@bp.post("/bindings/<int:binding_id>/delete")
def delete(binding_id: int):
    binding = owned(Binding, binding_id)
    db.session.delete(binding)
    db.session.commit()
    flash("Deleted the binding. The sheet keeps what was written to it.", "info")
    return redirect(url_for(".index"))


