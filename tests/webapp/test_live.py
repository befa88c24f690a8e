"""Live banners and JSON/HTTP sources (SPEC 8) against a real server, a JSON feed on loopback
and real workers: the banner follows its feed, never makes a visitor wait, keeps its last good
picture when the source fails, and takes pushed data."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest
from apiclient import Api
from helpers import error_of, open_image
from samples import PRICE_CARD as CARD
from test_async_renders import start_worker  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def sapi(app, live, make_account) -> Api:
    _, _, token = make_account("ada@example.com", scopes=("render", "templates:read",
                                                         "templates:write", "sources"))
    return Api(live.url, token)


@pytest.fixture
def other(app, live, make_account) -> Api:
    _, _, token = make_account("mallory@example.org", scopes=("render", "templates:write",
                                                             "sources"))
    return Api(live.url, token)


def template(api: Api, data: dict = CARD) -> int:
    response = api.post("/templates", json=data)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def json_source(api: Api, feed, **config) -> dict:
    body = {"type": "json_http", "name": "Feed",
            "config": {"url": feed.url(), "select": "product", "refresh_seconds": 5, **config}}
    response = api.post("/sources", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def banner(api: Api, tpl: int, source: int | None, **extra) -> dict:
    response = api.post("/live", json={"template": tpl, "source": source, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def key_for(api: Api, tpl: int, variables: dict) -> str:
    """The key the API gives these variables: the banner must show exactly that picture."""
    response = api.post("/renders", json={"template": tpl, "variables": variables})
    assert response.status_code in (200, 201), response.text
    return response.json()["key"]


def picture(api: Api, made: dict):
    response = api.get(made["url"], token=None)
    assert response.status_code == 200, response.text
    return response


# ---------------------------------------------------------------- JSON/HTTP sources


def test_a_json_source_reads_objects_as_rows_with_secret_headers(sapi, feed, app):
    feed.set({"data": {"items": [{"title": "Mug", "price": {"amount": 12}, "tags": ["a"]},
                                 {"title": "Cap", "price": {"amount": 9.5}, "new": True}]}})
    source = json_source(sapi, feed, select="data.items",
                         headers={"Authorization": "Bearer s3cret-token"})
    assert source["secrets_set"] == ["headers"] and "headers" not in source["config"]
    tested = sapi.post(f"/sources/{source['id']}/test").json()
    assert tested["rows"] == 2
    assert tested["columns"] == ["title", "price.amount", "tags", "new"]
    assert tested["sample"] == {"title": "Mug", "price.amount": 12, "tags": ["a"]}
    assert feed.requests[-1]["headers"]["Authorization"] == "Bearer s3cret-token"
    rows = sapi.get(f"/sources/{source['id']}/rows").json()
    assert [r["values"] for r in rows["rows"]] == [
        {"title": "Mug", "price.amount": "12", "tags": '["a"]', "new": ""},
        {"title": "Cap", "price.amount": "9.5", "tags": "", "new": "TRUE"}]
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Source

        stored = db.session.get(Source, source["id"])
        assert "s3cret-token" not in (stored.secrets_encrypted or "")
        assert "s3cret-token" not in str(stored.config)


@pytest.mark.parametrize("config, path", [
    ({"url": "ftp://example.com/feed"}, "config.url"),
    ({"url": "http://127.0.0.1/x", "select": "items[?"}, "config.select"),
    ({"url": "http://127.0.0.1/x", "method": "DELETE"}, "config.method"),
    ({"url": "http://127.0.0.1/x", "timeout_seconds": 600}, "config.timeout_seconds"),
])
def test_bad_json_source_configs_are_named(sapi, config, path):
    error = error_of(sapi.post("/sources", json={"type": "json_http", "name": "x",
                                                 "config": config}), 422)
    assert error["details"]["path"] == path, error


# ---------------------------------------------------------------- live banners


def test_a_banner_follows_its_feed_without_making_visitors_wait(sapi, feed,
                                                                start_worker):  # noqa: F811
    feed.set({"product": {"title": "Mug", "price": 12}})
    tpl = template(sapi)
    made = banner(sapi, tpl, json_source(sapi, feed)["id"])
    assert made["url"].endswith(f"/live/{made['slug']}.png")
    first = picture(sapi, made)
    assert first.headers["Cache-Control"] == "public, max-age=5"
    assert first.headers["ETag"] == f'"{key_for(sapi, tpl, {"title": "Mug", "price": 12})}"'
    assert open_image(first.content).size == (160, 80)
    again = sapi.get(made["url"], token=None, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "public, max-age=5"

    start_worker()
    feed.set({"product": {"title": "Mug", "price": 15}})
    wanted = f'"{key_for(sapi, tpl, {"title": "Mug", "price": 15})}"'
    changed = _wait_for_etag(sapi, made, wanted, within=5 + 8)
    # a refresh with nothing new asks with If-None-Match and renders nothing
    state = _wait(lambda: sapi.get(f"/live/{made['id']}").json(),
                  lambda b: b["refreshes"] > changed["refreshes"], 15)
    assert state["renders"] == changed["renders"] and state["status"] == "ok"
    assert state["render_key"] == changed["render_key"]
    assert feed.requests[-1]["headers"].get("If-None-Match") == feed.etag
    assert state["data"] == {"title": "Mug", "price": 15} and state["data_origin"] == "source"

    feed.delay = 4  # a slow source: visitors are still answered at once
    for _ in range(5):
        started = time.monotonic()
        assert picture(sapi, made).headers["ETag"] == wanted
        assert time.monotonic() - started < 1.0


def _wait(fetch, done, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def _wait_for_etag(api: Api, made: dict, etag: str, within: float) -> dict:
    _wait(lambda: api.get(made["url"], token=None).headers.get("ETag"),
          lambda seen: seen == etag, within)
    return api.get(f"/live/{made['id']}").json()


def _refresh(app, banner_id: int) -> dict:
    """One refresh as a worker does it (the background path without waiting for its clock)."""
    with app.app_context():
        from webapp.extensions import db
        from webapp.live import refresh
        from webapp.models import LiveBanner

        db.session.get(LiveBanner, banner_id).next_refresh_at = None
        db.session.commit()
        refresh(banner_id)
        db.session.remove()


@pytest.mark.parametrize("settings", [{"MAX_SOURCE_BYTES": 4096}])
def test_a_failing_source_keeps_the_last_good_picture(sapi, feed, app):
    feed.set({"product": {"title": "Mug", "price": 12}})
    tpl = template(sapi)
    made = banner(sapi, tpl, json_source(sapi, feed, timeout_seconds=1)["id"])
    good = picture(sapi, made).headers["ETag"]
    trap = socket.create_server(("127.0.0.2", 0))
    trap.setblocking(False)
    failures = {
        "source_not_json": lambda: feed.set_raw(b"<html>Sign in</html>", "text/html"),
        "source_too_large": lambda: feed.set({"product": {"title": "x" * 10_000}}),
        "select_empty": lambda: feed.set({"item": {"title": "Mug"}}),  # the shape changed
        "source_http_error": lambda: feed.set_raw(b"{}", "application/json", status=500),
        "source_unreachable": lambda: setattr(feed, "delay", 2),
        "source_refused": lambda: setattr(
            feed, "location", f"http://127.0.0.2:{trap.getsockname()[1]}/feed"),
    }
    for code, fail in failures.items():
        feed.reset()
        fail()
        _refresh(app, made["id"])
        state = sapi.get(f"/live/{made['id']}").json()
        assert (state["status"], state["error"]["code"]) == ("error", code), state
        assert picture(sapi, made).headers["ETag"] == good, code
    with pytest.raises(BlockingIOError):
        trap.accept()  # the redirect to a forbidden address never connected
    trap.close()
    assert "500" in _error_after(sapi, app, made, feed, 500)["message"]

    feed.reset()
    feed.set({"product": {"title": "Cap", "price": 3}})
    _refresh(app, made["id"])
    state = sapi.get(f"/live/{made['id']}").json()
    assert state["status"] == "ok" and state["error"] is None
    assert picture(sapi, made).headers["ETag"] == \
        f'"{key_for(sapi, tpl, {"title": "Cap", "price": 3})}"'


def _error_after(api: Api, app, made: dict, feed, status: int) -> dict:
    feed.reset()
    feed.set_raw(b"{}", "application/json", status=status)
    _refresh(app, made["id"])
    return api.get(f"/live/{made['id']}").json()["error"]


def test_a_mapping_that_names_a_missing_key_is_an_error_with_the_keys(sapi, feed, app):
    feed.set({"product": {"name": "Mug", "cost": 12}})
    tpl = template(sapi)
    made = banner(sapi, tpl, json_source(sapi, feed)["id"],
                  mapping={"title": "name", "price": "cost"})
    assert made["data"] == {"name": "Mug", "cost": 12}
    assert made["render_key"] == key_for(sapi, tpl, {"title": "Mug", "price": 12})
    feed.set({"product": {"label": "Mug", "cost": 12}})
    _refresh(app, made["id"])
    error = sapi.get(f"/live/{made['id']}").json()["error"]
    assert error["code"] == "mapping_missing"
    assert "mapping.title" in error["message"] and "label, cost" in error["message"]


def test_creating_a_banner_checks_everything_and_leaves_nothing_half_made(sapi, other, feed):
    feed.set({"product": {"title": "Mug", "price": 12}})
    tpl = template(sapi)
    source = json_source(sapi, feed)
    feed.set({"products": []})
    error = error_of(sapi.post("/live", json={"template": tpl, "source": source["id"]}), 422)
    assert error["code"] == "select_empty" and "products" in error["message"]
    feed.set({"product": [{"title": "a"}, {"title": "b"}]})
    error = error_of(sapi.post("/live", json={"template": tpl, "source": source["id"]}), 422)
    assert error["code"] == "select_not_object" and "items[0]" in error["message"]
    feed.set_raw(b"oops", "application/json", status=503)
    error = error_of(sapi.post("/live", json={"template": tpl, "source": source["id"]}), 502)
    assert error["code"] == "source_http_error"
    assert sapi.get("/live").json()["data"] == []
    error = error_of(other.post("/live", json={"template": template(other),
                                               "source": source["id"]}), 404)
    assert error["code"] == "source_not_found"
    error_of(other.post("/live", json={"template": tpl, "data": {}}), 404)
    error_of(sapi.post("/live", json={"template": tpl, "refresh_seconds": 0}), 400)
    sheet = sapi.post("/sources", files={"file": ("p.csv", b"title,price\nMug,3\n")})
    assert sheet.status_code == 201, sheet.text
    error = error_of(sapi.post("/live", json={"template": tpl, "source": sheet.json()["id"]}),
                     422)
    assert error["code"] == "unsupported_source"


def test_unknown_slugs_wrong_extensions_and_other_workspaces(sapi, other):
    made = banner(sapi, template(sapi), None, data={"title": "Hi", "price": 1})
    assert error_of(sapi.get(made["url"].replace(made["slug"], "nope"), token=None),
                    404)["code"] == "live_banner_not_found"
    error = error_of(sapi.get(made["url"][:-4] + ".jpg", token=None), 404)
    assert ".png" in error["message"]
    error_of(other.get(f"/live/{made['id']}"), 404)
    error_of(other.put(f"/live/{made['id']}", json={"refresh_seconds": 60}), 404)
    error_of(other.delete(f"/live/{made['id']}"), 404)
    error_of(other.post(made["data_url"], json={"title": "pwned"}), 404)
    assert sapi.delete(f"/live/{made['id']}").status_code == 204
    assert sapi.get(made["url"], token=None).status_code == 404


def test_pushed_data_by_key_and_by_inbound_hook(sapi, app):
    tpl = template(sapi)
    made = banner(sapi, tpl, None, data={"title": "First", "price": 1})
    assert picture(sapi, made).headers["ETag"] == \
        f'"{key_for(sapi, tpl, {"title": "First", "price": 1})}"'
    error_of(sapi.post(made["data_url"], token=None, json={"title": "x"}), 401)
    pushed = sapi.post(made["data_url"], json={"title": "Second", "price": 2})
    assert pushed.status_code == 200, pushed.text
    second = key_for(sapi, tpl, {"title": "Second", "price": 2})
    assert pushed.json()["render"]["key"] == second and pushed.json()["data_origin"] == "push"
    assert picture(sapi, made).headers["ETag"] == f'"{second}"'
    hooked = sapi.post(made["inbound_url"], token=None, data={"title": "Third", "price": "3"})
    assert hooked.status_code == 200, hooked.text
    third = key_for(sapi, tpl, {"title": "Third", "price": "3"})
    assert hooked.json()["key"] == third and hooked.json()["status"] == "completed"
    assert picture(sapi, made).headers["ETag"] == f'"{third}"'
    error_of(sapi.post(made["inbound_url"], token=None, json=[1]), 400)
    assert sapi.get(f"/live/{made['id']}").json()["renders"] == 3


def test_changing_a_banner_records_its_new_picture_without_waiting_for_itself(sapi, app):
    """The change is not saved yet when the new picture is recorded and counted; that must
    not wait for the change's own lock (SQLite), whatever the process has cached."""
    tpl = template(sapi)
    made = banner(sapi, tpl, None, data={"title": "First", "price": 1})
    app.extensions.get("usage.quotas", {}).clear()  # the workspace's quota is read again
    started = time.monotonic()
    changed = sapi.put(f"/live/{made['id']}", json={"mapping": {"title": "price"}})
    assert changed.status_code == 200, changed.text
    assert time.monotonic() - started < 5
    assert changed.json()["mapping"] == {"title": "price"}
    shown = key_for(sapi, tpl, {"title": "1", "price": 1})
    assert picture(sapi, made).headers["ETag"] == f'"{shown}"'


