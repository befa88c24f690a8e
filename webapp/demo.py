"""The first-run setup of ``make run``: schema, a first account with an API key, and the demo
templates with their assets — each done only when it is missing."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from flask import Flask, current_app

from renderer import load_template

from .accounts import create_user, issue_key
from .extensions import db
from .migrate import upgrade
from .models import Asset, Template, TemplateVersion, User

DEMO_DIR = Path(__file__).resolve().parent.parent / "renderer" / "demo"
DEMO_EMAIL = "demo@pixelmerge.local"
DEMO_TEMPLATES = ("card.json", "world.json", "countdown.json", "certificate.json")
DEMO_ASSETS = {"photo.jpg": "image/jpeg", "logo.png": "image/png"}


def bootstrap(app: Flask) -> list[str]:
    """Returns lines to show the user (the password and key only when just created)."""
    upgrade(app)
    with app.app_context():
        lines = _first_account()
        user = db.session.scalar(db.select(User).order_by(User.id))
        _demo_assets(user.workspace.id)
        added = _demo_templates(user.workspace.id)
        if added:
            lines.append(f"Added {added} demo templates to {user.email}'s workspace.")
        return lines


def _first_account() -> list[str]:
    if db.session.scalar(db.select(User.id).limit(1)) is not None:
        return ["Accounts exist already; create keys with `pixelmerge admin create-api-key`."]
    password = secrets.token_urlsafe(12)
    create_user(DEMO_EMAIL, password, "Demo workspace")
    _, token = issue_key(DEMO_EMAIL, ["render", "templates:read", "templates:write", "sources",
                                       "admin"],
                         name="first key")
    return [f"First account: {DEMO_EMAIL} / password {password}",
            f"First API key (shown once): {token}"]


def _demo_assets(workspace_id: int) -> None:
    storage = current_app.extensions["storage"]
    for name, content_type in DEMO_ASSETS.items():
        if db.session.scalar(db.select(Asset.id).where(Asset.workspace_id == workspace_id,
                                                       Asset.name == name)):
            continue
        data = (DEMO_DIR / name).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        storage.put(f"assets/{workspace_id}/{sha}", data, content_type=content_type)
        db.session.add(Asset(workspace_id=workspace_id, name=name, kind="image",
                             content_type=content_type, size=len(data), sha256=sha))
    db.session.commit()


def _demo_templates(workspace_id: int) -> int:
    existing = set(db.session.scalars(db.select(Template.name).where(
        Template.workspace_id == workspace_id)))
    added = 0
    for file in DEMO_TEMPLATES:
        content = json.loads((DEMO_DIR / file).read_text())
        tpl = load_template(content)
        if tpl.name in existing:
            continue
        row = Template(workspace_id=workspace_id, name=tpl.name, kind=tpl.kind,
                       current_version=1, public=tpl.name == "Product card")
        db.session.add(row)
        db.session.add(TemplateVersion(template=row, version=1, digest=tpl.digest,
                                       content=json.dumps(content, ensure_ascii=False)))
        added += 1
    db.session.commit()
    return added
