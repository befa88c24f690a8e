"""The web UI's areas through the Flask test client: uploads of the right and wrong kind and
size, forms with messages beside their fields, keys shown once, and another workspace's
objects answering 404 on every page."""

from __future__ import annotations

import io
import json
import re

import pytest
from samples import HEADLINE, PRICE_CARD
from uipages import SQLITE, csrf, errors, flashes, signed_in, text, upload

from connectors.registry import connector_types
from webapp.api.sources import settings
from webapp.extensions import db
from webapp.models import ApiKey, Binding, Hook, Source, Template

CSV = b"title,price\nMug,12\nTee,25\n"


def make_world(client) -> dict[str, int]:
    """A template, a CSV source, a binding, a key and a hook, made through the UI."""
    created = upload(client, json.dumps(PRICE_CARD).encode(), "card.json")
    template = int(created.headers["Location"].rsplit("/", 1)[1])
    source = client.post("/sources/new/file", content_type="multipart/form-data", data={
        "csrf_token": csrf(client, "/sources/new/file"), "file": (io.BytesIO(CSV), "rows.csv")})
    source_id = int(source.headers["Location"].split("/")[2].split("?")[0])
    token = csrf(client, f"/bindings/new?template={template}&source={source_id}")
    bound = client.post("/bindings/new", data={
        "csrf_token": token, "template": template, "source": source_id, "url_column": "Image",
        "status_column": "Status", "thumbnail_column": "", "key_column": "",
        "filter_column": "", "format": "png", "size": "", "poll_seconds": "0"})
    assert bound.status_code == 302, errors(bound)
    client.post("/keys", data={"csrf_token": token, "name": "Zapier", "scopes": ["render"],
                               "expires": "never"})
    client.post("/webhooks", data={"csrf_token": token, "event": "render.completed",
                                   "target_url": "http://127.0.0.1:9/hook", "template": ""})
    binding = int(bound.headers["Location"].rsplit("/", 1)[1])
    return {"template": template, "source": source_id, "binding": binding}


@SQLITE
def test_a_json_template_upload_previews_duplicates_and_keeps_versions(app):
    client = signed_in(app)
    assert "No templates yet" in client.get("/templates").text
    created = upload(client, json.dumps(HEADLINE).encode(), "headline.json")
    assert created.status_code == 302
    detail = client.get(created.headers["Location"])
    assert "Headline" in detail.text and 'name="var.title"' in detail.text
    tid = int(created.headers["Location"].rsplit("/", 1)[1])
    picture = client.get(f"/templates/{tid}/preview?var.title=Hi&size=wide")
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    assert picture.headers["Cache-Control"] == "private, no-store"
    thumb = client.get(f"/templates/{tid}/thumbnail.webp?v=1")
    assert thumb.mimetype == "image/webp" and thumb.data[:4] == b"RIFF"
    token = csrf(client, f"/templates/{tid}")
    changed = {**HEADLINE, "background": "#000000"}
    client.post(f"/templates/{tid}/content", data={"csrf_token": token,
                                                    "content": json.dumps(changed)})
    assert "Saved as version 2" in text(client.get(f"/templates/{tid}"))
    client.post(f"/templates/{tid}/versions/1/restore", data={"csrf_token": token})
    assert "Version 1 is now version 3" in text(client.get(f"/templates/{tid}"))
    assert json.loads(client.get(f"/templates/{tid}/versions/2.json").data)["background"] \
        == "#000000"
    copy = client.post(f"/templates/{tid}/duplicate", data={"csrf_token": token})
    assert "Headline (copy)" in text(client.get(copy.headers["Location"]))
    broken = client.post(f"/templates/{tid}/content", data={"csrf_token": token,
                                                             "content": '{"layers": 1}'})
    assert broken.status_code == 302
    assert any("Not saved" in m for m in flashes(client.get(broken.headers["Location"])))


