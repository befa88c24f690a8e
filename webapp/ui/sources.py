"""Data sources: one form per connector type, built from the type's JSON Schema (so a type
registered later gets its form without UI work), CSV/XLSX uploads, Google accounts (OAuth, or
sharing with the service account), connection tests and a preview of the rows."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import (
    BooleanField,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from connectors.base import SourceError
from connectors.csv_file import FORMATS
from connectors.registry import check_config, connector_class, connector_types, split_secrets

from .. import google_oauth, syncs
from ..api.sources import settings, uploaded_source
from ..errors import ApiError
from ..extensions import db
from ..models import Binding, GoogleAccount, Source
from ..models.base import utcnow
from .common import field_error, options, owned, workspace_id

bp = Blueprint("sources", __name__)
UPLOAD_TYPE = "file"  # sources whose data is an uploaded file rather than settings


# ---------------------------------------------------------------- forms from JSON Schema


def _field(name: str, prop: dict[str, Any], required: bool, editing: bool):
    label = prop.get("title") or name.replace("_", " ").capitalize()
    help_text = prop.get("description", "")
    if prop.get("secret") and editing:
        help_text = (help_text + " " if help_text else "") + "Leave empty to keep the stored one."
    checks = [InputRequired(f"{label} is required.")] if required and not (
        prop.get("secret") and editing) else [Optional()]
    kinds = prop.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    settings_ = {"validators": checks, "description": help_text,
                 "default": prop.get("default")}
    if name == "account":
        return SelectField(label, description=help_text, coerce=str, default="")
    if "enum" in prop:
        choices = [(str(v), str(v)) for v in prop["enum"]]
        return SelectField(label, choices=options(choices if required or "default" in prop
                                                  else [("", "—"), *choices]), **settings_)
    if kinds & {"object", "array"}:
        return TextAreaField(label, validators=[Optional(), _json_check], description=(
            help_text + " (JSON)").strip(), render_kw={"rows": 4, "spellcheck": "false"})
    if "integer" in kinds:
        return IntegerField(label, **settings_, render_kw=_bounds(prop))
    if "number" in kinds:
        return FloatField(label, **settings_, render_kw=_bounds(prop))
    if "boolean" in kinds:
        return BooleanField(label, description=help_text, default=prop.get("default", False))
    if prop.get("secret"):
        return TextAreaField(label, **{**settings_, "default": None},
                             render_kw={"rows": 3, "autocomplete": "off", "spellcheck": "false"})
    return StringField(label, **settings_)


def _bounds(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: prop[s] for k, s in (("min", "minimum"), ("max", "maximum")) if s in prop}


def _json_check(form, field) -> None:
    try:
        json.loads(field.data)
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}") from None


def schema_form(type_: str, *, source: Source | None = None, formdata=...) -> FlaskForm:
    """A form for one connector type: a name, then a field per settable schema property."""
    schema = connector_class(type_, settings()).configuration_schema(settings())
    required = set(schema.get("required", []))

    class Form(FlaskForm):
        name = StringField("Name", validators=[InputRequired("Name the source."),
                                               Length(max=200)])

    props = {k: v for k, v in schema.get("properties", {}).items() if not v.get("readOnly")}
    for key, prop in props.items():
        setattr(Form, key, _field(key, prop, key in required, source is not None))
    data = {"name": source.name, **_shown_config(source, props)} if source else None
    kwargs = {} if formdata is ... else {"formdata": formdata}
    form = Form(data=data, **kwargs)
    form.schema_fields = list(props)
    form.secret_fields = [k for k, v in props.items() if v.get("secret")]
    if "account" in props:
        accounts = google_accounts()
        form.account.choices = options([("", "The newest connected account"),
                                        *[(a.id, a.email) for a in accounts]])
    return form


def _shown_config(source: Source, props: dict[str, Any]) -> dict[str, Any]:
    shown = {}
    for key, value in source.config.items():
        if key not in props or props[key].get("secret"):
            continue
        is_json = isinstance(value, dict | list)
        shown[key] = json.dumps(value) if is_json else "" if value is None else value
    return shown


def config_of(form: FlaskForm, type_: str) -> dict[str, Any]:
    """The form's values as the type's ``config`` (blank optional fields left out)."""
    schema = connector_class(type_, settings()).configuration_schema(settings())
    config: dict[str, Any] = {}
    for key in form.schema_fields:
        value = form[key].data
        prop = schema["properties"][key]
        if value is None or value == "":
            continue
        if isinstance(form[key], TextAreaField) and not prop.get("secret") or (
                prop.get("secret") and _json_typed(prop)):
            value = json.loads(value)
        elif key == "account":
            value = int(value)
        config[key] = value
    return config


def _json_typed(prop: dict[str, Any]) -> bool:
    kinds = prop.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    return bool(kinds & {"object", "array"})


def checked(form: FlaskForm, type_: str, config: dict[str, Any]) -> tuple[dict, dict] | None:
    """(plain config, secrets), or None with the problem beside its field."""
    cls = connector_class(type_, settings())
    try:
        check_config(cls, config, settings())
    except SourceError as exc:
        field_error(form, exc.details.get("path"), exc.message, fallback="name")
        return None
    return split_secrets(cls, config, settings())


class UploadForm(FlaskForm):
    file = FileField("CSV or XLSX file", validators=[
        FileRequired("Choose a file."),
        FileAllowed(["csv", "xlsx"], "Upload a .csv or .xlsx file.")],
        description="A header row, then one row per picture. Syncs write the URLs into it; "
                    "download it again from the source's page.")
    name = StringField("Name", validators=[Length(max=200)],
                       description="Optional: the file's name otherwise.")
    worksheet = StringField("Worksheet (XLSX)", validators=[Length(max=200)],
                            description="The first one when empty.")
    header_row = IntegerField("Header row", validators=[Optional(), NumberRange(min=1)],
                              default=1)


# ---------------------------------------------------------------- pages


def google_accounts() -> list[GoogleAccount]:
    return list(db.session.scalars(select(GoogleAccount).where(
        GoogleAccount.workspace_id == workspace_id()).order_by(GoogleAccount.id.desc())))


def source_rows() -> list[Source]:
    return list(db.session.scalars(select(Source).where(Source.workspace_id == workspace_id())
                                   .order_by(Source.id.desc())))


def types_by_key() -> dict[str, dict[str, Any]]:
    return {t["type"]: t for t in connector_types(settings())}


@bp.get("/sources")
def index():
    return render_template("sources/index.html", sources=source_rows(), types=types_by_key(),
                           accounts=google_accounts(), oauth=google_oauth.enabled())


@bp.route("/sources/new/<type_>", methods=["GET", "POST"])
def new(type_: str):
    types = types_by_key()
    if type_ not in types:
        abort(404)
    if type_ == UPLOAD_TYPE:
        return _new_upload(types[type_])
    form = schema_form(type_)
    if form.validate_on_submit():
        parts = checked(form, type_, config_of(form, type_))
        if parts is not None:
            source = Source(workspace_id=workspace_id(), type=type_, name=form.name.data.strip(),
                            config=parts[0])
            source.secrets = parts[1]
            db.session.add(source)
            db.session.commit()
            flash(f"Added “{source.name}”. Test it, then bind a template to it.", "success")
            return redirect(url_for(".detail", source_id=source.id, check=1))
    status = 422 if form.is_submitted() else 200
    return render_template("sources/form.html", form=form, kind=types[type_],
                           accounts=google_accounts()), status


def _new_upload(kind: dict[str, Any]):
    form = UploadForm()
    if form.validate_on_submit():
        try:
            source = uploaded_source(workspace_id())
        except (ApiError, SourceError) as exc:
            db.session.rollback()
            path = exc.details.get("path") if isinstance(exc.details, dict) else None
            field_error(form, path, exc.message, fallback="file")
        else:
            db.session.add(source)
            db.session.commit()
            flash(f"Uploaded “{source.name}”.", "success")
            return redirect(url_for(".detail", source_id=source.id, check=1))
    status = 422 if form.is_submitted() else 200
    return render_template("sources/upload.html", form=form, kind=kind), status


@bp.get("/sources/<int:source_id>")
def detail(source_id: int):
    source = owned(Source, source_id)
    check = rows = problem = None
    if request.args.get("check"):
        check, rows, problem = _check(source)
    bindings = db.session.scalars(select(Binding).where(Binding.source_id == source.id)).all()
    kind = types_by_key().get(source.type, {"name": source.type, "type": source.type})
    return render_template("sources/detail.html", source=source, kind=kind, check=check,
                           rows=rows, problem=problem, bindings=bindings)


def _check(source: Source) -> tuple[dict | None, dict | None, str | None]:
    """The connection test and the first rows (one read of the source)."""
    try:
        connector = syncs.connect(source)
        table = connector.read()
    except (SourceError, ApiError) as exc:
        return None, None, exc.message
    named = [(i, h.strip()) for i, h in enumerate(table.header) if h.strip()]
    data = [r for r in table.rows if not r.blank]
    check = {"title": table.title, "worksheet": table.worksheet,
             "columns": [h for _, h in named], "rows": len(data)}
    rows = {"columns": [h for _, h in named],
            "rows": [{"row": r.number, "values": [r.get(i) for i, _ in named]}
                     for r in data[:20]]}
    return check, rows, None


@bp.route("/sources/<int:source_id>/edit", methods=["GET", "POST"])
def edit(source_id: int):
    source = owned(Source, source_id)
    if source.type == UPLOAD_TYPE:
        return _edit_upload(source)
    form = schema_form(source.type, source=source)
    if form.validate_on_submit():
        config = config_of(form, source.type)
        kept = {k: v for k, v in source.secrets.items() if k not in config}
        parts = checked(form, source.type, {**kept, **config})
        if parts is not None:
            source.name, source.config = form.name.data.strip(), parts[0]
            source.secrets, source.updated_at = parts[1], utcnow()
            db.session.commit()
            flash("Saved.", "success")
            return redirect(url_for(".detail", source_id=source.id, check=1))
    status = 422 if form.is_submitted() else 200
    kind = types_by_key()[source.type]
    return render_template("sources/form.html", form=form, kind=kind, source=source,
                           accounts=google_accounts()), status


def _edit_upload(source: Source):
    """A file source's name; a new file is a new source."""
    name = request.form.get("name", "").strip() if request.method == "POST" else None
    if name:
        source.name, source.updated_at = name[:200], utcnow()
        db.session.commit()
        flash("Saved.", "success")
    return redirect(url_for(".detail", source_id=source.id))


