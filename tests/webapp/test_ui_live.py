"""The live banner pages (SPEC 8, 10) through Flask's test client: a banner made from pushed
data or from a JSON feed on loopback, its embed snippet, data and push URLs, the polled state,
pushing and changing it, the domain's complaints beside their fields, CSRF, and another
workspace's banners answering 404."""

from __future__ import annotations

import html
import io
import json
import re

from helpers import open_image
from samples import PRICE_CARD
from uipages import SQLITE, csrf, errors, flashes, signed_in, text, upload

from webapp.extensions import db
from webapp.models import LiveBanner


def template_of(client, content: dict = PRICE_CARD) -> int:
    created = upload(client, json.dumps(content).encode(), "card.json")
    assert created.status_code == 302
    return int(created.headers["Location"].rsplit("/", 1)[1])


def json_source(client, feed, name: str = "Feed", **config) -> int:
    token = csrf(client, "/sources/new/json_http")
    made = client.post("/sources/new/json_http", data={
        "csrf_token": token, "name": name, "url": feed.url(), "method": "GET",
        "select": "product", "refresh_seconds": "30", "timeout_seconds": "5", **config})
    assert made.status_code == 302, errors(made)
    return int(made.headers["Location"].split("/")[2].split("?")[0])


def create(client, template: int, source: int | str = "", **fields):
    token = csrf(client, f"/banners/new?template={template}&source={source}")
    return client.post("/banners/new", data={"csrf_token": token, "template": template,
                                             "source": source, "format": "png", **fields})


def banner_id(answer) -> int:
    assert answer.status_code == 302, errors(answer) or text(answer)[-2000:]
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def banners(app) -> list[LiveBanner]:
    with app.app_context():
        return list(db.session.scalars(db.select(LiveBanner)))


@SQLITE
def test_the_pages_explain_what_to_do_first(app):
    client = signed_in(app)
    page = text(client.get("/banners"))
    assert 'class="empty"' in page and "No live banners yet" in page
    assert 'href="/banners" aria-current="page"' in page and "Live banners" in page
    assert "First a template" in text(client.get("/banners/new"))
    template_of(client)
    step = text(client.get("/banners/new"))
    assert 'name="template"' in step and "— none: data pushed to it —" in step
    assert "/sources/new/json_http" in step  # no JSON source yet: how to add one


def test_a_banner_from_pushed_data_shows_its_picture_and_takes_pushes(app):
    client = signed_in(app)
    tpl = template_of(client)
    step = text(client.get(f"/banners/new?template={tpl}&source="))
    assert 'name="map.title"' in step and 'name="map.price"' in step
    assert 'id="values" name="values"' in step
    made = create(client, tpl, name="Deal of the day",
                  values=json.dumps({"Title": "Mug", "price": 12}))
    bid = banner_id(made)
    page = text(client.get(f"/banners/{bid}"))
    (banner,) = banners(app)
    url = f"{app.config['PUBLIC_URL']}/live/{banner.slug}.png"
    assert f'<img src="{url}" alt="Deal of the day">' in page  # the embed snippet
    assert f"/live/{banner.slug}/data" in page and f"/hooks/in/{banner.inbound_token}" in page
    assert "curl -X POST" in page and '"Title": "Mug"' in page
    assert banner.data == {"Title": "Mug", "price": 12} and banner.mapping == {}
    with client.get(f"/live/{banner.slug}.png") as picture:
        assert picture.status_code == 200 and open_image(picture.data).size == (160, 80)
    state = client.get(f"/banners/{bid}/status.json").get_json()
    assert state["status"] == "ok" and state["picture"].endswith(f"{banner.render_key}.png")
    assert state["fields"]["origin"] == "pushed"
    assert state["fields"]["next"] == "when data is pushed"
    listed = text(client.get("/banners"))
    assert "Deal of the day" in listed and state["picture"] in listed and "pushed" in listed
    token = csrf(client, f"/banners/{bid}")
    pushed = client.post(f"/banners/{bid}/data", data={
        "csrf_token": token, "values": json.dumps({"title": "Cap", "price": 9})})
    assert pushed.status_code == 302
    assert "Pushed: the banner shows the new data." in flashes(client.get(f"/banners/{bid}"))
    after = client.get(f"/banners/{bid}/status.json").get_json()
    assert after["picture"] != state["picture"] and '"title": "Cap"' in after["data"]
    assert [b["id"] for b in client.get("/banners/status.json").get_json()["banners"]] == [bid]


