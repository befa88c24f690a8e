"""A/B experiments on images (SPEC 9): weighted variants, their counts, and the flushes that
moved counts from Redis into the database (each applied exactly once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class Experiment(db.Model):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    name: Mapped[str] = mapped_column(String(200))
    goal_url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(10), default="png")
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    winner: Mapped[int | None] = mapped_column(Integer, default=None)  # a variant's index
    winner_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    stray_clicks: Mapped[int] = mapped_column(BigInteger, default=0)  # without a visitor id
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    variants: Mapped[list[Variant]] = relationship(
        back_populates="experiment", order_by="Variant.position", cascade="all, delete-orphan")


class Variant(db.Model):
    __tablename__ = "experiment_variants"
    __table_args__ = (UniqueConstraint("experiment_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    render_key: Mapped[str] = mapped_column(String(64))
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)

    experiment: Mapped[Experiment] = relationship(back_populates="variants")


class CountFlush(db.Model):
    """A batch of counts taken from Redis, recorded in the same transaction that adds them, so
    a flush cut short is applied again only if it was not applied yet."""

    __tablename__ = "experiment_flushes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
