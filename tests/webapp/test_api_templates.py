"""``/templates``: create (JSON or an uploaded file), list, get, versions, update, delete and
preview, against the running server, with the errors a user sees."""

from __future__ import annotations

import copy
import json

from helpers import error_of, ink, open_image

RED = (220, 38, 38)
GREEN = (22, 163, 74)

BADGE = {
    "name": "Badge", "width": 240, "height": 120, "background": "#ffffff",
    "variables": {"title": {"type": "text", "sample": "Sample"}},
    "layers": [{"name": "title", "type": "text", "x": 10, "y": 10, "width": 220, "height": 100,
                "text": "{{ title }}", "size": 48, "color": "#dc2626"}],
    "sizes": {"tall": {"width": 120, "height": 240}},
}
PAGE = """<!doctype html>
<meta name="pixelmerge:size" content="300x200">
<style>body { margin: 0; background: #16a34a; }</style>
<h1>{{ title }}</h1>
"""


def create(api, content: dict) -> dict:
    response = api.post("/templates", json=content)
    assert response.status_code == 201, response.text
    return response.json()


def with_title_color(color: str) -> dict:
    content = copy.deepcopy(BADGE)
    content["layers"][0]["color"] = color
    return content


# ---------------------------------------------------------------- create, read, list

def test_create_from_json(api):
    made = create(api, BADGE)
    assert isinstance(made["id"], int)
    assert (made["version"], made["kind"], made["name"], made["public"]) == (
        1, "layered", "Badge", False)
    assert (made["width"], made["height"], made["sizes"]) == (240, 120, ["tall"])
    assert made["variables"] == BADGE["variables"]
    assert made["content"] == BADGE

    fetched = api.get(f"/templates/{made['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == made
    assert api.get(f"/templates/{made['id']}?version=1").json() == made


def test_create_by_uploading_a_file(api):
    page = api.post("/templates", files={"file": ("promo.html", PAGE.encode())})
    assert page.status_code == 201, page.text
    made = page.json()
    assert (made["kind"], made["name"]) == ("html", "promo")
    assert made["content"]["html"] == PAGE
    sized = api.post("/templates", files={"file": ("promo.html", PAGE.encode())},
                     data={"width": "640", "height": "320", "name": "Promo"})
    assert sized.status_code == 201, sized.text
    assert (sized.json()["width"], sized.json()["height"], sized.json()["name"]) == (
        640, 320, "Promo")

    preview = api.post(f"/templates/{made['id']}/preview", json={"variables": {"title": "Hi"}})
    assert preview.status_code == 200, preview.text
    image = open_image(preview.content)
    assert image.size == (300, 200)  # from the file's pixelmerge:size meta tag (docs)
    assert ink(image, GREEN) > 300 * 200 // 2

    upload = api.post("/templates", files={"file": ("badge.json", json.dumps(BADGE))},
                      data={"name": "Uploaded badge"})
    assert upload.status_code == 201, upload.text
    assert upload.json()["content"] == {**BADGE, "name": "Uploaded badge"}
    with_bom = api.post("/templates", files={"file": ("bom.json", "\ufeff" + json.dumps(BADGE))})
    assert with_bom.status_code == 201, with_bom.text  # as Windows editors save it

    other = error_of(api.post("/templates", files={"file": ("badge.txt", b"{}")}), 415)
    assert other["code"] == "unsupported_media_type"
    missing = error_of(api.post("/templates", files={"other": ("a.json", b"{}")}), 400)
    assert missing["code"] == "invalid_request" and "file" in missing["message"]
    latin1 = api.post("/templates", files={"file": ("caf\u00e9.html", "<p>caf\u00e9</p>"
                                                    .encode("latin-1"))})
    assert error_of(latin1, 400)["code"] == "invalid_request"
    broken = error_of(api.post("/templates", files={"file": ("t.json", b"{\"width\": ")}), 422)
    assert broken["code"] == "invalid_template" and "line 1" in broken["message"]


def test_list_shows_only_my_workspace(api, other_api, make_account):
    mine = [create(api, BADGE)["id"], create(api, {**BADGE, "name": "Second"})["id"]]
    theirs = create(other_api, {**BADGE, "name": "Theirs"})["id"]
    listed = api.get("/templates")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["data"]] == mine[::-1]
    assert [t["id"] for t in other_api.get("/templates").json()["data"]] == [theirs]

    _, _, read_only = make_account(scopes=["templates:read"])
    assert api.get("/templates", token=read_only).status_code == 200
    refused = error_of(api.post("/templates", json=BADGE, token=read_only), 403)
    assert refused["code"] == "insufficient_scope"
    assert error_of(api.get("/templates", token=None), 401)["code"] == "unauthorized"
    assert error_of(api.get("/templates", token="pm_nope"), 401)["code"] == "invalid_api_key"


# ---------------------------------------------------------------- versions

def test_put_saves_versions(api):
    made = create(api, BADGE)
    path = f"/templates/{made['id']}"
    green = with_title_color("#16a34a")
    saved = api.put(path, json=green)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2 and saved.json()["content"] == green

    same = api.put(path, json=green)
    assert same.status_code == 200 and same.json()["version"] == 2  # nothing changed: no v3
    invalid = api.put(path, json={**green, "width": 0})
    assert error_of(invalid, 422)["details"]["path"] == "width"

    versions = api.get(f"{path}/versions")
    assert versions.status_code == 200
    assert [v["version"] for v in versions.json()["data"]] == [2, 1]
    assert api.get(path).json()["version"] == 2
    first = api.get(f"{path}?version=1").json()
    assert first["version"] == 1 and first["content"] == BADGE
    missing = error_of(api.get(f"{path}?version=7"), 404)
    assert missing["code"] == "version_not_found"
    assert error_of(api.get(f"{path}?version=zero"), 400)["code"] == "invalid_request"

    # renders follow the current version; an older one stays renderable by number
    current = api.post("/renders", json={"template": made["id"], "variables": {"title": "A"}})
    older = api.post("/renders", json={"template": made["id"], "version": 1,
                                       "variables": {"title": "A"}})
    assert (current.json()["version"], older.json()["version"]) == (2, 1)
    assert ink(open_image(api.get(current.json()["url"]).content), GREEN) > 100
    assert ink(open_image(api.get(older.json()["url"]).content), RED) > 100


