"""A/B experiments on images (SPEC 9): ``GET /x/<id>.<ext>`` serves a variant and counts an
impression, ``GET /x/<id>/click`` counts a click for the variant that visitor saw and redirects
to the goal.

A visitor is the ``v`` query parameter or, without one, a cookie set with the first image. The
variant is a pure function of (experiment, visitor) and the weights, so a visitor sees the same
variant every time and a click is credited without storing assignments. Counts are Redis
``HINCRBY``s (atomic, one round trip); the scheduler moves them into the database: it renames
the hash (atomic), adds it to the variants and records the flush's id in the same transaction,
then deletes it, so a flush cut short is applied once when the next round finds it. Reads add
what Redis holds on top of the database. Each variant is rendered once, at creation.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import logging
import secrets
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import Blueprint, current_app, redirect, request
from redis.exceptions import RedisError
from sqlalchemy import String, delete, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError

from connectors.json_http import finite
from renderer.encode import EXTENSIONS

from .errors import ApiError
from .extensions import db
from .models import CountFlush, Experiment, Variant
from .models.base import iso, utcnow
from .models.render import storage_name
from .public import EXTENSION_FORMAT, _stored
from .queues import QueueUnavailable, redis_connection
from .rendering import (
    Request,
    app_cache,
    fold,
    load_version,
    perform,
    recent,
    template_and_version,
)

log = logging.getLogger(__name__)
bp = Blueprint("experiments", __name__)
COOKIE = "pm_visitor"
LOOKUP_SECONDS = 1.0  # a declared winner reaches every process within this
DRAWS = 20_000


def counts_key(experiment_id: int) -> str:
    return f"pm:x:{experiment_id}"


# ---------------------------------------------------------------- serving


@dataclass(frozen=True)
class Running:
    """What serving an experiment needs, kept in each process for LOOKUP_SECONDS."""

    id: int
    format: str
    goal_url: str
    keys: tuple[str, ...]
    bounds: tuple[float, ...]  # cumulative weights, the last one the total
    winner: int | None

    def assign(self, visitor: str) -> int:
        """The visitor's variant: the same one every time (until a winner is declared)."""
        if self.winner is not None:
            return self.winner
        digest = hashlib.sha256(f"{self.id}:{visitor}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * self.bounds[-1]
        return min(bisect.bisect_right(self.bounds, point), len(self.keys) - 1)


def running(experiment_id: int) -> Running | None:
    return recent("experiments", experiment_id, LOOKUP_SECONDS,
                  lambda: _running(experiment_id))


def _running(experiment_id: int) -> Running | None:
    experiment = db.session.get(Experiment, experiment_id, populate_existing=True) \
        if 0 < experiment_id < 2**31 else None
    if experiment is None:
        return None
    return Running(experiment.id, experiment.format, experiment.goal_url,
                   tuple(v.render_key for v in experiment.variants),
                   tuple(np.cumsum([v.weight for v in experiment.variants]).tolist()),
                   experiment.winner)


def forget(experiment_id: int) -> None:
    app_cache("experiments").pop(experiment_id, None)


def _running_or_404(experiment_id: int) -> Running:
    found = running(experiment_id)
    if found is None:
        raise ApiError(404, "experiment_not_found", f"no experiment with id {experiment_id}")
    return found


def _visitor() -> tuple[str | None, bool]:
    """(visitor id, whether it came with the request)."""
    given = request.args.get("v") or request.cookies.get(COOKIE)
    if given:
        return given[:200], True
    return None, False


def _count(experiment_id: int, field: str) -> None:
    try:
        redis_connection().hincrby(counts_key(experiment_id), field, 1)
    except (RedisError, QueueUnavailable) as exc:  # the picture matters more than one count
        log.warning("experiment %s: %s not counted (%s)", experiment_id, field, exc)


@bp.get("/x/<int:experiment_id>.<ext>")
def impression(experiment_id: int, ext: str):
    """A variant's picture, counted as an impression; never cached by browsers or proxies, so
    each view is counted."""
    found = _running_or_404(experiment_id)
    if EXTENSION_FORMAT.get(ext.lower()) != found.format:
        raise ApiError(404, "experiment_not_found", f"experiment {experiment_id} is served as "
                       f".{EXTENSIONS[found.format]}, not .{ext}")
    visitor, known = _visitor()
    visitor = visitor or secrets.token_urlsafe(12)
    index = found.assign(visitor)
    _count(found.id, f"i{index}")
    response = _stored(storage_name(found.keys[index], found.format), found.format)
    response.headers["Cache-Control"] = "private, no-store"
    if not known:
        # embedded on other sites, the image is a cross-site request: only a SameSite=None
        # cookie (which must be Secure, so over https) comes back with the next one
        response.set_cookie(COOKIE, visitor, max_age=365 * 86400, httponly=True,
                            samesite="None" if request.is_secure else "Lax",
                            secure=request.is_secure)
    return response


@bp.get("/x/<int:experiment_id>/click")
def click(experiment_id: int):
    """Counts a click for the visitor's variant and redirects to the goal. Without a visitor
    (no ``v`` and no cookie) the click cannot be credited: the visitor still goes to the goal,
    the click is counted apart (``clicks_without_visitor``) and the answer says why."""
    found = _running_or_404(experiment_id)
    visitor, _ = _visitor()
    response = redirect(found.goal_url, code=302)
    response.headers["Cache-Control"] = "no-store"
    if visitor is None:
        _count(found.id, "u")
        response.headers["Pixelmerge-Click"] = (
            "not counted: no visitor id; add ?v=<visitor id> to the click URL (the same as on "
            "the image URL) or let the image set its cookie first")
        return response
    index = found.assign(visitor)
    _count(found.id, f"c{index}")
    response.headers["Pixelmerge-Click"] = f"counted for variant {index}"
    return response


# ---------------------------------------------------------------- counts


def _parse(counts: dict) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in counts.items()}


