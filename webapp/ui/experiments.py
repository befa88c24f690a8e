"""A/B experiments (SPEC 9): start one with 2–10 variants, embed its image and click URLs,
follow each variant's impressions, clicks, rate and probability of being best on a chart that
updates by polling, and declare a winner. Serving and counting are ``webapp.experiments``; a
variant is rendered as ``POST /experiments`` renders it."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from wtforms import (
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from renderer import RendererError

from .. import experiments
from ..errors import ApiError
from ..extensions import db
from ..models import Experiment, Template, Variant
from ..models.base import utcnow
from ..queues import QueueUnavailable
from . import templates
from .common import options, owned, workspace_id
from .errors import page

bp = Blueprint("experiments", __name__)
FORMATS = ["png", "jpeg", "webp", "avif", "gif"]
MIN_VARIANTS, MAX_VARIANTS = 2, 10
NONE = ""


def _template_id(value: Any) -> int | None:
    if value in (None, "", NONE):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _positive(form, field) -> None:
    if field.data is not None and field.data <= 0:
        raise ValidationError("A weight above 0.")


def _json_object(form, field) -> None:
    try:
        value = json.loads(field.data or "{}")
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError('Give one JSON object, like {"title": "Spring sale"}.')


class VariantForm(Form):
    # the domain says whether the template is the workspace's (its message is shown)
    template = SelectField("Template", coerce=_template_id, validate_choice=False)
    version = IntegerField("Version", validators=[Optional(), NumberRange(min=1)],
                           description="The latest when empty.")
    weight = FloatField("Weight", default=1, validators=[Optional(), _positive,
                                                         NumberRange(max=1_000_000)],
                        description="Its share of the traffic against the others' weights.")


class ExperimentForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the experiment."),
                                           Length(max=200)])
    goal_url = StringField("Goal URL", validators=[
        InputRequired("Say where a click on the picture should go."), Length(max=2000)],
        description="Where a click goes (your landing page); it is counted on the way.",
        render_kw={"type": "url", "placeholder": "https://shop.example/spring"})
    format = SelectField("Format", choices=options((f, f.upper()) for f in FORMATS),
                         default="png")
    variables = TextAreaField("Variables (JSON)", default="{}", validators=[_json_object],
                              render_kw={"rows": 4, "spellcheck": "false"},
                              description="Every variant is rendered once with these values; "
                                          "variables left out keep the template's samples.")
    variants = FieldList(FormField(VariantForm), min_entries=MIN_VARIANTS,
                         max_entries=MAX_VARIANTS)


def experiment_form() -> ExperimentForm:
    form = ExperimentForm()
    choices = options([(NONE, "— no variant —"), *templates.choices()])
    for entry in form.variants:
        entry.form.template.choices = choices
    return form


def letter(index: int) -> str:
    return chr(ord("A") + index)


# ---------------------------------------------------------------- creating


def chosen(form: ExperimentForm) -> list:
    return [entry.form for entry in form.variants if entry.form.template.data is not None]


def _enough(form: ExperimentForm) -> bool:
    if len(chosen(form)) >= MIN_VARIANTS:
        return True
    empty = next(e.form for e in form.variants if e.form.template.data is None)
    empty.template.errors = [*empty.template.errors, f"Pick a template: an experiment "
                             f"compares at least {MIN_VARIANTS} variants."]
    return False


def _create(form: ExperimentForm) -> Experiment | None:
    try:
        experiments.check_goal(form.goal_url.data.strip())
    except ApiError as exc:
        form.goal_url.errors = [_sentence(exc.message.removeprefix("goal_url: "))]
        return None
    fmt, values = form.format.data, json.loads(form.variables.data or "{}")
    variants = []
    for index, given in enumerate(chosen(form)):
        try:
            variants.append(_variant(index, given, fmt, values))
        except ApiError as exc:
            field = given.version if exc.code == "version_not_found" else given.template
            field.errors = [*field.errors, _sentence(exc.message)]
            return None
        except RendererError as exc:
            form.variables.errors = [*form.variables.errors,
                                     f"Variant {letter(index)} cannot be rendered: {exc}"]
            return None
    experiment = Experiment(workspace_id=workspace_id(), name=form.name.data.strip(),
                            goal_url=form.goal_url.data.strip(), format=fmt, variables=values,
                            variants=variants)
    db.session.add(experiment)
    db.session.commit()
    return experiment


def _variant(index: int, given: VariantForm, fmt: str, values: dict[str, Any]) -> Variant:
    weight = given.weight.data if given.weight.data is not None else 1.0
    return experiments.make_variant(workspace_id(), index, given.template.data,
                                    given.version.data, weight, fmt, values)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- results


class CountsUnavailable(Exception):
    pass


def results(experiment: Experiment) -> dict[str, Any]:
    """The experiment with its counts up to now, and what its charts draw: each bar as a part
    of the largest value among the variants (the probability as itself)."""
    try:
        obj = experiments.experiment_object(experiment)
    except (QueueUnavailable, RedisError) as exc:
        raise CountsUnavailable(str(exc)) from None
    variants = obj["variants"]
    top = {name: max([v[name] for v in variants] + [0]) for name in
           ("impressions", "clicks", "rate")}
    leader = _leader(variants)
    for v in variants:
        v["letter"] = letter(v["index"])
        v["bars"] = {name: round(v[name] / top[name], 4) if top[name] else 0.0
                     for name in ("impressions", "clicks", "rate")}
        v["bars"]["probability_best"] = v["probability_best"]
        v["labels"] = {"impressions": f"{v['impressions']:,}", "clicks": f"{v['clicks']:,}",
                       "rate": _percent(v["rate"]),
                       "probability_best": _percent(v["probability_best"], 0)}
        v["leading"] = v["index"] == leader and obj["winner"] is None
    obj["leader"] = leader
    obj["totals"] = {"impressions": sum(v["impressions"] for v in variants),
                     "clicks": sum(v["clicks"] for v in variants)}
    return obj


def _leader(variants: list[dict[str, Any]]) -> int | None:
    """The variant most likely best, if one is ahead of all the others (not on a tie)."""
    ranked = sorted(variants, key=lambda v: v["probability_best"], reverse=True)
    if not any(v["impressions"] for v in variants) or \
            ranked[0]["probability_best"] - ranked[1]["probability_best"] < 0.05:
        return None
    return ranked[0]["index"]


def _percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def _counts_page(exc: CountsUnavailable):
    return page(503, f"The counts are kept in Redis, which cannot be reached: {exc}",
                "queue_unavailable")


# ---------------------------------------------------------------- pages


@bp.get("/experiments")
def index():
    rows = experiments.workspace_experiments(workspace_id())
    try:
        shown = [results(e) for e in rows]
    except CountsUnavailable as exc:
        return _counts_page(exc)
    return render_template("experiments/index.html", experiments=shown,
                           has_templates=bool(templates.choices()))


@bp.route("/experiments/new", methods=["GET", "POST"])
def new():
    form = experiment_form()
    if request.method == "POST" and "add_variant" in request.form:
        if len(form.variants) < MAX_VARIANTS:
            form.variants.append_entry()
            form.variants[-1].form.template.choices = form.variants[0].form.template.choices
        return render_template("experiments/new.html", form=form, max=MAX_VARIANTS,
                               letter=letter)
    if form.validate_on_submit() and _enough(form):
        made = _create(form)
        if made is not None:
            flash("The experiment is running: embed its snippet, and watch the numbers here.",
                  "success")
            return redirect(url_for(".detail", experiment_id=made.id))
        db.session.rollback()
    status = 422 if request.method == "POST" else 200
    return render_template("experiments/new.html", form=form, max=MAX_VARIANTS,
                           letter=letter), status


@bp.get("/experiments/<int:experiment_id>")
def detail(experiment_id: int):
    experiment = owned(Experiment, experiment_id)
    try:
        obj = results(experiment)
    except CountsUnavailable as exc:
        return _counts_page(exc)
    names = {t.id: t.name for t in db.session.scalars(db.select(Template).where(
        Template.id.in_([v.template_id for v in experiment.variants])))}
    return render_template("experiments/detail.html", experiment=experiment, obj=obj,
                           names=names)


@bp.get("/experiments/<int:experiment_id>/stats.json")
def stats(experiment_id: int):
    experiment = owned(Experiment, experiment_id)
    try:
        obj = results(experiment)
    except CountsUnavailable as exc:
        return jsonify({"error": {"code": "queue_unavailable", "message": str(exc)}}), 503
    keep = ("index", "letter", "impressions", "clicks", "rate", "probability_best", "bars",
            "labels", "leading", "share")
    return jsonify({"winner": obj["winner"], "leader": obj["leader"], "totals": obj["totals"],
                    "clicks_without_visitor": obj["clicks_without_visitor"],
                    "variants": [{k: v[k] for k in keep} for v in obj["variants"]]})


@bp.post("/experiments/<int:experiment_id>/winner")
def winner(experiment_id: int):
    experiment = owned(Experiment, experiment_id)
    index = request.form.get("variant", type=int)
    if index is None or not 0 <= index < len(experiment.variants):
        flash("That is not a variant of this experiment.", "error")
        return redirect(url_for(".detail", experiment_id=experiment.id))
    experiment.winner, experiment.winner_at = index, utcnow()
    db.session.commit()
    experiments.forget(experiment.id)
    flash(f"Variant {letter(index)} is the winner: every visitor sees it from now on.",
          "success")
    return redirect(url_for(".detail", experiment_id=experiment.id))


@bp.post("/experiments/<int:experiment_id>/delete")
def delete(experiment_id: int):
    experiment = owned(Experiment, experiment_id)
    db.session.delete(experiment)
    db.session.commit()
    experiments.forget(experiment_id)
    flash(f"Deleted “{experiment.name}”: its image and click URLs answer 404 from now on.",
          "info")
    return redirect(url_for(".index"))
