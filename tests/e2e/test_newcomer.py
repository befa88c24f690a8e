"""Issue 7's "Done when", in a real browser with no API calls and no files: someone who has never
seen Pixelmerge signs up, makes a template from a blank card, binds a text layer to a variable
in the editor (the { } helper's "New variable"), moves it and saves; then connects their sheet
(the Sheets emulator), binds the template to it, presses Sync now and sees images appear in the
sheet, each row's picture different."""

from __future__ import annotations

import io
import json
import re

import requests
from PIL import Image
from playwright.sync_api import expect
from test_editor import PIXELS, canvas, drag, field, wait_for_new_picture
from test_marketer_flow import add_sheet_source, bind, sign_up

from webapp.extensions import db
from webapp.models import Template, TemplateVersion, User

HEADER = ["SKU", "Title", "Price"]
# rows 1 and 2 differ only in the price, rows 2 and 3 only in the title
ROWS = [["A-1", "Linen shirt", "$49"], ["A-2", "Linen shirt", "$39"], ["A-3", "Canvas tote", "$39"]]


def new_blank_card(page, shoot) -> int:
    page.get_by_role("link", name="Templates").first.click()
    expect(page.get_by_text("No templates yet")).to_be_visible()
    page.get_by_role("link", name="New template").first.click()
    expect(page.get_by_role("heading", name="New template")).to_be_visible()
    blank = page.get_by_role("radio", name=re.compile(r"^Blank card"))
    expect(blank).to_be_checked()
    # the size fields follow the choices: a custom size asks for width and height, a starter
    # keeps its own size
    width = page.get_by_label("Width (px)")
    expect(width).to_be_hidden()
    page.get_by_label("Size", exact=True).select_option("custom")
    expect(width).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"^Product card")).check()
    expect(page.get_by_label("Size", exact=True)).to_be_hidden()
    blank.check()
    page.get_by_label("Size", exact=True).select_option(label="Social card · 1200×630")
    expect(width).to_be_hidden()
    page.get_by_label("Name").fill("Price card")
    shoot(page, "new-template")
    # a name is needed, and the page says so beside the field
    page.get_by_label("Name").fill(" ")
    page.get_by_role("button", name="Create and open the editor").click()
    expect(page.locator("#name-error")).to_have_text("Give the template a name.")
    expect(page.get_by_role("radio", name=re.compile(r"^Blank card"))).to_be_checked()
    page.get_by_label("Name").fill("Price card")
    page.get_by_role("button", name="Create and open the editor").click()
    expect(page).to_have_url(re.compile(r"/templates/\d+/edit$"))
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")
    return int(page.url.rsplit("/", 2)[1])


def add_a_price(page) -> tuple[int, int]:
    """A new text layer bound to a new variable ``price``, moved down: its (x, y)."""
    before = canvas(page).get_attribute("src")
    page.get_by_role("button", name="Text", exact=True).click()
    box = page.locator('.ed-box[data-layer="text 1"]')
    expect(box).to_have_class(re.compile(r"\bselected\b"))
    wait_for_new_picture(page, before)
    text = page.get_by_label("Text", exact=True)
    expect(text).to_have_value("Your text")
    text.select_text()
    page.get_by_role("button", name="Bind text to data").click()
    name = page.get_by_label("New variable", exact=True)
    name.fill("2 for 1")
    name.press("Enter")
    expect(page.locator("#ed-new-variable-error")).to_have_text(
        "Letters, digits and _, not starting with a digit.")
    before = canvas(page).get_attribute("src")
    name.fill("price")
    page.locator(".ed-menu").get_by_role("button", name="Add").click()
    expect(text).to_have_value("{{ price }}")
    expect(page.locator("#ed-var-price")).to_have_value("Price")  # declared, with a sample
    wait_for_new_picture(page, before)
    start = (field(page, "x"), field(page, "y"))
    before = canvas(page).get_attribute("src")
    drag(page, box, -40, 40)
    wait_for_new_picture(page, before)
    moved = (field(page, "x"), field(page, "y"))
    assert moved[0] < start[0] - 40 and moved[1] > start[1] + 40
    assert moved[1] + field(page, "height") <= 630  # still on the card
    return moved


def saved_content(server, tid: int, number: int) -> tuple[dict, int]:
    with server.app.app_context():
        version = db.session.scalar(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid, TemplateVersion.version == number))
        owner = db.session.scalar(db.select(User).where(User.email == "maya@example.com"))
        assert db.session.get(Template, tid).workspace_id == owner.workspace.id
        return json.loads(version.content), db.session.get(Template, tid).current_version


def test_a_newcomer_designs_a_card_connects_a_sheet_and_sees_images(page, server, emulator,
                                                                      shoot):
    problems = []
    page.on("pageerror", lambda error: problems.append(error))
    spreadsheet = emulator.create_spreadsheet(title="Catalogue",
                                              sheets={"Sheet1": [HEADER, *ROWS]})
    sign_up(page)
    tid = new_blank_card(page, shoot)
    first = canvas(page).evaluate(PIXELS)
    assert first[:2] == [1200, 630]
    moved = add_a_price(page)
    assert canvas(page).evaluate(PIXELS)[2] != first[2]
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-status]")).to_have_text("Saved as version 2.")
    content, current = saved_content(server, tid, 2)
    assert current == 2
    layers = {layer["name"]: layer for layer in content["layers"]}
    assert layers["title"]["text"] == "{{ title }}"
    assert layers["text 1"]["text"] == "{{ price }}"
    assert (layers["text 1"]["x"], layers["text 1"]["y"]) == moved
    assert content["variables"]["price"] == {"type": "text", "sample": "Price"}

    add_sheet_source(page, spreadsheet)
    bind(page)  # title -> Title and price -> Price, auto-mapped
    page.get_by_role("button", name="Sync now").click()
    progress = page.locator("#sync-progress")
    expect(progress).to_have_class(re.compile(r"\bdone\b"), timeout=60_000)
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#rows tbody tr")).to_have_count(3)

    values = emulator.values(spreadsheet["id"])
    assert values[0][:4] == [*HEADER, "Image"]
    pictures = []
    for row in values[1:]:
        assert row[3].startswith(server.url + "/r/"), row
        answer = requests.get(row[3], timeout=10)
        assert answer.headers["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(answer.content))
        assert image.format == "PNG" and image.size == (1200, 630)
        pictures.append(image.convert("RGBA").tobytes())
    assert len(set(pictures)) == 3  # the price changes row 2, the title row 3
    assert problems == []