def taken_key(experiment_id: int) -> str:
    """The set of the experiment's flushes taken from Redis and not yet deleted."""
    return f"pm:xs:{experiment_id}"


def current_counts(experiment: Experiment) -> tuple[list[tuple[int, int]], int]:
    """((impressions, clicks) per variant, clicks without a visitor), up to the moment, each
    count once: Redis first — the live hash and the taken flushes' ids in one transaction, then
    those flushes' hashes (never changed once taken) — then one SQL statement for the stored
    counts and which of those flushes are applied (one statement: one snapshot)."""
    connection = redis_connection()
    try:
        pipe = connection.pipeline(transaction=True)
        pipe.hgetall(counts_key(experiment.id))
        pipe.smembers(taken_key(experiment.id))
        live, ids = pipe.execute()
        flights = {_text(i): _parse(connection.hgetall(f"pm:xf:{experiment.id}:{_text(i)}"))
                   for i in ids}
    except RedisError as exc:
        raise ApiError(503, "counting_unavailable", f"the counts are in Redis, which cannot "
                       f"be reached: {exc}") from None
    stored, stray, applied = _stored_counts(experiment.id, list(flights))
    extra = _parse(live)
    for flush_id, counts in flights.items():
        if flush_id not in applied:
            for field, n in counts.items():
                extra[field] = extra.get(field, 0) + n
    return ([(shown + extra.get(f"i{p}", 0), clicked + extra.get(f"c{p}", 0))
             for p, (shown, clicked) in sorted(stored.items())], stray + extra.get("u", 0))


def _stored_counts(experiment_id: int, flush_ids: list[str]):
    variants = select(Variant.position, Variant.impressions, Variant.clicks,
                      literal(None, String(64)).label("flush")).where(
        Variant.experiment_id == experiment_id)
    stray = select(literal(-1), Experiment.stray_clicks, literal(0),
                   literal(None, String(64))).where(Experiment.id == experiment_id)
    flushes = select(literal(-2), literal(0), literal(0), CountFlush.id).where(
        CountFlush.id.in_(flush_ids or [""]))
    stored, strays, applied = {}, 0, set()
    for row in db.session.execute(union_all(variants, stray, flushes)):
        if row[0] >= 0:
            stored[row[0]] = (int(row[1]), int(row[2]))
        elif row[0] == -1:
            strays = int(row[1])
        else:
            applied.add(row[3])
    return stored, strays, applied


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def flush_counts() -> int:
    """The scheduler's round: counts from Redis into the database, each exactly once. Returns
    how many flushes were applied."""
    connection = redis_connection()
    for key in list(connection.scan_iter("pm:x:*", count=1000)):
        experiment_id, flush_id = _text(key).split(":")[2], uuid.uuid4().hex
        pipe = connection.pipeline(transaction=True)
        pipe.rename(_text(key), f"pm:xf:{experiment_id}:{flush_id}")
        pipe.sadd(taken_key(int(experiment_id)), flush_id)
        renamed, _ = pipe.execute(raise_on_error=False)
        if isinstance(renamed, Exception):  # gone meanwhile (another scheduler took it)
            connection.srem(taken_key(int(experiment_id)), flush_id)
    applied = sum(_apply(connection, _text(key))
                  for key in list(connection.scan_iter("pm:xf:*", count=1000)))
    _forget_old_flushes()
    return applied


def _apply(connection, key: str) -> int:
    _, _, experiment_id, flush_id = key.split(":")
    if db.session.get(CountFlush, flush_id) is None:
        _add(int(experiment_id), _parse(connection.hgetall(key)))
        db.session.add(CountFlush(id=flush_id))
        try:
            db.session.commit()
        except IntegrityError:  # another scheduler applied it first
            db.session.rollback()
    pipe = connection.pipeline(transaction=True)
    pipe.delete(key)
    pipe.srem(taken_key(int(experiment_id)), flush_id)
    pipe.execute()
    return 1