def test_delete(api):
    made = create(api, BADGE)
    path = f"/templates/{made['id']}"
    rendered = api.post("/renders", json={"template": made["id"], "variables": {"title": "A"}})
    deleted = api.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    for response in (api.get(path), api.put(path, json=BADGE), api.delete(path),
                     api.get(f"{path}/versions"), api.post(f"{path}/preview", json={}),
                     api.post("/renders", json={"template": made["id"]})):
        assert error_of(response, 404)["code"] == "template_not_found"
    assert api.get("/templates").json()["data"] == []
    assert api.get(rendered.json()["url"]).status_code == 200  # renders made stay available


# ---------------------------------------------------------------- errors

def test_bodies_that_are_not_templates(api):
    malformed = api.post("/templates", data=b'{"width": ', headers={
        "Content-Type": "application/json"})
    assert error_of(malformed, 400)["code"] == "invalid_json"
    for body in (b"[1, 2]", b'"template"', b"42"):
        response = api.post("/templates", data=body, headers={"Content-Type": "application/json"})
        assert error_of(response, 400)["code"] == "invalid_json", body
    as_text = api.post("/templates", data=json.dumps(BADGE), headers={
        "Content-Type": "text/plain"})
    assert error_of(as_text, 415)["code"] == "unsupported_media_type"

    unknown_type = copy.deepcopy(BADGE)
    unknown_type["layers"][0]["type"] = "blob"
    error = error_of(api.post("/templates", json=unknown_type), 422)
    assert error["code"] == "invalid_template"
    assert error["details"]["path"] == "layers[0].type"
    assert "layers[0].type" in error["message"] and "blob" in error["message"]

    broken = copy.deepcopy(BADGE)
    broken["layers"].append({"name": "price", "type": "text", "width": 10, "height": 10,
                             "text": "{{ price * }}"})
    error = error_of(api.post("/templates", json=broken), 422)
    assert error["code"] == "expression_error"
    assert error["details"]["path"] == "layers[1].text" and "layers[1].text" in error["message"]

    typo = {**BADGE, "widht": 10}
    assert "width" in error_of(api.post("/templates", json=typo), 422)["message"]  # did you mean
    assert api.get("/templates").json()["data"] == []  # none of these was saved


def test_bodies_over_the_limit_are_refused(api):
    limit = 10 * 1024 * 1024
    padded = b'{"name": "' + b"x" * limit + b'"}'
    big = api.post("/templates", data=padded, headers={"Content-Type": "application/json"})
    error = error_of(big, 413)
    assert error["code"] == "payload_too_large" and "10,485,760" in error["message"]
    upload = api.post("/templates", files={"file": ("big.json", padded)})
    assert error_of(upload, 413)["code"] == "payload_too_large"
    assert api.post("/templates", json=BADGE).status_code == 201  # the server is still fine


def test_another_workspace_template_is_not_found(api, other_api):
    theirs = create(other_api, BADGE)["id"]
    path = f"/templates/{theirs}"
    for response in (api.get(path), api.put(path, json=BADGE), api.delete(path),
                     api.get(f"{path}/versions"), api.post(f"{path}/preview", json={}),
                     api.post("/renders", json={"template": theirs})):
        error = error_of(response, 404)  # just like an id that does not exist
        assert error["code"] == "template_not_found"
        assert error["message"] == f"no template with id {theirs}"
    assert other_api.get(path).json()["version"] == 1  # untouched


# ---------------------------------------------------------------- preview

def test_preview_renders_without_storing(api, tmp_path):
    made = create(api, BADGE)
    path = f"/templates/{made['id']}/preview"
    sample = api.post(path, json={})
    assert sample.status_code == 200, sample.text
    assert sample.headers["Content-Type"] == "image/png"
    assert sample.headers["Cache-Control"] == "no-store"
    image = open_image(sample.content)
    assert image.size == (240, 120)
    assert ink(image, RED) > 200  # "Sample", the sample value

    titled = api.post(path, json={"variables": {"title": "A much longer title"}})
    assert ink(open_image(titled.content), RED) != ink(image, RED)
    blank = api.post(path, json={"variables": {"title": ""}})
    assert ink(open_image(blank.content), RED) == 0

    unsaved = api.post(path, json={"template": with_title_color("#16a34a")})
    assert unsaved.status_code == 200, unsaved.text
    assert ink(open_image(unsaved.content), GREEN) > 200
    assert ink(open_image(unsaved.content), RED) == 0

    jpeg = api.post(path, json={"format": "jpeg", "size": "tall", "scale": 2})
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert open_image(jpeg.content).size == (240, 480)

    invalid = api.post(path, json={"template": {**BADGE, "height": -1}})
    assert error_of(invalid, 422)["details"]["path"] == "height"
    assert error_of(api.post(path, json={"size": "wide"}), 422)["code"] == "unknown_size"

    assert api.get("/renders").json()["data"] == []
    assert api.get("/me").json()["usage"]["renders"] == 0
    storage = tmp_path / "storage"
    assert not storage.exists() or [p for p in storage.rglob("*") if p.is_file()] == []