@SQLITE
def test_template_uploads_of_the_wrong_kind_or_size_are_refused_beside_the_field(app):
    client = signed_in(app)
    wrong_type = upload(client, b"GIF89a", "picture.gif")
    assert wrong_type.status_code == 422
    assert errors(wrong_type) == ["Upload a .json template or an .html file."]
    malformed = upload(client, b'{"name": "x",', "broken.json")
    assert malformed.status_code == 422 and errors(malformed)[0].startswith("Malformed JSON")
    invalid = upload(client, json.dumps({**HEADLINE, "width": -5}).encode(), "bad.json")
    assert invalid.status_code == 422 and "(at width)" in errors(invalid)[0]
    app.config["UI_MAX_TEMPLATE_BYTES"] = 100
    big = upload(client, json.dumps(HEADLINE).encode(), "big.json")
    assert errors(big) == ["The file is larger than the limit of 0 KB."]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    huge = upload(client, b" " * 5000, "huge.json")
    assert huge.status_code == 302  # back to the page, with a message
    assert any("larger than the limit" in m for m in flashes(client.get("/templates")))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Template)) == 0


@SQLITE
def test_an_html_template_upload_takes_the_size_given(app):
    client = signed_in(app)
    page = upload(client, b"<h1>{{ title }}</h1>", "poster.html", width="300", height="200")
    detail = text(client.get(page.headers["Location"]))
    assert "html template · 300×200 px" in detail


@SQLITE
def test_every_connector_type_gets_a_form_from_its_schema(app):
    client = signed_in(app)
    with app.app_context():
        types = connector_types(settings())
    page = text(client.get("/sources"))
    for kind in types:
        assert f"/sources/new/{kind['type']}" in page
        form = client.get(f"/sources/new/{kind['type']}")
        assert form.status_code == 200
        for name, prop in kind["schema"]["properties"].items():
            if not prop.get("readOnly"):
                assert f'name="{name}"' in form.text, (kind["type"], name)
    assert client.get("/sources/new/nothing").status_code == 404


@SQLITE
def test_a_source_form_shows_the_connectors_own_complaint_beside_the_field(app):
    client = signed_in(app)
    token = csrf(client, "/sources/new/google_sheets")
    empty = client.post("/sources/new/google_sheets", data={"csrf_token": token, "name": ""})
    assert empty.status_code == 422
    assert errors(empty) == ["Name the source.", "Spreadsheet is required."]
    wrong = client.post("/sources/new/google_sheets", data={
        "csrf_token": token, "name": "Sheet", "spreadsheet": "not a sheet",
        "header_row": "1", "auth": "service_account"})
    assert wrong.status_code == 422
    assert errors(wrong)[0].startswith("'not a sheet' is neither a Google Sheets URL")


@SQLITE
def test_a_csv_source_previews_its_rows_and_wrong_files_are_refused(app):
    client = signed_in(app)
    token = csrf(client, "/sources/new/file")
    wrong = client.post("/sources/new/file", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(b"x"), "rows.pdf")})
    assert errors(wrong) == ["Upload a .csv or .xlsx file."]
    empty = client.post("/sources/new/file", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(b"\n\n"), "rows.csv")})
    assert empty.status_code == 422 and errors(empty)
    made = client.post("/sources/new/file", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(CSV), "rows.csv"), "name": "Rows"})
    detail = text(client.get(made.headers["Location"]))
    assert "Connected." in detail and "2 rows with data" in detail
    assert re.search(r"<td>2</td><td>Mug</td><td>12</td>", detail)


@SQLITE
def test_a_binding_is_auto_mapped_and_refuses_an_output_that_is_an_input(app):
    client = signed_in(app)
    world = make_world(client)
    form = client.get(f"/bindings/new?template={world['template']}&source={world['source']}")
    assert re.search(r'name="map.title">\s*<option value="">— not mapped —</option>\s*'
                     r'<option value="title" selected>', form.text)
    token = csrf(client, "/bindings")
    fields = {"csrf_token": token, "template": world["template"], "source": world["source"],
              "url_column": "Image", "status_column": "", "thumbnail_column": "",
              "key_column": "", "filter_column": "", "format": "png", "size": "",
              "poll_seconds": "10"}
    often = client.post("/bindings/new", data=fields)
    assert often.status_code == 422 and errors(often) == [
        "At least 30 seconds (Google allows about 60 requests a minute), or 0 for no polling."]
    clash = client.post("/bindings/new", data={**fields, "url_column": "title",
                                                "poll_seconds": "0"})
    assert clash.status_code == 422 and errors(clash) == [
        "Column 'title' is read by the binding; the picture's URL needs a column of its own"]
    detail = client.get(f"/bindings/{world['binding']}")
    assert "Not synced yet" in detail.text and "/hooks/in/" in detail.text
    assert client.get(f"/bindings/{world['binding']}/progress.json").json["state"] == "idle"