def _forget_old_flushes() -> None:
    """A flush's id is needed until its hash is deleted, a moment after its commit (or the next
    round after a crash): a day is plenty."""
    db.session.execute(delete(CountFlush).where(
        CountFlush.created_at < utcnow() - dt.timedelta(days=1)))
    db.session.commit()


def _add(experiment_id: int, counts: dict[str, int]) -> None:
    for field, n in counts.items():
        if field == "u":
            db.session.execute(update(Experiment).where(Experiment.id == experiment_id)
                               .values(stray_clicks=Experiment.stray_clicks + n))
            continue
        column = {"i": "impressions", "c": "clicks"}.get(field[:1])
        if column is None or not field[1:].isdigit():
            continue
        db.session.execute(update(Variant).where(
            Variant.experiment_id == experiment_id, Variant.position == int(field[1:]))
            .values({column: getattr(Variant, column) + n}))


# ---------------------------------------------------------------- creating


def check_goal(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(422, "invalid_request", f"goal_url: {url!r} is not an http(s) URL; "
                       "clicks are sent there", details={"path": "goal_url"})


def check_variables(variables: dict[str, Any]) -> None:
    if not finite(variables):
        raise ApiError(400, "invalid_json", "variables: NaN and Infinity are not JSON numbers",
                       details={"path": "variables"})


def check_counting() -> None:
    """Experiments count in Redis: without it they cannot run (503 before anything is made)."""
    try:
        redis_connection().ping()
    except (RedisError, QueueUnavailable) as exc:
        raise ApiError(503, "counting_unavailable", f"experiments need Redis to count "
                       f"impressions and clicks: {exc}") from None


def make_variant(workspace_id: int, index: int, template_id: int, version: int | None,
                 weight: float, fmt: str, variables: dict[str, Any], *,
                 api_key_id: int | None = None) -> Variant:
    """A variant, rendered now (once) with the experiment's variables."""
    template, head = template_and_version(workspace_id, template_id, version)
    tpl = load_version(head)
    values, overrides = fold(tpl, variables, None, None)
    req = Request(template, head, tpl, values, overrides, fmt, None, 1, None, False)
    snap, _ = perform(req, workspace_id=workspace_id, api_key_id=api_key_id,
                      metadata={"experiment_variant": index}, wait=True)
    return Variant(position=index, template_id=template.id, version=head.version,
                   weight=weight, render_key=snap["key"])


# ---------------------------------------------------------------- statistics


def probability_best(counts: list[tuple[int, int]], draws: int = DRAWS) -> list[float]:
    """P(each variant's click rate is the highest) under Beta(1 + clicks, 1 + impressions -
    clicks) posteriors, by sampling; the seed comes from the counts so an answer is stable."""
    seed = int.from_bytes(hashlib.sha256(repr(counts).encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    samples = np.column_stack([rng.beta(1 + clicks, 1 + max(shown - clicks, 0), draws)
                               for shown, clicks in counts])
    best = np.bincount(samples.argmax(axis=1), minlength=len(counts))
    return [round(float(n) / draws, 4) for n in best]


def experiment_object(experiment: Experiment) -> dict[str, Any]:
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    ext = EXTENSIONS[experiment.format]
    counts, stray = current_counts(experiment)
    chances = probability_best(counts)
    total = sum(v.weight for v in experiment.variants)
    variants = []
    for v, (shown, clicked), chance in zip(experiment.variants, counts, chances, strict=True):
        share = (1.0 if v.position == experiment.winner else 0.0) \
            if experiment.winner is not None else v.weight / total
        variants.append({
            "index": v.position, "template": v.template_id, "version": v.version,
            "weight": v.weight, "share": round(share, 4),
            "image_url": f"{public}/r/{v.render_key}.{ext}", "impressions": shown,
            "clicks": clicked, "rate": round(clicked / shown, 6) if shown else 0.0,
            "probability_best": chance})
    return {"id": experiment.id, "name": experiment.name,
            "image_url": f"{public}/x/{experiment.id}.{ext}",
            "click_url": f"{public}/x/{experiment.id}/click", "goal_url": experiment.goal_url,
            "format": experiment.format, "variables": experiment.variables or {},
            "variants": variants, "winner": experiment.winner,
            "winner_at": iso(experiment.winner_at),
            "clicks_without_visitor": stray,
            "created_at": iso(experiment.created_at)}


def workspace_experiments(workspace_id: int) -> list[Experiment]:
    return list(db.session.scalars(select(Experiment).where(
        Experiment.workspace_id == workspace_id).order_by(Experiment.id.desc())))
