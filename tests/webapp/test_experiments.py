"""A/B experiments on images (SPEC 9) against a real server and Redis: traffic splits by
weight and sticks per visitor, impressions and clicks are counted exactly (under concurrency,
and across the move from Redis to the database), the statistics name a likely winner, and a
declared winner takes all traffic."""

from __future__ import annotations

import concurrent.futures
from urllib.parse import urlsplit

import pytest
from apiclient import Api
from helpers import error_of, open_image

pytestmark = pytest.mark.usefixtures("app")


def card(colour: str) -> dict:
    return {"name": f"Card {colour}", "width": 40, "height": 20, "background": colour,
            "variables": {"title": {"type": "text"}},
            "layers": [{"name": "t", "type": "text", "x": 2, "y": 2, "width": 36,
                        "height": 16, "text": "{{ title }}", "size": 8, "color": "#000000"}]}


RED, BLUE = (220, 38, 38), (37, 99, 235)


def template(api: Api, colour: str) -> int:
    response = api.post("/templates", json=card(colour))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def experiment(api: Api, weights=(1, 1), **extra) -> dict:
    variants = [{"template": template(api, colour), "weight": w}
                for colour, w in zip(("#dc2626", "#2563eb"), weights, strict=True)]
    body = {"name": "Spring sale", "variants": variants, "goal_url": "https://shop.example/sale",
            "variables": {"title": "Hi"}, **extra}
    response = api.post("/experiments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def colour_of(response) -> tuple[int, int, int]:
    assert response.status_code == 200, response.text
    return open_image(response.content).convert("RGB").getpixel((39, 19))


def stats(api: Api, made: dict) -> dict:
    return api.get(f"/experiments/{made['id']}").json()


def flush(app) -> None:
    with app.app_context():
        from webapp.experiments import flush_counts
        from webapp.extensions import db

        flush_counts()
        db.session.remove()


def test_traffic_splits_by_weight_sticks_per_visitor_and_is_counted(api, app):
    made = experiment(api, weights=(3, 1))
    assert urlsplit(made["image_url"]).path == f"/x/{made['id']}.png"
    assert [v["share"] for v in made["variants"]] == [0.75, 0.25]
    seen = {}
    for n in range(400):
        seen[n] = colour_of(api.get(f"{made['image_url']}?v=visitor-{n}", token=None))
    assert set(seen.values()) == {RED, BLUE}
    reds = sum(c == RED for c in seen.values())
    assert 250 < reds < 350, reds  # 300 expected; binomial sd ~8.7
    for n in range(0, 400, 40):  # the same visitor sees the same variant again
        assert colour_of(api.get(f"{made['image_url']}?v=visitor-{n}", token=None)) == seen[n]
    result = stats(api, made)
    assert [v["impressions"] for v in result["variants"]] == [reds + sum(
        seen[n] == RED for n in range(0, 400, 40)), 400 - reds + sum(
        seen[n] == BLUE for n in range(0, 400, 40))]
    # the served bytes are the variant's stored render
    first = result["variants"][0]["image_url"]
    assert api.get(first, token=None).content == api.get(
        f"{made['image_url']}?v={next(f'visitor-{n}' for n in seen if seen[n] == RED)}",
        token=None).content


def test_clicks_go_to_the_goal_and_count_for_the_variant_seen(api, app):
    made = experiment(api)
    session = api.session
    image = session.get(made["image_url"])  # no visitor id: a cookie is set
    assert "pm_visitor" in image.cookies and image.headers["Cache-Control"] == "private, no-store"
    shown = colour_of(image)
    assert colour_of(session.get(made["image_url"])) == shown  # the cookie keeps it
    clicked = session.get(made["click_url"], allow_redirects=False)
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == "https://shop.example/sale"
    index = 0 if shown == RED else 1
    assert clicked.headers["Pixelmerge-Click"] == f"counted for variant {index}"
    api.session.cookies.clear()
    stray = api.get(made["click_url"], token=None, allow_redirects=False)
    assert stray.status_code == 302 and stray.headers["Location"] == "https://shop.example/sale"
    assert stray.headers["Pixelmerge-Click"].startswith("not counted: no visitor id")
    result = stats(api, made)
    assert result["variants"][index]["impressions"] == 2
    assert result["variants"][index]["clicks"] == 1
    assert result["variants"][1 - index]["clicks"] == 0
    assert result["clicks_without_visitor"] == 1
    assert result["variants"][index]["rate"] == 0.5


def test_counts_are_exact_under_concurrency_and_move_to_the_database_once(api, app, redis_url):
    made = experiment(api)

    def view(n: int) -> None:
        import requests

        assert requests.get(f"{made['image_url']}?v=v{n}", timeout=30).status_code == 200
        requests.get(f"{made['click_url']}?v=v{n}", allow_redirects=False, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(view, range(240)))
    before = stats(api, made)
    assert sum(v["impressions"] for v in before["variants"]) == 240
    assert sum(v["clicks"] for v in before["variants"]) == 240
    flush(app)
    flush(app)  # a second round finds nothing new
    after = stats(api, made)
    assert [(v["impressions"], v["clicks"]) for v in after["variants"]] == \
        [(v["impressions"], v["clicks"]) for v in before["variants"]]
    import redis

    connection = redis.Redis.from_url(redis_url)
    assert list(connection.scan_iter("pm:x*")) == []
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Variant

        stored = db.session.scalars(db.select(Variant).where(
            Variant.experiment_id == made["id"]).order_by(Variant.position)).all()
        assert [(v.impressions, v.clicks) for v in stored] == \
            [(v["impressions"], v["clicks"]) for v in before["variants"]]
        db.session.remove()


def test_a_flush_cut_short_is_applied_exactly_once(api, app, redis_url):
    import redis

    made = experiment(api)
    connection = redis.Redis.from_url(redis_url)
    # a scheduler took these counts, committed them, and died before deleting its key
    connection.hset(f"pm:xf:{made['id']}:done", mapping={"i0": 5, "c0": 2})
    connection.sadd(f"pm:xs:{made['id']}", "done")
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import CountFlush

        db.session.add(CountFlush(id="done"))
        db.session.commit()
        db.session.remove()
    # another died before committing
    connection.hset(f"pm:xf:{made['id']}:lost", mapping={"i1": 7, "c1": 3})
    connection.sadd(f"pm:xs:{made['id']}", "lost")
    assert [(v["impressions"], v["clicks"]) for v in stats(api, made)["variants"]] == \
        [(0, 0), (7, 3)]
    flush(app)
    assert [(v["impressions"], v["clicks"]) for v in stats(api, made)["variants"]] == \
        [(0, 0), (7, 3)]
    assert list(connection.scan_iter("pm:x*")) == []


def test_probability_of_being_best_and_declaring_a_winner(api, app, redis_url):
    import redis

    made = experiment(api)
    redis.Redis.from_url(redis_url).hset(f"pm:x:{made['id']}",
                                         mapping={"i0": 200, "c0": 40, "i1": 200, "c1": 10})
    result = stats(api, made)
    chances = [v["probability_best"] for v in result["variants"]]
    assert chances[0] > 0.99 and abs(sum(chances) - 1) < 1e-6
    assert [v["rate"] for v in result["variants"]] == [0.2, 0.05]
    fresh = experiment(api)
    assert all(abs(v["probability_best"] - 0.5) < 0.02 for v in fresh["variants"])

    error = error_of(api.post(f"/experiments/{made['id']}/winner", json={"variant": 2}), 422)
    assert "0 to 1" in error["message"]
    won = api.post(f"/experiments/{made['id']}/winner", json={"variant": 1})
    assert won.status_code == 200 and won.json()["winner"] == 1
    assert [v["share"] for v in won.json()["variants"]] == [0.0, 1.0]
    assert {colour_of(api.get(f"{made['image_url']}?v=w{n}", token=None))
            for n in range(30)} == {BLUE}


def test_bad_requests_and_other_workspaces(api, other_api):
    mine = template(api, "#dc2626")
    theirs = template(other_api, "#2563eb")
    body = {"name": "x", "goal_url": "https://shop.example/",
            "variants": [{"template": mine}, {"template": theirs}]}
    error = error_of(api.post("/experiments", json=body), 404)
    assert error["message"].startswith("variants[1]: ") and error["code"] == "template_not_found"
    error = error_of(api.post("/experiments", json={**body, "variants": [{"template": mine}]}),
                     400)
    assert "variants" in error["message"]
    error = error_of(api.post("/experiments", json={
        **body, "variants": [{"template": mine}, {"template": mine}],
        "goal_url": "javascript:alert(1)"}), 422)
    assert error["details"]["path"] == "goal_url"
    error_of(api.post("/experiments", json={**body, "variants": [
        {"template": mine, "weight": 0}, {"template": mine}]}), 400)
    made = experiment(api)
    error_of(other_api.get(f"/experiments/{made['id']}"), 404)
    error_of(other_api.post(f"/experiments/{made['id']}/winner", json={"variant": 0}), 404)
    missing = error_of(api.get(f"{api.base}/x/999999.png", token=None), 404)
    assert missing["code"] == "experiment_not_found"
    assert ".png" in error_of(api.get(made["image_url"][:-4] + ".gif", token=None),
                              404)["message"]
    assert api.delete(f"/experiments/{made['id']}").status_code == 204
    assert api.get(made["click_url"], token=None, allow_redirects=False).status_code == 404


def test_without_redis_experiments_are_refused_and_images_still_served(api, app):
    made = experiment(api)
    connection = app.extensions.pop("queues.redis")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        assert colour_of(api.get(f"{made['image_url']}?v=a", token=None)) in (RED, BLUE)
        assert error_of(api.get(f"/experiments/{made['id']}"), 503)["code"] == \
            "counting_unavailable"
        body = {"name": "x", "goal_url": "https://shop.example/", "variants": [
            {"template": made["variants"][0]["template"]},
            {"template": made["variants"][1]["template"]}]}
        assert error_of(api.post("/experiments", json=body), 503)["code"] == \
            "counting_unavailable"
    finally:
        app.extensions.pop("queues.redis", None)
        app.extensions["queues.redis"] = connection
    assert len(api.get("/experiments").json()["data"]) == 1  # nothing was made


def test_flush_ids_are_forgotten_after_a_day(api, app):
    import datetime as dt

    with app.app_context():
        from webapp.experiments import flush_counts
        from webapp.extensions import db
        from webapp.models import CountFlush

        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        db.session.add_all([CountFlush(id="old", created_at=old), CountFlush(id="new")])
        db.session.commit()
        flush_counts()
        assert [f.id for f in db.session.scalars(db.select(CountFlush))] == ["new"]
        db.session.remove()
