"""A/B experiments (SPEC 9): ``POST, GET /experiments``, ``GET, DELETE /experiments/{id}``,
``POST /experiments/{id}/winner``. Serving and counting are outside the API
(``webapp/experiments.py``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from .. import experiments
from ..auth import authenticate
from ..errors import ApiError
from ..extensions import db
from ..models import Experiment, Variant
from ..models.base import utcnow
from ..openapi import operation
from ..schemas import ExperimentIn, ExperimentList, ExperimentOut, VariantIn, WinnerIn
from .common import owned

bp = Blueprint("experiments_api", __name__)


def _out(experiment: Experiment) -> dict[str, Any]:
    return ExperimentOut.model_validate(
        experiments.experiment_object(experiment)).model_dump(mode="json")


def get_experiment(experiment_id: int) -> Experiment:
    return owned(Experiment, experiment_id, "experiment")


@operation(bp, "POST", "/experiments", summary="Start an A/B experiment", tag="experiments",
           scope="render", body=ExperimentIn, responses={201: ExperimentOut},
           errors=(400, 401, 403, 404, 422, 429))
def create_experiment(body: ExperimentIn):
    """Renders every variant with ``variables`` before answering (a variant that cannot be
    rendered is refused with its index). Embed ``image_url`` and link it to ``click_url``."""
    principal = authenticate()
    experiments.check_goal(body.goal_url)
    experiments.check_variables(body.variables)
    experiments.check_counting()
    fmt = "jpeg" if body.format == "jpg" else body.format
    variants = [_variant(principal.workspace_id, i, v, fmt, body.variables)
                for i, v in enumerate(body.variants)]
    experiment = Experiment(workspace_id=principal.workspace_id, name=body.name,
                            goal_url=body.goal_url, format=fmt, variables=body.variables,
                            variants=variants)
    db.session.add(experiment)
    db.session.commit()
    return _out(experiment), 201


def _variant(workspace_id: int, index: int, given: VariantIn, fmt: str,
             variables: dict[str, Any]) -> Variant:
    try:
        return experiments.make_variant(workspace_id, index, given.template, given.version,
                                        given.weight, fmt, variables,
                                        api_key_id=authenticate().key_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ApiError(404, exc.code, f"variants[{index}]: {exc.message}",
                       details={"path": f"variants[{index}].template"}) from None


@operation(bp, "GET", "/experiments", summary="List experiments", tag="experiments",
           scope="render", responses={200: ExperimentList})
def list_experiments():
    return {"data": [_out(e) for e in experiments.workspace_experiments(
        authenticate().workspace_id)]}


@operation(bp, "GET", "/experiments/<int:experiment_id>", summary="An experiment's results",
           tag="experiments", scope="render", responses={200: ExperimentOut},
           errors=(401, 403, 404))
def get_experiment_view(experiment_id: int):
    """Per variant: impressions, clicks, rate and the probability of being best (counts up to
    the moment, including those not yet moved from Redis to the database)."""
    return _out(get_experiment(experiment_id))


@operation(bp, "POST", "/experiments/<int:experiment_id>/winner", summary="Declare a winner",
           tag="experiments", scope="render", body=WinnerIn, responses={200: ExperimentOut},
           errors=(400, 401, 403, 404, 422))
def declare_winner(experiment_id: int, body: WinnerIn):
    """All traffic goes to the winner from then on (within a second in every process)."""
    experiment = get_experiment(experiment_id)
    if body.variant >= len(experiment.variants):
        raise ApiError(422, "invalid_request", f"variant: {body.variant} is not a variant of "
                       f"this experiment (0 to {len(experiment.variants) - 1})",
                       details={"path": "variant"})
    experiment.winner, experiment.winner_at = body.variant, utcnow()
    db.session.commit()
    experiments.forget(experiment.id)
    return _out(experiment)


@operation(bp, "DELETE", "/experiments/<int:experiment_id>", summary="Delete an experiment",
           tag="experiments", scope="render", responses={204: None}, errors=(401, 403, 404))
def delete_experiment(experiment_id: int):
    """Its image and click URLs answer 404 from then on."""
    experiment = get_experiment(experiment_id)
    db.session.delete(experiment)
    db.session.commit()
    experiments.forget(experiment_id)
    return Response(status=204)