COUNTDOWN = {
    "name": "Countdown", "width": 120, "height": 40, "background": "#000000",
    "variables": {"ends_at": {"type": "date"}},
    "layers": [{"name": "clock", "type": "text", "x": 0, "y": 0, "width": 120, "height": 40,
                "text": "{{ mm }}:{{ ss }}", "size": 20, "color": "#ffffff"}],
    "frames": {"countdown": {"until": "{{ ends_at }}", "frames": 3, "step": 1}},
}


def test_a_countdown_banner_moves_on_with_time_though_its_data_stays(sapi, app, feed):
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    feed.set({"product": {"ends_at": ends}})
    made = banner(sapi, template(sapi, COUNTDOWN), json_source(sapi, feed)["id"],
                  format="gif")
    first = picture(sapi, made)
    assert first.headers["Content-Type"] == "image/gif"
    assert open_image(first.content).n_frames == 3
    time.sleep(1.1)
    _refresh(app, made["id"])
    later = picture(sapi, made)
    assert later.headers["ETag"] != first.headers["ETag"]
    assert later.content != first.content
    assert feed.requests[-1]["headers"].get("If-None-Match") == feed.etag  # data unchanged


def test_the_scheduler_restarts_a_broken_refresh_chain(sapi, app, feed, redis_url):
    feed.set({"product": {"title": "Mug", "price": 12}})
    made = banner(sapi, template(sapi), json_source(sapi, feed)["id"])
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # the chain's scheduled job is lost
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import LiveBanner
        from webapp.tasks.sweep import sweep_live

        row = db.session.get(LiveBanner, made["id"])
        row.next_refresh_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        db.session.commit()
        assert sweep_live() == 1
        assert sweep_live() == 0  # queued once, not twice
        db.session.remove()
    from rq import Queue

    queue = Queue("live", connection=redis.Redis.from_url(redis_url))
    assert [job.args for job in queue.jobs] == [(made["id"],)]