@SQLITE
def test_the_mapping_shows_the_auto_mapped_keys_of_a_json_source(app, feed):
    feed.set({"product": {"name": "Mug", "price": {"amount": 12, "currency": "EUR"}}})
    client = signed_in(app)
    tpl = template_of(client)
    source = json_source(client, feed)
    step = text(client.get(f"/banners/new?template={tpl}&source={source}"))
    assert "What the source gives now" in step and "<code>price.amount</code>" in step
    assert '<option value="price.amount">' in step  # offered for each variable
    assert 'id="values"' not in step  # the data comes from the source
    made = create(client, tpl, source, **{"map.title": "name", "map.price": "price.amount",
                                          "refresh_seconds": "45"})
    bid = banner_id(made)
    (banner,) = banners(app)
    assert banner.mapping == {"title": "name", "price": "price.amount"}
    assert banner.refresh_seconds == 45 and banner.data_origin == "source"
    state = client.get(f"/banners/{bid}/status.json").get_json()
    assert state["fields"]["origin"] == "from the source" and state["fields"]["next"] != "—"
    # the source fails: the last picture stays and the error is shown
    feed.set_raw(b"down for maintenance", "text/plain", 503)
    with app.app_context():
        from webapp import live

        row = db.session.get(LiveBanner, bid)
        row.next_refresh_at = None
        db.session.commit()
        assert live.refresh(bid).startswith("error")
    state = client.get(f"/banners/{bid}/status.json").get_json()
    assert state["status"] == "error" and "answered 503" in state["error"]
    assert state["picture"].endswith(f"{banner.render_key}.png")
    listed = text(client.get("/banners"))
    assert "badge-error" in listed and "answered 503" in listed


@SQLITE
def test_a_source_that_fails_or_selects_nothing_is_shown_and_nothing_is_made(app, feed):
    feed.set({"items": []})
    client = signed_in(app)
    tpl = template_of(client)
    source = json_source(client, feed)
    step = text(client.get(f"/banners/new?template={tpl}&source={source}"))
    assert "The source could not be read: config.select: 'product' selects nothing" in step
    refused = create(client, tpl, source)
    assert refused.status_code == 422
    assert "selects nothing in the answer (its top-level keys are: items)" in text(refused)
    unreachable = json_source(client, feed, name="Closed", url="http://127.0.0.1:9/feed")
    refused = create(client, tpl, unreachable)
    assert refused.status_code == 422 and "The source could not be read" in text(refused)
    sheet = client.post("/sources/new/file", content_type="multipart/form-data", data={
        "csrf_token": csrf(client, "/sources/new/file"),
        "file": (io.BytesIO(b"title\nMug\n"), "rows.csv")})
    csv_source = int(sheet.headers["Location"].split("/")[2].split("?")[0])
    wrong = client.get(f"/banners/new?template={tpl}&source={csv_source}")
    assert wrong.status_code == 422 and "is not a JSON/HTTP source" in text(wrong)
    assert banners(app) == []


@SQLITE
def test_mistakes_are_shown_beside_their_fields(app, feed):
    client = signed_in(app)
    tpl = template_of(client)
    broken = create(client, tpl, values="{not json")
    assert broken.status_code == 422 and errors(broken)[0].startswith("Not valid JSON")
    listed = create(client, tpl, values="[1, 2]")
    assert errors(listed) == ['Give one JSON object, like {"title": "Hello"}.']
    missing = create(client, tpl, values=json.dumps({"title": "Mug"}),
                     **{"map.title": "headline"})
    assert missing.status_code == 422
    assert errors(missing) == ["The data has no key 'headline' (its keys: title)"]
    assert 'id="map-title" name="map.title" value="headline"' in missing.text
    feed.set({"product": {"title": "Mug"}})
    source = json_source(client, feed)
    slow = create(client, tpl, source, refresh_seconds="0")
    assert errors(slow) == ["Number must be between 1 and 86400."]
    assert banners(app) == []


