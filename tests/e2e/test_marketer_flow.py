"""A marketer's first session, in a real browser against the running platform: sign up,
upload a template, create and copy an API key, connect a sheet (the emulator), bind the
template to it, press Sync now and watch the progress bar finish, then find the sheet filled."""

from __future__ import annotations

import json
import re

import requests
from playwright.sync_api import expect

HEADER = ["SKU", "Title", "Price"]
CARD = {
    "name": "Price card", "width": 480, "height": 252, "background": "#0f172a",
    "variables": {"title": {"type": "text", "sample": "Summer sale"},
                  "price": {"type": "number", "sample": 49}},
    "layers": [
        {"name": "band", "type": "rect", "x": 0, "y": 196, "width": 480, "height": 56,
         "fill": "linear-gradient(90deg, #4f46e5, #db2777)"},
        {"name": "title", "type": "text", "x": 24, "y": 24, "width": 432, "height": 150,
         "text": "{{ title }}", "size": 56, "min_size": 20, "fit": "shrink",
         "weight": 700, "color": "#ffffff"},
        {"name": "price", "type": "text", "x": 24, "y": 204, "width": 432, "height": 40,
         "text": "{{ price | currency }}", "size": 30, "color": "#ffffff", "align": "right"},
    ],
}


def sign_up(page, email: str = "maya@example.com") -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("correct horse battery")
    page.get_by_label("Password again").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def upload_template(page, tmp_path) -> int:
    path = tmp_path / "price-card.json"
    path.write_text(json.dumps(CARD))
    page.get_by_role("link", name="Templates").first.click()
    expect(page.get_by_text("No templates yet")).to_be_visible()
    page.get_by_label("Template file").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", name="Price card")).to_be_visible()
    preview = page.locator("#preview-image")
    expect(preview).to_have_js_property("complete", True)
    assert preview.evaluate("img => img.naturalWidth") == 480
    # the preview follows the sample values as they are typed
    page.get_by_label("title").fill("Autumn deals")
    page.wait_for_function("document.querySelector('#preview-image').src.startsWith('blob:')")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def create_key(page, server) -> str:
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Zapier")
    page.get_by_label("sources — data sources and bindings").check()
    page.get_by_role("button", name="Create the key").click()
    shown = page.locator("#new-key-value")
    expect(shown).to_have_value(re.compile(r"^pm_"))
    page.locator("#new-key").get_by_role("button", name="Copy").click()
    expect(page.locator("#new-key").get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown.input_value()
    me = requests.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {copied}"},
                      timeout=10)
    assert me.status_code == 200 and sorted(me.json()["key"]["scopes"]) == [
        "render", "sources", "templates:read"]
    page.reload()  # shown once: gone after a reload
    expect(page.locator("#new-key")).to_have_count(0)
    return copied


def add_sheet_source(page, spreadsheet: dict) -> None:
    page.get_by_role("link", name="Data sources").click()
    page.get_by_role("link", name="Google Sheets").click()
    page.get_by_label("Name").fill("Catalogue")
    page.get_by_label("Spreadsheet").fill(spreadsheet["url"])
    page.get_by_label("Spreadsheet").blur()
    expect(page.get_by_text("has 1 tab(s): Sheet1")).to_be_visible()  # the worksheet picker
    page.get_by_role("button", name="Add the source").click()
    expect(page.get_by_text("Connected.")).to_be_visible()
    expect(page.locator("#preview-rows tbody tr")).to_have_count(3)


def bind(page) -> None:
    page.get_by_role("link", name="Bind a template").first.click()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("title", exact=True)).to_have_value("Title")  # auto-mapped
    expect(page.get_by_label("price", exact=True)).to_have_value("Price")
    page.get_by_label("Poll every (seconds)").fill("0")
    page.get_by_role("button", name="Create the binding").click()
    expect(page.get_by_text("Not synced yet")).to_be_visible()


def test_sign_up_template_key_sheet_binding_and_sync(page, server, emulator, tmp_path, shoot):
    rows = [["A-1", "Mug", "12"], ["A-2", "Tee", "25"], ["A-3", "Cap", "9.5"]]
    spreadsheet = emulator.create_spreadsheet(title="Catalogue", sheets={"Sheet1": [HEADER,
                                                                                 *rows]})
    sign_up(page)
    shoot(page, "dashboard-empty")
    upload_template(page, tmp_path)
    shoot(page, "template")
    create_key(page, server)
    add_sheet_source(page, spreadsheet)
    shoot(page, "source")
    bind(page)
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#sync-progress")).to_have_class(re.compile(r"\bdone\b"),
                                                         timeout=60_000)
    expect(page.locator("#sync-progress")).to_have_attribute("aria-valuenow", "100")
    assert page.evaluate("window.notReloaded") is True  # the bar moved without a reload
    expect(page.locator("#rows tbody tr")).to_have_count(3)  # the rows region refreshed
    expect(page.locator("#runs")).to_contain_text("completed")
    shoot(page, "binding")
    values = emulator.values(spreadsheet["id"])
    assert values[0] == [*HEADER, "Image", "Status", "Preview"]
    for row in values[1:]:
        assert row[3].startswith(server.url + "/r/") and row[4] == "done"
    assert requests.get(values[1][3], timeout=10).headers["Content-Type"] == "image/png"
    page.get_by_role("link", name="Templates").first.click()
    shoot(page, "templates")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".renders li")).to_have_count(3)
    shoot(page, "dashboard")