@SQLITE
def test_a_new_key_is_shown_once_works_and_can_be_revoked(app, live):
    import requests

    client = signed_in(app)
    token = csrf(client, "/keys")
    bad = client.post("/keys", data={"csrf_token": token, "name": "", "expires": "date",
                                     "expires_on": "2001-01-01"})
    assert errors(bad) == ["Name the key after where it is used.", "Pick at least one scope.",
                           "Pick a day after today."]
    made = client.post("/keys", data={"csrf_token": token, "name": "Zapier",
                                      "scopes": ["render", "sources"], "expires": "30"})
    assert made.status_code == 302
    shown = client.get("/keys")
    key = re.search(r'value="(pm_[^"]+)"', shown.text).group(1)
    assert shown.headers["Cache-Control"] == "no-store"
    assert "pm_" not in client.get("/keys").text.split("<table>")[0]  # once only
    me = requests.get(f"{live.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["key"]["scopes"] == ["render", "sources"]
    with app.app_context():
        key_id = db.session.scalar(db.select(ApiKey.id))
    client.post(f"/keys/{key_id}/revoke", data={"csrf_token": token})
    assert "revoked" in client.get("/keys").text
    again = requests.get(f"{live.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 401


@SQLITE
def test_a_webhook_to_a_refused_address_is_explained(app):
    client = signed_in(app)
    token = csrf(client, "/webhooks")
    refused = client.post("/webhooks", data={"csrf_token": token, "event": "batch.completed",
                                             "target_url": "http://169.254.169.254/x",
                                             "template": ""})
    assert refused.status_code == 422 and errors(refused)
    made = client.post("/webhooks", data={"csrf_token": token, "event": "batch.completed",
                                          "target_url": "http://127.0.0.1:9/x", "template": ""})
    assert made.status_code == 302
    assert re.search(r'value="whsec_[^"]+"', client.get("/webhooks").text)


def test_another_workspaces_objects_answer_404(app):
    owner = signed_in(app, "owner@example.com")
    world = make_world(owner)
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey.id))
        hook = db.session.scalar(db.select(Hook.id))
        assert db.session.get(Binding, world["binding"]) is not None
        assert db.session.get(Source, world["source"]) is not None
    t, s, b = world["template"], world["source"], world["binding"]
    pages = [f"/templates/{t}", f"/templates/{t}/preview", f"/templates/{t}/thumbnail.webp",
             f"/templates/{t}/versions/1.json", f"/sources/{s}", f"/sources/{s}/file",
             f"/bindings/{b}", f"/bindings/{b}/edit",
             f"/bindings/new?template={t}", f"/webhooks/{hook}"]
    posts = [f"/templates/{t}/duplicate", f"/templates/{t}/delete", f"/sources/{s}/delete",
             f"/bindings/{b}/sync", f"/bindings/{b}/delete", f"/keys/{key}/revoke",
             f"/webhooks/{hook}/delete"]
    for path in pages:
        assert owner.get(path).status_code == 200, path  # they exist
    intruder = signed_in(app, "mallory@example.org")
    for path in pages:
        answer = intruder.get(path)
        assert answer.status_code == 404, path
        assert "belongs to another workspace" in text(answer)
    assert intruder.get(f"/bindings/{b}/progress.json").status_code == 404
    assert intruder.get(f"/sources/{s}/edit").status_code == 404
    token = csrf(intruder, "/")
    for path in posts:
        assert intruder.post(path, data={"csrf_token": token}).status_code == 404, path
    assert owner.get(f"/templates/{t}").status_code == 200  # nothing was touched


@pytest.mark.parametrize("path", ["/", "/templates", "/sources", "/bindings", "/bindings/new",
                                  "/batches", "/keys", "/webhooks", "/usage"])
@SQLITE
def test_every_area_has_an_empty_state(app, path):
    client = signed_in(app, "new@example.com")
    page = client.get(path)
    assert page.status_code == 200
    assert 'class="empty"' in page.text or "Getting started" in page.text
