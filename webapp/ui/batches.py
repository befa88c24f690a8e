"""Batches: render a CSV of rows with one template, follow the progress, download the merged
PDF or ZIP and each item. Batches that syncs make show on their binding's page instead."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import SelectField

from .. import batches
from ..errors import ApiError
from ..extensions import db
from ..models import Batch
from ..queues import BATCHES, QueueUnavailable, queue
from ..rows import DataError, csv_rows
from . import templates
from .common import field_error, options, owned, workspace_id

bp = Blueprint("batches", __name__)


class BatchForm(FlaskForm):
    template = SelectField("Template", coerce=int)
    file = FileField("CSV file", validators=[
        FileRequired("Choose a CSV file."), FileAllowed(["csv"], "Upload a .csv file.")],
        description="A header row with the template's variable names, then one row per picture.")
    format = SelectField("Format", choices=options((f, f.upper()) for f in
                                            ("png", "jpeg", "webp", "avif", "gif", "pdf")))
    merge = SelectField("Download as", choices=options([("", "Separate files"),
                                                ("zip", "One ZIP file"),
                                                ("pdf", "One PDF, a page per row")]))


def batch_form() -> BatchForm:
    form = BatchForm()
    form.template.choices = options(templates.choices())
    return form


def batch_rows() -> list[Batch]:
    return list(db.session.scalars(select(Batch).where(
        Batch.workspace_id == workspace_id(), Batch.run_id.is_(None))
        .order_by(Batch.id.desc()).limit(50)))


def page(form: BatchForm, status: int = 200):
    names = dict(templates.choices())
    return render_template("batches/index.html", batches=batch_rows(), form=form,
                           names=names), status


@bp.get("/batches")
def index():
    return page(batch_form())


@bp.post("/batches")
def create():
    form = batch_form()
    if not form.validate_on_submit():
        return page(form, 422)
    try:
        queue(BATCHES)
        rows = csv_rows(form.file.data.read().decode("utf-8-sig"))
        batch = batches.create(workspace_id(), None, template_id=form.template.data,
                               version=None, items=[{"variables": r} for r in rows],
                               options={"format": form.format.data},
                               merge=form.merge.data or None, metadata=None)
    except QueueUnavailable:
        flash("Batches need the background workers (REDIS_URL); none are configured.", "error")
        return page(form, 503)
    except (DataError, UnicodeDecodeError) as exc:
        field_error(form, "file", f"Not a readable CSV file: {exc}")
        return page(form, 422)
    except ApiError as exc:
        db.session.rollback()
        field_error(form, "file" if exc.code in ("empty_batch", "batch_too_large") else None,
                    exc.message)
        return page(form, 422)
    flash(f"Rendering {batch.total} rows.", "success")
    return redirect(url_for(".detail", batch_id=batch.id))


@bp.get("/batches/<int:batch_id>")
def detail(batch_id: int):
    batch = owned(Batch, batch_id)
    return render_template("batches/detail.html", batch=batch,
                           obj=batches.batch_object(batch), progress=progress(batch),
                           names=dict(templates.choices()))


@bp.get("/batches/<int:batch_id>/progress.json")
def progress_json(batch_id: int):
    return jsonify(progress(owned(Batch, batch_id)))


def progress(batch: Batch) -> dict:
    finished = batch.done + batch.failed
    active = batch.status != "completed"
    percent = round(100 * finished / batch.total) if batch.total else 100
    return {"state": batch.status, "active": active, "percent": percent,
            "indeterminate": False,
            "fields": {"status": batch.status, "done": f"{finished} of {batch.total}",
                       "failed": batch.failed}}