HOSTILE = ["127.0.0.2", "2130706434", "0x7f000002", "0177.0.0.2", "127.2", "127.0.0.2.",
           "[::ffff:127.0.0.2]", "[::ffff:7f00:2]", "localhost", "[::1]"]


def test_hostile_source_urls_are_refused_without_a_connection(sapi, feed):
    """Every spelling of a loopback address off the allowlist (127.0.0.1/32 only), directly
    and behind a redirect: refused with the reason, and the listener there never connected."""
    trap = socket.create_server(("127.0.0.2", 0))
    trap.setblocking(False)
    port = trap.getsockname()[1]
    tpl = template(sapi)
    try:
        for host in HOSTILE:
            source = json_source(sapi, feed, url=f"http://{host}:{port}/feed")
            error = error_of(sapi.post(f"/sources/{source['id']}/test"), 422)
            assert error["code"] == "source_refused", (host, error)
            assert "not allowed for outbound requests" in error["message"], error
            error = error_of(sapi.post("/live", json={"template": tpl,
                                                      "source": source["id"]}), 422)
            assert error["code"] == "source_refused"
        feed.location = f"http://0x7f000002:{port}/feed"
        redirected = json_source(sapi, feed)
        error = error_of(sapi.post(f"/sources/{redirected['id']}/test"), 422)
        assert error["code"] == "source_refused" and "redirect" in error["message"], error
        with pytest.raises(BlockingIOError):
            trap.accept()
        assert sapi.get("/live").json()["data"] == []
    finally:
        trap.close()


