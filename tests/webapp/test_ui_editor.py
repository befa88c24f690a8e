"""The visual editor's server side: its page, the preview of an unsaved template (the canvas),
saving as a new version, CSRF, other workspaces' templates, and templates the renderer refuses
(the answer names the path at fault and nothing is saved)."""

from __future__ import annotations

import html
import io
import json
import re

import requests
from PIL import Image
from samples import HEADLINE, PRICE_CARD
from test_ui_pages import make_world
from uipages import SQLITE, csrf, flashes, signed_in, upload

from webapp.extensions import db
from webapp.models import Template, TemplateVersion


def create(client, content: dict) -> int:
    created = upload(client, json.dumps(content).encode(), "template.json")
    assert created.status_code == 302, created.text
    return int(created.headers["Location"].rsplit("/", 1)[1])


def post_json(client, path: str, body: dict, token: str | None):
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["X-CSRFToken"] = token
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       headers=headers)


def config_of(page) -> dict:
    found = re.search(r'<script type="application/json" id="editor-config">(.*?)</script>',
                      page.text, re.S)
    return json.loads(found.group(1))


def versions(app, tid: int) -> list[TemplateVersion]:
    with app.app_context():
        return list(db.session.scalars(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid).order_by(TemplateVersion.version)))


@SQLITE
def test_the_editor_page_carries_the_template_and_the_gallery_links_to_it(app):
    client = signed_in(app)
    tid = create(client, HEADLINE)
    assert f'href="/templates/{tid}/edit"' in client.get("/templates").text
    assert f'href="/templates/{tid}/edit"' in client.get(f"/templates/{tid}").text
    page = client.get(f"/templates/{tid}/edit")
    assert page.status_code == 200 and "editor.js" in page.text
    config = config_of(page)
    assert config["template"] == HEADLINE and config["version"] == 1
    assert config["variables"] == ["title"] and "Noto Sans" in config["fonts"]
    # the properties panel is drawn from the renderer's own model of the format
    text = dict(config["props"]["types"]["text"])
    assert text["fit"]["choices"] == ["shrink", "truncate", "overflow"]
    assert [name for name, _ in config["props"]["common"]][:4] == ["x", "y", "width", "height"]
    assert dict(config["props"]["common"])["width"]["required"] is True
    # without JavaScript: the picture and the JSON to change by hand
    assert 'name="content"' in page.text and f"/templates/{tid}/preview" in page.text


@SQLITE
def test_the_preview_renders_the_unsaved_template_and_answers_repeats_from_its_cache(app):
    client = signed_in(app)
    tid = create(client, HEADLINE)
    token = csrf(client, f"/templates/{tid}/edit")
    moved = json.loads(json.dumps(HEADLINE))
    moved["layers"][0].update({"x": 0, "y": 0, "width": 40, "height": 40, "fill": "#00ff00"})
    answer = post_json(client, f"/templates/{tid}/edit/preview",
                       {"template": moved, "variables": {"title": "Hi"}}, token)
    assert answer.status_code == 200 and answer.mimetype == "image/png", answer.text
    assert answer.headers["Pixelmerge-Preview-Cache"] == "miss"
    image = Image.open(io.BytesIO(answer.data)).convert("RGB")
    assert image.size == (160, 80) and image.getpixel((20, 20)) == (0, 255, 0)
    again = post_json(client, f"/templates/{tid}/edit/preview",
                      {"template": moved, "variables": {"title": "Hi"}}, token)
    assert again.headers["Pixelmerge-Preview-Cache"] == "hit" and again.data == answer.data
    assert again.headers["ETag"] == answer.headers["ETag"]
    other = post_json(client, f"/templates/{tid}/edit/preview",
                      {"template": moved, "variables": {"title": "Other"}}, token)
    assert other.headers["Pixelmerge-Preview-Cache"] == "miss" and other.data != answer.data
    wide = post_json(client, f"/templates/{tid}/edit/preview",
                     {"template": moved, "variables": {}, "size": "wide"}, token)
    assert Image.open(io.BytesIO(wide.data)).size == (320, 80)
    unknown = post_json(client, f"/templates/{tid}/edit/preview",
                        {"template": moved, "size": "poster"}, token)
    assert unknown.status_code == 422 and unknown.json["error"]["details"]["path"] == "size"
    assert len(versions(app, tid)) == 1  # a preview saves nothing


