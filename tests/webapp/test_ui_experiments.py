"""The experiment pages (SPEC 9, 10) through Flask's test client: starting one with variants
of the workspace's templates, its embed snippet, a chart per variant whose numbers follow the
counts in Redis, declaring a winner, the domain's complaints beside their fields, CSRF, and
another workspace's experiments answering 404."""

from __future__ import annotations

import html
import json
import re

import pytest
from helpers import open_image
from uipages import SQLITE, csrf, errors, flashes, signed_in, text, upload

from webapp.extensions import db
from webapp.models import Experiment

GOAL = "https://shop.example/spring"
RED, BLUE = (220, 38, 38), (37, 99, 235)


def card(colour: str) -> dict:
    return {"name": f"Card {colour}", "width": 40, "height": 20, "background": colour,
            "variables": {"title": {"type": "text"}},
            "layers": [{"name": "t", "type": "text", "x": 2, "y": 2, "width": 36,
                        "height": 16, "text": "{{ title }}", "size": 8, "color": "#000000"}]}


def template_of(client, colour: str) -> int:
    created = upload(client, json.dumps(card(colour)).encode(), f"{colour[1:]}.json")
    assert created.status_code == 302
    return int(created.headers["Location"].rsplit("/", 1)[1])


def start(client, variants: list[dict], **fields):
    data = {"csrf_token": csrf(client, "/experiments/new"), "name": "Spring sale",
            "goal_url": GOAL, "format": "png", "variables": '{"title": "Hi"}'}
    for i, variant in enumerate(variants):
        data.update({f"variants-{i}-{k}": v for k, v in variant.items()})
    data.update(fields)
    return client.post("/experiments/new", data=data)


def two(client) -> list[dict]:
    return [{"template": template_of(client, "#dc2626"), "weight": "1"},
            {"template": template_of(client, "#2563eb"), "weight": "1"}]


def experiment_id(answer) -> int:
    assert answer.status_code == 302, errors(answer) or text(answer)[-2000:]
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Experiment))


def colour(client, path: str) -> tuple[int, int, int]:
    with client.get(path) as answer:
        assert answer.status_code == 200
        return open_image(answer.data).convert("RGB").getpixel((39, 19))


@SQLITE
def test_the_pages_explain_what_to_do_first(app):
    client = signed_in(app)
    page = text(client.get("/experiments"))
    assert "No experiments yet" in page and "upload the templates first" in page
    assert 'href="/experiments" aria-current="page"' in page
    assert "First some templates" in text(client.get("/experiments/new"))
    template_of(client, "#dc2626")
    page = text(client.get("/experiments"))
    assert 'class="empty"' in page and "Start an experiment" in page
    form = text(client.get("/experiments/new"))
    assert 'name="variants-0-template"' in form and 'name="variants-1-template"' in form
    assert 'name="variants-2-template"' not in form


def test_an_experiment_counts_visitors_on_a_chart_per_variant_and_takes_a_winner(app):
    client = signed_in(app)
    xid = experiment_id(start(client, two(client), name="Spring sale"))
    page = text(client.get(f"/experiments/{xid}"))
    public = app.config["PUBLIC_URL"]
    snippet = (f'<a href="{public}/x/{xid}/click"><img src="{public}/x/{xid}.png" '
               'alt="Spring sale"></a>')
    assert snippet in page
    assert page.count('<svg class="chart"') == 2 and "Declare the winner" in page
    assert "Variant A" in page and "Variant B" in page
    seen = {v: colour(client, f"/x/{xid}.png?v={v}") for v in ("ann", "bob", "cy", "dee")}
    assert set(seen.values()) <= {RED, BLUE}
    clicked = client.get(f"/x/{xid}/click?v=ann")
    assert clicked.status_code == 302 and clicked.headers["Location"] == GOAL
    stats = client.get(f"/experiments/{xid}/stats.json").get_json()
    assert stats["totals"] == {"impressions": 4, "clicks": 1} and stats["winner"] is None
    ann = 0 if seen["ann"] == RED else 1
    variant = stats["variants"][ann]
    assert variant["clicks"] == 1 and variant["bars"]["clicks"] == 1.0
    assert variant["labels"]["rate"] == f"{100 / variant['impressions']:.1f} %"
    assert sum(v["probability_best"] for v in stats["variants"]) == pytest.approx(1, abs=1e-3)
    page = text(client.get(f"/experiments/{xid}"))
    assert 'data-value="clicks">1</text>' in page  # the chart drawn with the counts
    assert "Spring sale" in text(client.get("/experiments"))
    token = csrf(client, f"/experiments/{xid}")
    declared = client.post(f"/experiments/{xid}/winner", data={"csrf_token": token,
                                                               "variant": "1"})
    assert declared.status_code == 302
    page = client.get(f"/experiments/{xid}")
    assert "Variant B is the winner" in " ".join(flashes(page))
    assert re.search(r'class="card variant winner" data-variant="1"', page.text)
    assert "Make it the winner" in text(page)
    assert client.get(f"/experiments/{xid}/stats.json").get_json()["winner"] == 1
    with app.app_context():
        from webapp import experiments

        experiments.forget(xid)
    assert {colour(client, f"/x/{xid}.png?v=v{n}") for n in range(6)} == {BLUE}
    wrong = client.post(f"/experiments/{xid}/winner", data={"csrf_token": token,
                                                            "variant": "7"})
    assert "That is not a variant of this experiment." in flashes(
        client.get(wrong.headers["Location"]))