def test_a_json_list_renders_as_a_batch(sapi, feed, start_worker):  # noqa: F811
    feed.set({"items": [{"name": "Mug", "cost": 12}]})
    tpl = template(sapi)
    source = json_source(sapi, feed, select="items")
    error = error_of(sapi.post("/batches", json={"template": tpl, "source": source["id"]}), 422)
    assert error["code"] == "nothing_mapped" and "(name, cost)" in error["message"]
    feed.set({"items": [{"name": "Mug", "price": 12}, {"name": "Cap", "price": 9},
                        {"name": "", "price": None}]})
    error = error_of(sapi.post("/batches", json={"template": tpl, "source": source["id"],
                                                 "mapping": {"title": "label"}}), 422)
    assert error["details"]["path"] == "mapping.title"
    made = sapi.post("/batches", json={"template": tpl, "source": source["id"],
                                       "mapping": {"title": "name"}})
    assert made.status_code == 202, made.text
    assert made.json()["total"] == 2  # the blank object is skipped
    start_worker()
    batch = _wait(lambda: sapi.get(f"/batches/{made.json()['id']}").json(),
                  lambda b: b["status"] == "completed", 60)
    assert [item["metadata"] for item in batch["items"]] == [{"row": 1}, {"row": 2}]
    assert [item["url"].rsplit("/", 1)[1].split(".")[0] for item in batch["items"]] == [
        key_for(sapi, tpl, {"title": "Mug", "price": "12"}),
        key_for(sapi, tpl, {"title": "Cap", "price": "9"})]