@bp.post("/sources/<int:source_id>/delete")
def delete(source_id: int):
    source = owned(Source, source_id)
    db.session.delete(source)
    db.session.commit()
    flash(f"Deleted “{source.name}” and its bindings; the sheet itself is untouched.", "info")
    return redirect(url_for(".index"))


@bp.get("/sources/<int:source_id>/file")
def download(source_id: int):
    """The uploaded CSV or XLSX with its bindings' output cells filled in."""
    from flask import current_app

    source = owned(Source, source_id)
    if source.type != UPLOAD_TYPE:
        abort(404)
    fmt = source.config["format"]
    data = current_app.extensions["storage"].get(source.config["file"])
    stem = source.config.get("filename", f"source-{source.id}").rsplit(".", 1)[0]
    return Response(data, mimetype=FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


@bp.get("/sources/google/worksheets.json")
def worksheets():
    """The tabs of a spreadsheet, for the worksheet field (with the access the form chose)."""
    config = {k: v for k, v in request.args.items()
              if k in ("spreadsheet", "auth", "account") and v}
    if "account" in config:
        config["account"] = int(config["account"]) if config["account"].isdigit() else None
    source = Source(workspace_id=workspace_id(), type="google_sheets", name="", config=config)
    try:
        title, tabs = syncs.connect(source).tabs()
    except (SourceError, ApiError) as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), 422
    return jsonify({"title": title, "worksheets": tabs})


@bp.post("/sources/google/connect")
def connect_google():
    """To Google's consent page; the account is connected when Google sends the browser back."""
    try:
        return redirect(google_oauth.authorize_url(workspace_id()))
    except ApiError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".index"))


@bp.post("/sources/google/accounts/<int:account_id>/delete")
def disconnect_google(account_id: int):
    account = owned(GoogleAccount, account_id)
    db.session.delete(account)
    db.session.commit()
    flash(f"Disconnected {account.email}. Sources that used it need another account.", "info")
    return redirect(url_for(".index"))


def choices() -> list[tuple[int, str]]:
    return [(s.id, s.name) for s in source_rows()]