@SQLITE
def test_mistakes_are_shown_beside_their_fields_and_nothing_is_started(app):
    client = signed_in(app)
    variants = two(client)
    empty = start(client, variants, name="", goal_url="")
    assert empty.status_code == 422
    assert errors(empty) == ["Name the experiment.",
                             "Say where a click on the picture should go."]
    ftp = start(client, variants, goal_url="ftp://shop.example/")
    assert errors(ftp) == ["'ftp://shop.example/' is not an http(s) URL; clicks are sent there"]
    alone = start(client, [variants[0], {"template": "", "weight": "1"}])
    assert errors(alone) == ["Pick a template: an experiment compares at least 2 variants."]
    weightless = start(client, [variants[0], {**variants[1], "weight": "0"}])
    assert errors(weightless) == ["A weight above 0."]
    version = start(client, [variants[0], {**variants[1], "version": "9"}])
    assert errors(version) == [f"Template {variants[1]['template']} has no version 9"]
    assert 'id="variants-1-version-error"' in version.text  # beside the version
    listed = start(client, variants, variables="[1]")
    assert errors(listed) == ['Give one JSON object, like {"title": "Spring sale"}.']
    other = signed_in(app, "mallory@example.org")
    theirs = template_of(other, "#16a34a")
    foreign = start(client, [variants[0], {"template": str(theirs), "weight": "1"}])
    assert foreign.status_code == 422
    assert errors(foreign) == [f"No template with id {theirs}"]
    assert count(app) == 0


@SQLITE
def test_more_variants_are_added_up_to_ten(app):
    client = signed_in(app)
    variants = two(client)
    token = csrf(client, "/experiments/new")
    data = {"csrf_token": token, "name": "Many", "goal_url": GOAL, "format": "png",
            "variables": "{}", "add_variant": "1"}
    data.update({f"variants-{i}-{k}": v for i, var in enumerate(variants)
                 for k, v in var.items()})
    more = client.post("/experiments/new", data=data)
    assert more.status_code == 200 and 'name="variants-2-template"' in more.text
    assert errors(more) == [] and count(app) == 0
    assert html.unescape(more.text).count(f'<option selected value="{variants[1]["template"]}"') \
        == 1  # what was chosen stays chosen
    many = client.post("/experiments/new", data={**data, **{
        f"variants-{i}-template": str(variants[i % 2]["template"]) for i in range(12)}})
    assert 'name="variants-9-template"' in many.text
    assert 'name="variants-10-template"' not in many.text and "Add a variant" not in many.text


@SQLITE
def test_forms_need_a_csrf_token(app):
    client = signed_in(app)
    variants = two(client)
    forged = start(client, variants, csrf_token="forged")
    assert forged.status_code == 302 and count(app) == 0
    xid = experiment_id(start(client, variants))
    for path in (f"/experiments/{xid}/winner", f"/experiments/{xid}/delete"):
        assert client.post(path, data={"variant": "0"}).status_code == 302, path
    with app.app_context():
        assert db.session.get(Experiment, xid).winner is None


def test_another_workspaces_experiments_answer_404(app):
    owner = signed_in(app, "owner@example.com")
    xid = experiment_id(start(owner, two(owner)))
    assert owner.get(f"/experiments/{xid}").status_code == 200
    intruder = signed_in(app, "mallory@example.org")
    answer = intruder.get(f"/experiments/{xid}")
    assert answer.status_code == 404 and "belongs to another workspace" in text(answer)
    assert intruder.get(f"/experiments/{xid}/stats.json").status_code == 404
    assert "No experiments yet" in text(intruder.get("/experiments"))
    token = csrf(intruder, "/")
    for path in (f"/experiments/{xid}/winner", f"/experiments/{xid}/delete"):
        assert intruder.post(path, data={"csrf_token": token, "variant": "0"}).status_code \
            == 404, path
    with app.app_context():
        assert db.session.get(Experiment, xid).winner is None
    deleted = owner.post(f"/experiments/{xid}/delete",
                         data={"csrf_token": csrf(owner, f"/experiments/{xid}")})
    assert deleted.status_code == 302 and count(app) == 0
    assert owner.get(f"/x/{xid}.png").status_code == 404