def test_image_layers_and_html_resources_use_the_same_guard(sapi):
    """The other outbound requests of a render: refused the same way, no connection made."""
    trap = socket.create_server(("127.0.0.2", 0))
    trap.setblocking(False)
    url = f"http://0x7f000002:{trap.getsockname()[1]}/photo.png"
    try:
        layered = template(sapi, {"name": "Photo", "width": 40, "height": 40,
                                  "variables": {"photo": {"type": "image"}},
                                  "layers": [{"name": "p", "type": "image", "x": 0, "y": 0,
                                              "width": 40, "height": 40,
                                              "src": "{{ photo }}"}]})
        error = error_of(sapi.post("/renders", json={"template": layered,
                                                     "variables": {"photo": url}}), 422)
        assert "127.0.0.2 is a loopback address" in error["message"], error
        page = f'<img src="{url}" style="width:40px">'.encode()
        html = sapi.post("/templates", files={"file": ("page.html", page)},
                         data={"width": "40", "height": "40"})
        assert html.status_code == 201, html.text
        error = error_of(sapi.post("/renders", json={"template": html.json()["id"],
                                                     "format": "pdf"}), 422)
        assert "127.0.0.2 is a loopback address" in error["message"], error
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        trap.close()


def test_a_change_that_cannot_be_shown_changes_nothing(sapi, feed):
    photo = {"name": "Photo", "width": 40, "height": 40, "background": "#ffffff",
             "variables": {"photo": {"type": "image"}, "title": {"type": "text"}},
             "layers": [{"name": "t", "type": "text", "x": 0, "y": 0, "width": 40,
                         "height": 20, "text": "{{ title }}", "size": 10},
                        {"name": "p", "type": "image", "x": 0, "y": 20, "width": 40,
                         "height": 20, "src": "{{ photo }}", "visible": "{{ photo != '' }}"}]}
    feed.set({"product": {"title": "Mug", "photo": "", "bad": "http://0x7f000002:9/x.png"}})
    made = banner(sapi, template(sapi, photo), json_source(sapi, feed)["id"])
    # the render itself fails (after its quota was reserved and its row committed)
    error = error_of(sapi.put(f"/live/{made['id']}", json={"mapping": {"photo": "bad"},
                                                           "refresh_seconds": 99}), 422)
    assert "loopback" in error["message"], error
    error = error_of(sapi.put(f"/live/{made['id']}", json={"mapping": {"title": "nope"}}),
                     422)
    assert error["code"] == "mapping_missing"
    after = sapi.get(f"/live/{made['id']}").json()
    assert (after["mapping"], after["refresh_seconds"]) == ({}, 5)
    assert after["render_key"] == made["render_key"] and after["status"] == "ok"


