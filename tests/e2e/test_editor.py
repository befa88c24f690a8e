"""The visual editor in a real browser against the running platform: open an uploaded template,
select a layer on the canvas, drag it and resize it with the mouse, change its colour in the
properties panel, undo and redo, save as a new version; the version holds exactly that, and
the canvas is the server's render of it. And a session that ends mid-edit loses nothing."""

from __future__ import annotations

import json
import os
import re

from playwright.sync_api import expect
from test_marketer_flow import CARD, sign_up

from webapp.extensions import db
from webapp.models import Template, TemplateVersion

# a hash of the canvas's pixels, read back from the <img> the server's PNG was drawn into
PIXELS = """async (img) => {
  await img.decode();
  const canvas = Object.assign(document.createElement("canvas"),
                               {width: img.naturalWidth, height: img.naturalHeight});
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0;
  for (let i = 0; i < data.length; i++) h = (Math.imul(h, 31) + data[i]) >>> 0;
  return [canvas.width, canvas.height, h];
}"""


def upload(page, tmp_path) -> int:
    path = tmp_path / "price-card.json"
    path.write_text(json.dumps(CARD))
    page.get_by_role("link", name="Templates").first.click()
    page.get_by_label("Template file").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", name="Price card")).to_be_visible()
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def open_editor(page) -> None:
    page.get_by_role("link", name="Templates").first.click()
    page.locator(".tile").filter(has_text="Price card").get_by_role("link", name="Edit").click()
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")


def canvas(page):
    return page.locator("[data-ed-image]")


def wait_for_new_picture(page, before: str) -> None:
    page.wait_for_function(
        "before => document.querySelector('[data-ed-image]').src !== before && "
        "document.querySelector('#editor').dataset.preview === 'ready'", arg=before)


def drag(page, locator, dx: float, dy: float) -> None:
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


def field(page, name: str) -> int:
    return int(page.locator(f"#ed-prop-{name}").input_value())


def test_select_drag_resize_recolour_and_save_a_new_version(page, server, tmp_path, shoot):
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    sign_up(page)
    tid = upload(page, tmp_path)
    open_editor(page)
    expect(page).to_have_url(re.compile(rf"/templates/{tid}/edit$"))
    first = canvas(page).evaluate(PIXELS)
    assert first[:2] == [480, 252]

    # select the title on the canvas: the list and the properties panel follow
    title_box = page.locator('.ed-box[data-layer="title"]')
    title_box.click()
    expect(title_box).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator('.ed-layer[data-layer="title"]')).to_have_class(re.compile("selected"))
    assert (field(page, "x"), field(page, "y"), field(page, "width"), field(page, "height")) \
        == (24, 24, 432, 150)
    scale = 480 / page.locator("[data-ed-overlay]").bounding_box()["width"]

    # drag it by 60 x 30 screen pixels
    src = canvas(page).get_attribute("src")
    drag(page, title_box, 60, 30)
    wait_for_new_picture(page, src)
    moved = (field(page, "x"), field(page, "y"))
    assert abs(moved[0] - (24 + 60 * scale)) <= 2 and abs(moved[1] - (24 + 30 * scale)) <= 2

    # resize it from the bottom-right handle: the top-left corner stays
    src = canvas(page).get_attribute("src")
    drag(page, title_box.locator('[data-handle="se"]'), -80, -40)
    wait_for_new_picture(page, src)
    size = (field(page, "width"), field(page, "height"))
    assert (field(page, "x"), field(page, "y")) == moved
    assert abs(size[0] - (432 - 80 * scale)) <= 2 and abs(size[1] - (150 - 40 * scale)) <= 2

    # the keyboard: nudge, then undo the nudge
    page.locator("[data-ed-overlay]").focus()
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#ed-prop-x")).to_have_value(str(moved[0] + 10))
    page.keyboard.press("Control+z")
    expect(page.locator("#ed-prop-x")).to_have_value(str(moved[0]))

    # a colour in the properties panel
    src = canvas(page).get_attribute("src")
    page.get_by_label("Color", exact=True).fill("#facc15")
    wait_for_new_picture(page, src)
    if os.environ.get("PIXELMERGE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1440, "height": 860})
        page.evaluate("window.scrollTo(0, 0); document.querySelector('.ed-props').scrollTop = 0")
        shoot(page, "editor")
    after = canvas(page).evaluate(PIXELS)
    assert after[:2] == [480, 252] and after[2] != first[2]

    # undo takes the colour back (the picture from the page's cache), redo brings it again
    page.locator("[data-ed-overlay]").focus()
    page.keyboard.press("Control+z")
    expect(page.locator("#ed-prop-color")).to_have_value("#ffffff")
    page.get_by_role("button", name="Redo").click()
    expect(page.locator("#ed-prop-color")).to_have_value("#facc15")
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")

    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-status]")).to_have_text("Saved as version 2.")
    expect(page.locator("[data-ed-version]")).to_have_text("version 2")
    with server.app.app_context():
        row = db.session.get(Template, tid)
        version = db.session.scalar(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid, TemplateVersion.version == 2))
        assert row.current_version == 2
        title = next(layer for layer in json.loads(version.content)["layers"]
                     if layer["name"] == "title")
    assert (title["x"], title["y"], title["width"], title["height"]) == (*moved, *size)
    assert title["color"] == "#facc15"
    # what the editor showed is what the server renders for the saved version
    saved = page.evaluate_handle("""async (url) => {
      const img = new Image();
      img.src = URL.createObjectURL(await (await fetch(url)).blob());
      return img;
    }""", f"/templates/{tid}/preview?version=2")
    assert saved.evaluate(PIXELS) == canvas(page).evaluate(PIXELS)
    assert page.evaluate("localStorage.length") == 0  # nothing unsaved is kept
    assert errors == []


