"""Live banners and A/B experiments in a real browser against the running platform: start an
experiment with two variants, let two visitors (browser contexts of their own) see its picture
and click through, watch the numbers and the chart move on the open detail page, declare a
winner; make a live banner from data, see its picture, and see it follow data pushed to its
inbound URL without a reload."""

from __future__ import annotations

import json
import re

import requests
from helpers import open_image
from playwright.sync_api import expect
from test_marketer_flow import CARD, sign_up

ROSE = (190, 18, 60)


def upload(page, tmp_path, content: dict) -> None:
    path = tmp_path / f"{content['name'].replace(' ', '-').lower()}.json"
    path.write_text(json.dumps(content))
    page.get_by_role("link", name="Templates").first.click()
    page.get_by_label("Template file").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", name=content["name"])).to_be_visible()


def visit(browser, image_url: str, click_url: str) -> str:
    """A visitor with a browser of their own: sees the picture, clicks it; returns where the
    click landed."""
    context = browser.new_context()
    try:
        tab = context.new_page()
        shown = tab.goto(image_url)
        assert shown.status == 200 and shown.headers["content-type"] == "image/png"
        tab.goto(click_url)
        return tab.url
    finally:
        context.close()


def more_traffic(image_url: str, click_url: str, visitors: int = 40) -> None:
    """Visitors with ids (as in emails): those shown the rose variant click one in two times,
    those shown indigo one in eight."""
    session = requests.Session()
    for n in range(visitors):
        shown = session.get(f"{image_url}?v=reader-{n}", timeout=10)
        rose = open_image(shown.content).convert("RGB").getpixel((8, 8)) == ROSE
        if n % (2 if rose else 8) == 0:
            assert session.get(f"{click_url}?v=reader-{n}", allow_redirects=False,
                               timeout=10).status_code == 302


def chart_total(page, name: str) -> int:
    return page.evaluate(
        f"""() => Array.from(document.querySelectorAll('[data-value="{name}"]'))
              .reduce((sum, el) => sum + Number(el.textContent.replace(/,/g, '')), 0)""")


def test_an_experiment_counts_two_visitors_on_its_charts_and_takes_a_winner(
        page, server, browser, tmp_path, shoot):
    sign_up(page)
    upload(page, tmp_path, {**CARD, "name": "Indigo card"})
    upload(page, tmp_path, {**CARD, "name": "Rose card", "background": "#be123c"})
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_text("No experiments yet")).to_be_visible()
    page.get_by_role("link", name="Start an experiment").first.click()
    page.get_by_label("Name").fill("Spring sale")
    goal = f"{server.url}/healthz"
    page.get_by_label("Goal URL").fill(goal)
    page.locator('[name="variants-0-template"]').select_option(label="Indigo card")
    page.locator('[name="variants-1-template"]').select_option(label="Rose card")
    page.get_by_label("Variables (JSON)").fill('{"title": "Spring sale", "price": 25}')
    page.get_by_role("button", name="Start the experiment").click()
    expect(page.get_by_role("heading", name="Spring sale")).to_be_visible()
    experiment = int(page.url.rstrip("/").rsplit("/", 1)[1])
    snippet = page.locator("#embed-snippet").input_value()
    image_url, click_url = f"{server.url}/x/{experiment}.png", f"{server.url}/x/{experiment}/click"
    assert snippet == f'<a href="{click_url}"><img src="{image_url}" alt="Spring sale"></a>'
    expect(page.locator("svg.chart")).to_have_count(2)
    page.evaluate("window.notReloaded = true")
    for _ in ("ann", "bob"):
        assert visit(browser, image_url, click_url) == goal
    expect(page.locator('[data-total="impressions"]')).to_have_text("2")
    expect(page.locator('[data-total="clicks"]')).to_have_text("2")
    page.wait_for_function("() => document.querySelectorAll('[data-bar=\"clicks\"]')"
                           "[0].getAttribute('width') !== '0.0' || document.querySelectorAll("
                           "'[data-bar=\"clicks\"]')[1].getAttribute('width') !== '0.0'")
    assert chart_total(page, "impressions") == 2 and chart_total(page, "clicks") == 2
    assert page.evaluate("window.notReloaded") is True  # the charts moved without a reload
    more_traffic(image_url, click_url)  # rose gets clicked far more often
    expect(page.locator('[data-total="impressions"]')).to_have_text("42")
    expect(page.locator('[data-variant="1"] [data-leading-badge]')).to_be_visible()
    expect(page.locator('[data-variant="0"] [data-leading-badge]')).to_be_hidden()
    shoot(page, "experiments")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('[data-variant="1"]').get_by_role("button", name="Declare the winner").click()
    expect(page.get_by_text("Variant B is the winner")).to_be_visible()
    expect(page.locator(".variant.winner")).to_have_attribute("data-variant", "1")
    expect(page.locator('[data-variant="1"] [data-winner-badge]')).to_be_visible()
    expect(page.locator('[data-variant="0"] [data-winner-badge]')).to_be_hidden()
    page.get_by_role("link", name="Experiments").first.click()
    expect(page.locator("tbody tr")).to_contain_text("Variant B (declared)")


def test_a_live_banner_from_data_shows_its_picture_and_follows_pushes(
        page, server, tmp_path, shoot):
    sign_up(page)
    upload(page, tmp_path, CARD)
    page.get_by_role("link", name="Live banners").click()
    expect(page.get_by_text("No live banners yet")).to_be_visible()
    page.get_by_role("link", name="Create a live banner").click()
    page.get_by_label("Template").select_option(label="Price card")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("First data (JSON)").fill('{"Title": "Flash sale", "price": 19}')
    expect(page.locator("#map-title")).to_have_attribute("placeholder", "auto: Title")
    page.get_by_label("Name").fill("Deal of the day")
    page.get_by_role("button", name="Create the banner").click()
    expect(page.get_by_role("heading", name="Deal of the day")).to_be_visible()
    picture = page.locator("#banner-picture")
    expect(picture).to_have_js_property("complete", True)
    assert picture.evaluate("img => img.naturalWidth") == 480
    expect(page.locator('[data-field="status"]')).to_have_text("ok")
    snippet = page.locator("#embed-snippet").input_value()
    url = re.search(r'src="([^"]+)"', snippet).group(1)
    assert re.fullmatch(rf"{re.escape(server.url)}/live/\w+\.png", url)
    assert requests.get(url, timeout=10).headers["Content-Type"] == "image/png"
    before = picture.get_attribute("src")
    page.evaluate("window.notReloaded = true")
    pushed = requests.post(page.locator("#inbound-url").input_value(),
                           json={"title": "Last chance", "price": 9}, timeout=30)
    assert pushed.status_code in (200, 201), pushed.text
    page.wait_for_function("before => document.querySelector('#banner-picture').src !== before",
                           arg=before)
    expect(page.locator("#banner-data")).to_contain_text("Last chance")
    expect(picture).to_have_js_property("complete", True)
    assert page.evaluate("window.notReloaded") is True  # the picture changed without a reload
    shoot(page, "live-banners")
    page.get_by_role("link", name="Live banners").first.click()
    expect(page.locator("tr[data-banner] img")).to_have_js_property("complete", True)
    expect(page.locator("tr[data-banner]")).to_contain_text("Deal of the day")