@pytest.mark.parametrize("settings", [{"SYNC_TIMEOUT": 0.001}])
def test_a_banner_waits_for_its_picture_past_the_sync_limit(sapi):
    """API renders past SYNC_TIMEOUT answer 202; a banner's picture is always finished first."""
    tpl = template(sapi)
    made = banner(sapi, tpl, None, data={"title": "Slow", "price": 1})
    assert made["render_key"] == key_for(sapi, tpl, {"title": "Slow", "price": 1})
    pushed = sapi.post(made["inbound_url"], token=None, json={"title": "Later", "price": 2})
    assert pushed.status_code == 200 and pushed.json()["status"] == "completed"
    assert picture(sapi, made).headers["ETag"] == f'"{pushed.json()["key"]}"'


def test_bad_headers_nan_and_deep_json_are_named_not_500(sapi, feed, app):
    error = error_of(sapi.post("/sources", json={"type": "json_http", "name": "x", "config": {
        "url": feed.url(), "headers": {"Authorization": "Bearer abc\n"}}}), 422)
    assert error["details"]["path"] == "config.headers.Authorization"
    source = json_source(sapi, feed, select="@")
    feed.set_raw(b'{"a": NaN}', "application/json")
    error = error_of(sapi.post(f"/sources/{source['id']}/test"), 422)
    assert error["code"] == "source_not_json" and "NaN" in error["message"]
    feed.set_raw(b"[" * 100_000 + b"]" * 100_000, "application/json")
    error = error_of(sapi.post(f"/sources/{source['id']}/test"), 422)
    assert error["code"] == "source_not_json"
    made = banner(sapi, template(sapi), None, data={"title": "Hi", "price": 1})
    bad = sapi.post(made["data_url"], data=b'{"title": "x", "price": NaN}',
                    headers={"Content-Type": "application/json"})
    assert error_of(bad, 400)["code"] == "invalid_json"
    assert sapi.get(f"/live/{made['id']}").json()["data"] == {"title": "Hi", "price": 1}


def test_a_scheduler_round_survives_a_failing_step(app, caplog):
    """Redis unreachable: every step that needs it fails alone, logged, and the round ends."""
    url = app.config["REDIS_URL"]
    app.extensions.pop("queues.redis", None)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        with app.app_context():
            from webapp.tasks.sweep import sweep

            assert sweep() == 0
    finally:
        app.extensions.pop("queues.redis", None)
        app.config["REDIS_URL"] = url
    failed = [r.getMessage() for r in caplog.records if "failed; the next round" in
              r.getMessage()]
    assert any("experiment counts" in m for m in failed), failed