@SQLITE
def test_a_broken_expression_is_named_by_its_path_and_never_saved(app):
    client = signed_in(app)
    tid = create(client, HEADLINE)
    token = csrf(client, f"/templates/{tid}/edit")
    broken = json.loads(json.dumps(HEADLINE))
    broken["layers"][1]["text"] = "{{ title | }}"
    preview = post_json(client, f"/templates/{tid}/edit/preview", {"template": broken}, token)
    assert preview.status_code == 422
    error = preview.json["error"]
    assert error["details"]["path"] == "layers[1].text"
    assert error["message"].startswith("layers[1].text: syntax error")
    saved = post_json(client, f"/templates/{tid}/edit/save", {"template": broken}, token)
    assert saved.status_code == 422 and saved.json["error"]["details"]["path"] == \
        "layers[1].text"
    bad_size = json.loads(json.dumps(HEADLINE))
    bad_size["sizes"]["wide"]["layers"]["bar"]["width"] = "wide"
    refused = post_json(client, f"/templates/{tid}/edit/save", {"template": bad_size}, token)
    assert refused.status_code == 422
    assert refused.json["error"]["details"]["path"].startswith("sizes.wide.layers.bar")
    # the page's plain form (no JavaScript) is refused the same way, with the message
    form = client.post(f"/templates/{tid}/edit/save", data={
        "csrf_token": token, "content": json.dumps(broken)})
    assert form.status_code == 302
    shown = flashes(client.get(form.headers["Location"]))
    assert any(m.startswith("Not saved: layers[1].text: syntax error") for m in shown)
    assert len(versions(app, tid)) == 1


@SQLITE
def test_saving_creates_a_version_as_the_api_does(app, live, make_account):
    client = signed_in(app)
    key = make_account("maya@example.com")[2]  # a key of the same workspace

    def through_api() -> dict:
        return requests.get(f"{live.url}/api/v1/templates/{tid}", timeout=30,
                            headers={"Authorization": f"Bearer {key}"}).json()

    tid = create(client, HEADLINE)
    token = csrf(client, f"/templates/{tid}/edit")
    changed = json.loads(json.dumps(HEADLINE))
    changed["layers"][1].update({"x": 10, "y": 12, "width": 120, "color": "#16a34a"})
    saved = post_json(client, f"/templates/{tid}/edit/save",
                      {"template": changed, "base_version": 1}, token)
    assert saved.status_code == 200, saved.text
    assert saved.json == {"version": 2, "created": True, "message": "Saved as version 2."}
    stored = through_api()
    assert stored["version"] == 2 and stored["content"] == changed
    assert [v.version for v in versions(app, tid)] == [1, 2]
    same = post_json(client, f"/templates/{tid}/edit/save", {"template": changed}, token)
    assert same.json["created"] is False and same.json["version"] == 2
    form = client.post(f"/templates/{tid}/edit/save", data={
        "csrf_token": token, "content": json.dumps({**changed, "background": "#000000"})})
    assert "Saved as version 3." in flashes(client.get(form.headers["Location"]))
    assert through_api()["content"]["background"] == "#000000"
    # a page still on version 2 says that version 3 was saved meanwhile (and stays)
    stale = post_json(client, f"/templates/{tid}/edit/save",
                      {"template": {**changed, "background": "#111111"}, "base_version": 2},
                      token)
    assert stale.json["message"] == ("Saved as version 4. It was edited from version 2; "
                                     "version 3, saved meanwhile, stays in the history.")