@SQLITE
def test_a_banner_is_changed_and_deleted(app):
    client = signed_in(app)
    tpl = template_of(client)
    bid = banner_id(create(client, tpl, values=json.dumps({"headline": "Mug", "price": 3})))
    form = text(client.get(f"/banners/{bid}/edit"))
    assert 'placeholder="auto: price"' in form  # keys of the data it shows
    token = csrf(client, f"/banners/{bid}/edit")
    wrong = client.post(f"/banners/{bid}/edit", data={"csrf_token": token, "name": "X",
                                                      "map.title": "nope"})
    assert wrong.status_code == 422 and errors(wrong)[0].startswith("The data has no key 'nope'")
    (banner,) = banners(app)
    assert banner.mapping == {} and banner.name is None  # nothing changed
    saved = client.post(f"/banners/{bid}/edit", data={
        "csrf_token": token, "name": "Price tag", "map.title": "headline",
        "refresh_seconds": "120"})
    assert saved.status_code == 302
    (changed,) = banners(app)
    assert changed.mapping == {"title": "headline"} and changed.refresh_seconds == 120
    assert changed.render_key != banner.render_key  # the title now shows "Mug"
    bad_push = client.post(f"/banners/{bid}/data", data={"csrf_token": token,
                                                        "values": json.dumps({"x": 1})})
    assert bad_push.status_code == 422
    assert errors(bad_push) == ["Mapping.title: the data has no key 'headline' (its keys: x)"]
    gone = client.post(f"/banners/{bid}/delete", data={"csrf_token": token})
    assert gone.status_code == 302 and banners(app) == []
    assert client.get(f"/live/{banner.slug}.png").status_code == 404


@SQLITE
def test_forms_need_a_csrf_token(app):
    client = signed_in(app)
    tpl = template_of(client)
    refused = client.post("/banners/new", data={"template": tpl, "source": "", "format": "png"},
                          headers={"Referer": f"http://localhost/banners/new?template={tpl}"})
    assert refused.status_code == 302 and banners(app) == []
    bid = banner_id(create(client, tpl, values=json.dumps({"title": "Mug"})))
    for path, data in ((f"/banners/{bid}/data", {"values": '{"title": "Cap"}'}),
                       (f"/banners/{bid}/delete", {}),
                       (f"/banners/{bid}/edit", {"name": "Forged"})):
        answer = client.post(path, data={**data, "csrf_token": "forged"})
        assert answer.status_code == 302, path
    (banner,) = banners(app)
    assert banner.data == {"title": "Mug"} and banner.name is None


def test_another_workspaces_banners_answer_404(app):
    owner = signed_in(app, "owner@example.com")
    tpl = template_of(owner)
    bid = banner_id(create(owner, tpl, values=json.dumps({"title": "Mug"})))
    pages = [f"/banners/{bid}", f"/banners/{bid}/edit", f"/banners/new?template={tpl}"]
    for path in pages:
        assert owner.get(path).status_code == 200, path
    intruder = signed_in(app, "mallory@example.org")
    for path in pages:
        answer = intruder.get(path)
        assert answer.status_code == 404, path
        assert "belongs to another workspace" in text(answer)
    assert intruder.get(f"/banners/{bid}/status.json").status_code == 404
    assert intruder.get("/banners/status.json").get_json() == {"banners": []}
    assert "No live banners yet" in text(intruder.get("/banners"))
    token = csrf(intruder, "/")
    for path in (f"/banners/{bid}/data", f"/banners/{bid}/edit", f"/banners/{bid}/delete"):
        answer = intruder.post(path, data={"csrf_token": token, "values": '{"title": "X"}'})
        assert answer.status_code == 404, path
    made = intruder.post("/banners/new", data={"csrf_token": token, "template": tpl,
                                               "source": "", "format": "png"})
    assert made.status_code == 404
    (banner,) = banners(app)
    assert banner.data == {"title": "Mug"}
    assert re.search(r"badge-ok", owner.get(f"/banners/{bid}").text)
    assert html.unescape(owner.get(f"/banners/{bid}").text).count("<img") >= 1
