"""A new template without a file: a blank card in a preset or custom size, or a starter built
from the bundled demo templates (bringing the pictures it names), named and opened in the
visual editor; messages beside their fields, CSRF, and the template is the workspace's own."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
from PIL import Image
from uipages import SQLITE, csrf, errors, signed_in

from webapp.extensions import db
from webapp.models import Asset, Template, TemplateVersion


def new(client, **fields):
    data = {"csrf_token": csrf(client, "/templates/new"), "start": "blank", "preset": "social",
            "width": "", "height": "", "name": "Launch card", **fields}
    return client.post("/templates/new", data=data)


def created_id(answer) -> int:
    assert answer.status_code == 302, errors(answer)
    found = re.fullmatch(r"/templates/(\d+)/edit", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return int(found.group(1))


def content(app, tid: int) -> dict:
    with app.app_context():
        version = db.session.scalar(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid, TemplateVersion.version == 1))
        return json.loads(version.content)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def picture(client, tid: int) -> Image.Image:
    answer = client.get(f"/templates/{tid}/preview")
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.data))


@SQLITE
def test_the_empty_gallery_points_to_a_new_template_first(app):
    client = signed_in(app)
    gallery = html.unescape(client.get("/templates").text)
    empty = gallery[gallery.index('<div class="empty">'):]
    assert "No templates yet" in empty
    # the empty state's first action is the new template, before any upload
    assert re.search(r'<a class="button primary" href="/templates/new">New template</a>', empty)
    assert empty.index("/templates/new") < empty.index('id="upload"')
    page = client.get("/templates/new")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'name="csrf_token"' in text
    for label in ("Blank card", "Product card", "Hello, world", "Social card · 1200×630",
                  "Square · 1080×1080", "Story · 1080×1920", "Custom size"):
        assert label in text
    assert re.search(r'<input checked id="start-0" name="start" type="radio" value="blank">',
                     text)
    assert client.get("/templates/new?start=world").text.count('checked id="start-2"') == 1


@SQLITE
@pytest.mark.parametrize(("preset", "size"), [("social", (1200, 630)), ("square", (1080, 1080)),
                                              ("story", (1080, 1920))])
def test_a_blank_card_in_a_preset_size_opens_in_the_editor_with_a_picture(app, preset, size):
    client = signed_in(app)
    tid = created_id(new(client, preset=preset, name="  Launch card "))
    tpl = content(app, tid)
    assert (tpl["kind"], tpl["name"], tpl["width"], tpl["height"]) == ("layered",
                                                                     "Launch card", *size)
    assert tpl["variables"] == {"title": {"type": "text", "sample": "Your headline here"}}
    title = next(layer for layer in tpl["layers"] if layer["name"] == "title")
    assert title["type"] == "text" and title["text"] == "{{ title }}"
    assert title["x"] + title["width"] <= size[0] and title["y"] + title["height"] <= size[1]
    editor = client.get(f"/templates/{tid}/edit")
    assert editor.status_code == 200 and "Made “Launch card”" in html.unescape(editor.text)
    # something to see at once: the sample headline is drawn on the background
    image = picture(client, tid).convert("RGB")
    assert image.size == size
    assert len(image.getcolors(1 << 20)) > 50  # not a flat background
    assert picture(client, tid).tobytes() != Image.open(io.BytesIO(client.get(
        f"/templates/{tid}/preview?var.title=Other").data)).tobytes()


@SQLITE
def test_a_blank_card_of_a_custom_size(app):
    client = signed_in(app)
    tid = created_id(new(client, preset="custom", width="300", height="200"))
    assert picture(client, tid).size == (300, 200)
    tiny = created_id(new(client, preset="custom", width="1", height="1", name="Dot"))
    assert picture(client, tiny).size == (1, 1)
    # a custom size left over from another choice does not matter to a preset
    tid = created_id(new(client, preset="square", width="abc", height="-4"))
    assert picture(client, tid).size == (1080, 1080)


@SQLITE
@pytest.mark.parametrize(("fields", "expected"), [
    ({"name": "  "}, ["Give the template a name."]),
    ({"name": "x" * 201}, ["Field cannot be longer than 200 characters."]),
    ({"preset": "custom"}, ["Enter a size from 1 to 8,000 px."] * 2),
    ({"preset": "custom", "width": "8001", "height": "0"},
     ["Must be from 1 to 8,000 px (this server's limit)."] * 2),
    ({"preset": "custom", "width": "wide", "height": "6.5"},
     ["Enter a whole number of pixels."] * 2),
    ({"preset": "huge"}, ["Not a valid choice."]),
    ({"start": "certificate"}, ["Not a valid choice."]),
])
def test_mistakes_are_shown_beside_their_fields_and_nothing_is_made(app, fields, expected):
    client = signed_in(app)
    answer = new(client, **fields)
    assert answer.status_code == 422
    assert errors(answer) == expected
    assert count(app, Template) == 0


@SQLITE
@pytest.mark.parametrize("settings", [{"MAX_CANVAS": 1500}])
def test_sizes_follow_the_servers_canvas_limit(app):
    client = signed_in(app)
    answer = new(client, preset="story")
    assert answer.status_code == 422
    assert errors(answer) == ["Larger than this server's limit of 1,500 px a side; pick another "
                              "size or a custom one."]
    assert "Up to 1,500 px a side" in html.unescape(answer.text)
    answer = new(client, preset="custom", width="1501", height="100")
    assert errors(answer) == ["Must be from 1 to 1,500 px (this server's limit)."]
    assert count(app, Template) == 0
    tid = created_id(new(client, preset="custom", width="1500", height="100"))
    assert picture(client, tid).size == (1500, 100)
    assert created_id(new(client, preset="social"))


@SQLITE
def test_the_product_card_starter_brings_its_pictures(app):
    client = signed_in(app)
    tid = created_id(new(client, start="card", name="Shop card", preset="custom"))
    tpl = content(app, tid)
    assert tpl["name"] == "Shop card" and tpl["width"] == 1200 and set(tpl["sizes"]) == {
        "story", "square"}
    with app.app_context():
        assets = {a.name: a.content_type for a in db.session.scalars(db.select(Asset))}
    assert assets == {"photo.jpg": "image/jpeg", "logo.png": "image/png"}
    assert picture(client, tid).size == (1200, 630)  # the pictures it names are found
    assert client.get(f"/templates/{tid}/preview?size=story").status_code == 200
    # a second one does not add them again
    created_id(new(client, start="card", name="Shop card 2"))
    assert count(app, Asset) == 2


@SQLITE
def test_a_starter_keeps_a_picture_of_the_workspace_by_the_same_name(app):
    client = signed_in(app)
    red = io.BytesIO()
    Image.new("RGB", (8, 8), "#ff0000").save(red, "PNG")
    with app.app_context():
        from webapp.models import User

        user = db.session.scalar(db.select(User))
        db.session.add(Asset(workspace_id=user.workspace.id, name="photo.jpg", kind="image",
                             content_type="image/png", size=len(red.getvalue()),
                             sha256="0" * 64))
        db.session.commit()
    created_id(new(client, start="card", name="Shop card"))
    with app.app_context():
        photo = db.session.scalar(db.select(Asset).where(Asset.name == "photo.jpg"))
        assert photo.sha256 == "0" * 64 and count(app, Asset) == 2


@SQLITE
def test_the_hello_world_starter(app):
    client = signed_in(app)
    tid = created_id(new(client, start="world", name="Scripts"))
    tpl = content(app, tid)
    assert tpl["name"] == "Scripts" and tpl["variables"]["greeting"]["sample"] == "Hello"
    assert picture(client, tid).size == (1200, 630)
    assert count(app, Asset) == 0


@SQLITE
def test_the_form_needs_its_csrf_token(app):
    client = signed_in(app)
    for token in (None, "forged"):
        data = {"start": "blank", "preset": "social", "name": "Launch card"}
        if token:
            data["csrf_token"] = token
        answer = client.post("/templates/new", data=data,
                             headers={"Referer": "http://localhost/templates/new"})
        assert answer.status_code == 302 and answer.headers["Location"] == "/templates/new"
        assert "The form had expired" in client.get("/templates/new").text
    assert count(app, Template) == 0


@SQLITE
def test_the_new_template_is_the_workspaces_own(app):
    anonymous = app.test_client()
    assert anonymous.get("/templates/new").headers["Location"].startswith("/login")
    maya = signed_in(app)
    tid = created_id(new(maya, name="Maya's card"))
    ada = signed_in(app, "ada@example.com")
    with app.app_context():
        row = db.session.get(Template, tid)
        from webapp.models import User

        owner = db.session.scalar(db.select(User).where(User.email == "maya@example.com"))
        assert row.workspace_id == owner.workspace.id
    assert "Maya's card" not in html.unescape(ada.get("/templates").text)
    for path in (f"/templates/{tid}", f"/templates/{tid}/edit", f"/templates/{tid}/preview"):
        assert ada.get(path).status_code == 404
    theirs = created_id(new(ada, name="Ada's card"))
    assert theirs != tid and "Ada's card" not in html.unescape(maya.get("/templates").text)