def test_a_session_that_ends_mid_edit_keeps_the_working_copy(page, server, tmp_path):
    sign_up(page)
    tid = upload(page, tmp_path)
    open_editor(page)
    page.locator('.ed-layer[data-layer="band"] .ed-layer-name').click()
    page.get_by_label("Height", exact=True).fill("40")
    expect(page.locator("#editor")).to_have_attribute("data-dirty", "true")
    page.context.clear_cookies()  # the session ends
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-signed-out]")).to_be_visible()
    with server.app.app_context():
        assert db.session.get(Template, tid).current_version == 1
    page.locator("[data-ed-signed-out]").get_by_role("link", name="sign in again").click()
    page.get_by_label("Email").fill("maya@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/templates/{tid}/edit$"))
    expect(page.locator("[data-ed-restore]")).to_contain_text("unsaved changes")
    page.get_by_role("button", name="Restore them").click()
    page.locator('.ed-layer[data-layer="band"] .ed-layer-name').click()
    expect(page.get_by_label("Height", exact=True)).to_have_value("40")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-status]")).to_have_text("Saved as version 2.")
    with server.app.app_context():
        version = db.session.scalar(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid, TemplateVersion.version == 2))
        band = json.loads(version.content)["layers"][0]
    assert band["name"] == "band" and band["height"] == 40


def test_a_broken_expression_is_shown_beside_its_field_and_not_saved(page, server, tmp_path):
    sign_up(page)
    tid = upload(page, tmp_path)
    open_editor(page)
    page.locator('.ed-box[data-layer="title"]').click()
    page.get_by_label("Text", exact=True).fill("{{ title | }}")
    beside = page.locator('.ed-field[data-prop="text"] .error')
    expect(beside).to_contain_text("layers[1].text: syntax error")
    expect(page.locator("#editor")).to_have_attribute("data-preview", "error")
    expect(page.locator('.ed-layer[data-layer="title"]')).to_have_class(re.compile("has-error"))
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-error-text]")).to_contain_text("Not saved: layers[1].text")
    with server.app.app_context():
        assert db.session.get(Template, tid).current_version == 1
    page.get_by_label("Text", exact=True).fill("{{ title | upper }}")
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")
    expect(beside).to_be_hidden()


def test_add_a_layer_bind_a_property_and_move_a_layer_in_one_size_only(page, server, tmp_path):
    story = {**CARD, "name": "Story card", "sizes": {"story": {
        "width": 252, "height": 480, "layers": {"title": {"y": 100}}}}}
    path = tmp_path / "story.json"
    path.write_text(json.dumps(story))
    sign_up(page)
    page.get_by_role("link", name="Templates").first.click()
    page.get_by_label("Template file").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    tid = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.goto(f"/templates/{tid}/edit")
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")

    page.get_by_role("button", name="Rectangle").click()
    expect(page.locator(".ed-layer")).to_have_count(4)
    expect(page.locator('.ed-box[data-layer="rect 1"]')).to_have_class(re.compile("selected"))

    # bind the title's text: a variable at the caret, then a filter inside the expression
    page.locator('.ed-layer[data-layer="title"] .ed-layer-name').click()  # under the new box
    text = page.get_by_label("Text", exact=True)
    text.evaluate("t => t.setSelectionRange(t.value.length, t.value.length)")
    page.get_by_role("button", name="Bind text to data").click()
    page.get_by_role("menuitem", name=re.compile(r"^price")).click()
    expect(text).to_have_value("{{ title }}{{ price }}")
    page.get_by_role("button", name="Bind text to data").click()
    page.get_by_role("menuitem", name="| upper").click()
    expect(text).to_have_value("{{ title }}{{ price | upper }}")

    # in the story size, a drag moves the title of that size only
    page.get_by_label("Canvas size").select_option("story")
    page.wait_for_function("document.querySelector('[data-ed-image]').naturalWidth === 252")
    expect(page.locator("#editor")).to_have_attribute("data-preview", "ready")
    before = page.locator("#ed-prop-y").input_value()
    assert before == "100"
    drag(page, page.locator('.ed-box[data-layer="title"]'), 0, 40)
    expect(page.locator("#ed-prop-y")).not_to_have_value("100")
    moved = int(page.locator("#ed-prop-y").input_value())
    expect(page.locator('.ed-field[data-prop="y"] label small')).to_have_text("this size")

    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("[data-ed-status]")).to_have_text("Saved as version 2.")
    with server.app.app_context():
        version = db.session.scalar(db.select(TemplateVersion).where(
            TemplateVersion.template_id == tid, TemplateVersion.version == 2))
        content = json.loads(version.content)
    layers = {layer["name"]: layer for layer in content["layers"]}
    assert list(layers) == ["band", "title", "price", "rect 1"]
    assert layers["rect 1"]["type"] == "rect"
    assert layers["title"]["text"] == "{{ title }}{{ price | upper }}"
    assert layers["title"]["y"] == 24  # the default size is where it was
    assert content["sizes"]["story"]["layers"]["title"] == {"y": moved} and moved > 100