@SQLITE
def test_saving_and_previewing_need_the_csrf_token(app):
    client = signed_in(app)
    tid = create(client, HEADLINE)
    changed = {**HEADLINE, "background": "#000000"}
    for path in (f"/templates/{tid}/edit/save", f"/templates/{tid}/edit/preview"):
        refused = post_json(client, path, {"template": changed}, None)
        assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf_failed"
        wrong = post_json(client, path, {"template": changed}, "not-the-token")
        assert wrong.status_code == 400
    assert len(versions(app, tid)) == 1


@SQLITE
def test_a_session_that_ended_gets_no_save_and_an_answer_the_page_understands(app):
    client = signed_in(app)
    tid = create(client, HEADLINE)
    token = csrf(client, f"/templates/{tid}/edit")
    client.post("/logout", data={"csrf_token": token})
    changed = {**HEADLINE, "background": "#000000"}
    answer = post_json(client, f"/templates/{tid}/edit/save", {"template": changed}, token)
    # the session's CSRF token went with the session, or the sign-in page answers: either
    # way the page keeps its working copy and says how to get back
    assert answer.status_code in (302, 400, 401)
    if answer.status_code == 400:
        assert answer.json["error"]["code"] == "csrf_failed"
    assert client.get(f"/templates/{tid}/edit/columns.json").status_code == 401
    page = client.get(f"/templates/{tid}/edit")
    assert page.status_code == 302 and f"next=/templates/{tid}/edit" in page.headers["Location"]
    assert len(versions(app, tid)) == 1


@SQLITE
def test_another_workspaces_template_is_not_found(app):
    owner = signed_in(app)
    tid = create(owner, HEADLINE)
    mallory = signed_in(app, "mallory@example.org")
    token = csrf(mallory, "/templates")
    assert mallory.get(f"/templates/{tid}/edit").status_code == 404
    assert mallory.get(f"/templates/{tid}/edit/columns.json").status_code == 404
    for path in (f"/templates/{tid}/edit/preview", f"/templates/{tid}/edit/save"):
        answer = post_json(mallory, path, {"template": {**HEADLINE, "name": "Mine now"}}, token)
        assert answer.status_code == 404
    with app.app_context():
        assert db.session.get(Template, tid).name == "Headline"
    assert len(versions(app, tid)) == 1


@SQLITE
def test_an_html_template_shows_its_source_and_cannot_be_saved_from_the_editor(app):
    client = signed_in(app)
    page = upload(client, b"<h1>{{ title }}</h1>", "poster.html", width="300", height="200")
    tid = int(page.headers["Location"].rsplit("/", 1)[1])
    assert f"/templates/{tid}/edit" not in client.get("/templates").text  # no Edit link
    editor = client.get(f"/templates/{tid}/edit")
    text = html.unescape(editor.text)
    assert editor.status_code == 200 and "is an HTML template" in text
    assert "<h1>{{ title }}</h1>" in text and "editor.js" not in text
    token = csrf(client, "/templates")
    layered = post_json(client, f"/templates/{tid}/edit/save", {"template": HEADLINE}, token)
    assert layered.status_code == 422 and layered.json["error"]["details"]["path"] == "kind"
    assert len(versions(app, tid)) == 1


@SQLITE
def test_the_bound_sheets_columns_are_offered_with_the_variable_that_reads_them(app):
    client = signed_in(app)
    world = make_world(client)
    tid = world["template"]
    assert config_of(client.get(f"/templates/{tid}/edit"))["bound"] is True
    found = client.get(f"/templates/{tid}/edit/columns.json").json
    pairs = {c["column"]: c["variable"] for c in found["columns"]}
    assert pairs["title"] == "title" and pairs["price"] == "price"
    lone = create(client, PRICE_CARD)
    assert config_of(client.get(f"/templates/{lone}/edit"))["bound"] is False
    assert client.get(f"/templates/{lone}/edit/columns.json").json["columns"] == []
