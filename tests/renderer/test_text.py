"""Text layout as a user sees it: sizes that fit, text that stays in its box, every script drawn
with real glyphs, in the right order, in colour where it should be."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import open_image
from PIL import Image, ImageDraw

from renderer import render, render_scene
from renderer.fonts import EMOJI_FACE, FontResolver, coverage, load_font
from renderer.pdf import rasterize_pdf
from renderer.scene import TextItem
from renderer.text import (
    ELLIPSIS,
    TextBox,
    bidi_levels,
    clusters,
    layout_text,
    measure,
    visual_order,
)

LONG = ("Pack my box with five dozen liquor jugs while the quick brown fox jumps over the lazy "
        "dog again and again")
BOX = (100, 80, 300, 120)  # x, y, width, height of the text layer in text_template()
# Zero-width characters that fonts need not map: HarfBuzz joins and hides them.
INVISIBLE = {0x200D, 0xFE0E, 0xFE0F, 0x200E, 0x200F}


@pytest.fixture(scope="module")
def chain():
    fonts = FontResolver()
    return fonts.chain(fonts.face("Noto Sans", 400, path="font"), 400)


def text_template(text: str, *, canvas=(600, 700), box=BOX, **props) -> dict:
    x, y, width, height = box
    layer = {"name": "t", "type": "text", "x": x, "y": y, "width": width, "height": height,
             "text": text, "size": 40, "min_size": 20, "color": "#000000", **props}
    return {"kind": "layered", "name": "text", "width": canvas[0], "height": canvas[1],
            "background": "#ffffff", "layers": [layer]}


def text_item(template: dict) -> TextItem:
    (item,) = render_scene(template, {}).items
    assert isinstance(item, TextItem)
    return item


def picture(template: dict, painter: str = "png") -> Image.Image:
    if painter == "pdf":
        return rasterize_pdf(render(template, {}, format="pdf").data)
    return open_image(render(template, {}, format="png").data).convert("RGB")


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of every pixel that is not (almost) white."""
    ys, xs = np.nonzero(np.asarray(image.convert("L")) < 245)
    assert xs.size, "nothing was drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def line_widths(runs) -> list[float]:
    widths: dict[float, float] = {}
    for run in runs:
        widths[run.baseline] = widths.get(run.baseline, 0.0) + run.width
    return list(widths.values())


def fits_at(text: str, chain, box: TextBox, size: float) -> bool:
    """Whether ``text`` fits ``box`` at ``size`` without cutting a word: laid out with no
    fitting at all, then checked against the box and max_lines."""
    free = TextBox(width=box.width, height=box.height, size=size, min_size=size,
                   fit="overflow", line_height=box.line_height,
                   letter_spacing=box.letter_spacing)
    laid = layout_text(text, chain, free)
    whole_words = " ".join(laid.lines).split() == text.split()
    lines_ok = box.max_lines is None or len(laid.lines) <= box.max_lines
    return whole_words and lines_ok and \
        len(laid.lines) * size * box.line_height <= box.height + 0.01


# --- fitting ----------------------------------------------------------------------------------

SHRINK_CASES = [
    ("The summer collection is here: light linen shirts for long evenings",
     TextBox(width=560, height=300, size=64, min_size=24, max_lines=4, line_height=1.12)),
    (LONG, TextBox(width=300, height=120, size=40, min_size=10)),
    (LONG, TextBox(width=300, height=120, size=60, min_size=8, max_lines=2, line_height=1.0)),
    ("Spaced out letters take more room, so the size goes down",
     TextBox(width=400, height=160, size=48, min_size=10, max_lines=3, letter_spacing=2)),
    ("Extraordinarily unbreakable vocabulary",
     TextBox(width=180, height=400, size=72, min_size=12, max_lines=3)),
    # one line whose width at 35 px is 214.73: the box is just wide enough for it
    ("Summer sale", TextBox(width=214.74, height=200, size=72, min_size=8, max_lines=1)),
    ("Short", TextBox(width=300, height=120, size=40, min_size=10)),
]


@pytest.mark.parametrize(("text", "box"), SHRINK_CASES)
def test_shrink_picks_the_largest_size_that_fits(chain, text, box):
    laid = layout_text(text, chain, box)
    assert laid.fits
    assert box.min_size <= laid.size <= box.size
    assert box.max_lines is None or len(laid.lines) <= box.max_lines
    assert len(laid.lines) * laid.size * box.line_height <= box.height + 0.01
    assert all(width <= box.width + 0.01 for width in line_widths(laid.runs))
    assert " ".join(laid.lines).split() == text.split()  # nothing cut, no word split
    assert fits_at(text, chain, box, laid.size)
    if laid.size < box.size:
        assert not fits_at(text, chain, box, laid.size + 0.5), \
            f"shrink chose {laid.size} px, but {laid.size + 0.5} px fits as well"


def test_shrink_keeps_the_size_when_the_text_fits(chain):
    laid = layout_text("Short", chain, SHRINK_CASES[-1][1])
    assert laid.size == 40
    assert laid.lines == ("Short",)


def test_shrink_cuts_with_an_ellipsis_when_even_min_size_does_not_fit(chain):
    box = TextBox(width=300, height=120, size=40, min_size=20, max_lines=2)
    laid = layout_text(LONG, chain, box)
    assert not laid.fits
    assert laid.size == 20
    assert len(laid.lines) == 2
    assert laid.lines[-1].endswith(ELLIPSIS)
    assert all(width <= box.width + 0.01 for width in line_widths(laid.runs))


def test_shrink_through_render_scene_fits_the_scaled_box(load_demo):
    card = load_demo("card")
    title = "A much longer product title that has to shrink a lot before it fits in four lines"
    sizes = []
    for scale in (1, 2):
        scene = render_scene(card, {"title": title}, scale=scale)
        item = next(i for i in scene.items if getattr(i, "common", None)
                    and i.common.name == "title")
        box = item.common.box
        assert 24 * scale <= item.size < 64 * scale
        assert 1 < len(item.lines) <= 4
        assert len(item.lines) * item.size * 1.12 <= box.height + 0.01
        assert all(width <= box.width + 0.01 for width in line_widths(item.runs))
        assert " ".join(item.lines).split() == title.split()
        sizes.append(item.size)
    # the same layout at twice the pixels: the size doubles, up to the 0.5 px search step
    assert 2 * sizes[0] <= sizes[1] < 2 * sizes[0] + 1


@pytest.mark.parametrize("max_lines", [None, 2, 1])
def test_truncate_ends_with_an_ellipsis_and_stays_inside(chain, max_lines):
    box = TextBox(width=300, height=150, size=40, min_size=40, fit="truncate",
                  max_lines=max_lines)
    laid = layout_text(LONG, chain, box)
    assert not laid.fits
    assert laid.size == 40
    assert laid.lines[-1].endswith(ELLIPSIS)
    assert len(laid.lines) <= (max_lines or 99)
    assert len(laid.lines) * 40 * box.line_height <= box.height + 0.01
    assert all(width <= box.width + 0.01 for width in line_widths(laid.runs))
    kept = " ".join(laid.lines)[:-1]
    assert LONG.startswith(kept)


def test_truncate_leaves_text_that_fits_alone(chain):
    box = TextBox(width=300, height=150, size=40, min_size=40, fit="truncate", max_lines=2)
    laid = layout_text("Fits fine", chain, box)
    assert laid.fits
    assert laid.lines == ("Fits fine",)


def test_overflow_keeps_all_the_text(chain):
    box = TextBox(width=300, height=120, size=40, min_size=10, fit="overflow", max_lines=2)
    laid = layout_text(LONG, chain, box)
    assert laid.size == 40
    assert " ".join(laid.lines).split() == LONG.split()
    assert len(laid.lines) * 40 * box.line_height > box.height  # it does run out of the box


@pytest.mark.parametrize("painter", ["png", "pdf"])
@pytest.mark.parametrize(("fit", "max_lines"), [("shrink", None), ("shrink", 2),
                                                ("truncate", None), ("truncate", 2)])
def test_text_never_leaves_its_box(fit, max_lines, painter):
    template = text_template(LONG + " " + "Unbreakablewordthatislongerthanthebox",
                             fit=fit, max_lines=max_lines)
    left, top, right, bottom = ink_box(picture(template, painter))
    x, y, width, height = BOX
    assert x <= left and right <= x + width
    assert y <= top and bottom <= y + height


@pytest.mark.parametrize("painter", ["png", "pdf"])
def test_overflow_text_is_drawn_in_full_outside_its_box(painter):
    template = text_template(LONG, fit="overflow")
    item = text_item(template)
    assert " ".join(item.lines).split() == LONG.split()
    left, top, right, bottom = ink_box(picture(template, painter))
    x, y, width, height = BOX
    assert bottom > y + height  # ink outside the box is expected here
    last_baseline = max(run.baseline for run in item.runs)
    assert y + last_baseline < 700, "the test canvas must hold every line"
    # ... and every line is drawn, the last one ("and again") included
    assert bottom >= y + last_baseline, (
        f"ink stops at y={bottom}, the last line's baseline is at y={y + last_baseline:.0f}")


# --- alignment, spacing, transform --------------------------------------------------------------

@pytest.mark.parametrize("align", ["left", "center", "right"])
@pytest.mark.parametrize("valign", ["top", "middle", "bottom"])
def test_align_and_valign_place_the_ink(align, valign):
    left, top, right, bottom = ink_box(picture(text_template("Hi", align=align, valign=valign)))
    x, y, width, height = BOX
    slack = 40 * 0.35  # side bearings, half-leading and the descent below "Hi"
    if align == "left":
        assert 0 <= left - x <= 6
    elif align == "right":
        assert 0 <= x + width - right <= 6
    else:
        assert abs((left + right) / 2 - (x + width / 2)) <= 3
    if valign == "top":
        assert 0 <= top - y <= slack
    elif valign == "bottom":
        assert 0 <= y + height - bottom <= slack
    else:
        assert abs((top + bottom) / 2 - (y + height / 2)) <= 4


def test_line_height_spaces_the_lines():
    heights = {}
    for line_height in (1.0, 2.0):
        template = text_template("Ab\nAb", fit="overflow", line_height=line_height,
                                 box=(100, 80, 300, 300))
        baselines = sorted({run.baseline for run in text_item(template).runs})
        assert baselines[1] - baselines[0] == pytest.approx(40 * line_height)
        _, top, _, bottom = ink_box(picture(template))
        heights[line_height] = bottom - top
    assert heights[2.0] - heights[1.0] == pytest.approx(40, abs=2)


@pytest.mark.parametrize("text", ["HELLO", "שלום"])
def test_letter_spacing_widens_the_ink(text):
    widths = {}
    for spacing in (0, 10):
        template = text_template(text, letter_spacing=spacing)
        left, _, right, _ = ink_box(picture(template))
        widths[spacing] = right - left
        (run,) = text_item(template).runs
        assert left == pytest.approx(BOX[0] + run.x, abs=4)  # the ink fills the run's place
        assert right == pytest.approx(BOX[0] + run.x + run.width - spacing, abs=4)
    # a gap between every two letters; the last letter's trailing space carries no ink
    assert widths[10] - widths[0] == pytest.approx(10 * (len(text) - 1), abs=3)


@pytest.mark.parametrize(("transform", "expected"), [
    ("upper", "HELLO WORLD, ÉTÉ"), ("lower", "hello world, été"),
    ("capitalize", "Hello WOrld, Été"), ("none", "hello wOrld, été"),
])
def test_transform_changes_the_lines(transform, expected):
    item = text_item(text_template("hello wOrld, été", transform=transform, box=(0, 0, 600, 100)))
    assert item.lines == (expected,)


@pytest.mark.parametrize(("text", "expected"), [
    ("new line\nnew word", ("New Line", "New Word")),  # every word, on every line
    ("(quoted) «words»", ("(Quoted) «Words»",)),  # CSS: the first letter, not the bracket
])
def test_capitalize_capitalizes_every_word(text, expected):
    item = text_item(text_template(text, transform="capitalize", box=(0, 0, 600, 200)))
    assert item.lines == expected


# --- scripts -------------------------------------------------------------------------------------

SCRIPTS = {
    "arabic": "مرحبا بالعالم! الخصم 25% اليوم فقط",
    "hebrew": "שלום עולם — מבצע 3 ב-100 ₪",
    "chinese": "你好，世界。夏季系列",
    "japanese": "こんにちは世界。カタカナ",
    "korean": "안녕하세요 세계",
    "devanagari": "नमस्ते दुनिया — आज की विशेष पेशकश",
    "emoji": "👍🏽 👩‍👩‍👧 🏳️‍🌈 🇫🇷 ❤️ 1️⃣ 🎉",
    "mixed": "Price 49 € — مرحبا — 你好 👍🏽",
}


@pytest.mark.parametrize("text", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_every_cluster_lands_in_a_face_that_has_its_glyphs(chain, text):
    laid = layout_text(text, chain, TextBox(width=2000, height=200, size=40, min_size=40))
    assert "".join(run.text for run in laid.runs).replace(" ", "") != ""
    drawn = sorted("".join(run.text for run in laid.runs))
    assert drawn == sorted(text)  # every character is placed, once
    for run in laid.runs:
        missing = [f"U+{ord(ch):04X}" for ch in run.text
                   if ord(ch) not in INVISIBLE and ord(ch) not in coverage(run.face)]
        assert not missing, f"{run.text!r} in {run.face.path} would draw tofu for {missing}"
        assert run.emoji == (run.face == EMOJI_FACE)
    emoji_clusters = [c for c in clusters(text) if ord(c[0]) >= 0x1F000 or "\ufe0f" in c]
    emoji_runs = "".join(run.text for run in laid.runs if run.face == EMOJI_FACE)
    assert all(c in emoji_runs for c in emoji_clusters)


@pytest.mark.parametrize("emoji", ["👍🏽", "🏳️‍🌈", "🇫🇷", "🎉", "❤️"])
def test_emoji_are_drawn_in_colour(emoji):
    image = picture(text_template(emoji, size=64, box=(20, 20, 200, 100), canvas=(240, 140)))
    ink = np.asarray(image.convert("L")) < 245
    saturation = np.asarray(image.convert("HSV"))[..., 1][ink]
    assert ink.sum() > 500
    assert saturation.mean() > 60, "drawn grey: the colour emoji face was not used"


@pytest.mark.parametrize("sequence", ["👩‍👩‍👧", "🏳️‍🌈", "🇫🇷", "👍🏽", "🧑🏽‍🚀"])
def test_an_emoji_sequence_is_one_cluster_and_one_glyph(chain, sequence):
    assert clusters(sequence) == [sequence]
    box = TextBox(width=1000, height=200, size=64, min_size=64)
    (run,) = layout_text(sequence, chain, box).runs
    single = measure("👩", EMOJI_FACE, 64, False, 0.0)
    assert run.face == EMOJI_FACE and run.emoji
    assert run.width == pytest.approx(single, rel=0.05)  # one advance, not two or three
    template = text_template(sequence, size=64, box=(20, 20, 600, 100), canvas=(640, 140))
    one = ink_box(picture(text_template("👩", size=64, box=(20, 20, 600, 100),
                                        canvas=(640, 140))))
    drawn = ink_box(picture(template))
    assert drawn[2] - drawn[0] <= 1.3 * (one[2] - one[0])


def test_emoji_sequences_in_a_line_each_take_one_advance(chain):
    text = "👩‍👩‍👧 🏳️‍🌈 🇫🇷 👍🏽"
    laid = layout_text(text, chain, TextBox(width=2000, height=200, size=64, min_size=64))
    emoji = [run for run in laid.runs if run.emoji]
    assert [run.text for run in emoji] == text.split(" ")
    single = measure("👩", EMOJI_FACE, 64, False, 0.0)
    assert all(run.width == pytest.approx(single, rel=0.05) for run in emoji)


def draw_with_pillow(text: str, run, direction: str) -> Image.Image:
    """What Pillow with raqm (HarfBuzz) draws for ``text`` at the run's place."""
    image = Image.new("RGB", (600, 160), "white")
    ImageDraw.Draw(image).text((20 + run.x, 20 + run.baseline), text, fill="black",
                               font=load_font(run.face, run.size), anchor="ls",
                               direction=direction)
    return image


@pytest.mark.parametrize(("text", "direction"), [
    ("مرحبا", "rtl"), ("بالعالم", "rtl"), ("שלום", "rtl"), ("नमस्ते", "ltr"),
])
def test_complex_scripts_are_shaped_as_harfbuzz_shapes_them(text, direction):
    template = text_template(text, size=64, box=(20, 20, 560, 120), canvas=(600, 160))
    (run,) = text_item(template).runs
    assert run.direction == direction
    drawn = np.asarray(picture(template), dtype=np.int16)
    expected = np.asarray(draw_with_pillow(text, run, direction), dtype=np.int16)
    assert np.abs(drawn - expected).mean() < 0.5


def test_arabic_letters_join(chain):
    word = "مرحبا"
    box = TextBox(width=1000, height=200, size=64, min_size=64)
    (run,) = layout_text(word, chain, box).runs
    isolated = sum(measure(letter, run.face, 64, True, 0.0) for letter in word)
    assert run.width < 0.9 * isolated  # joined forms are narrower than isolated ones
    ink = ink_box(picture(text_template(word, size=64, box=(20, 20, 560, 120),
                                        canvas=(600, 160))))
    assert ink[2] - ink[0] < 0.9 * isolated


def run_positions(laid) -> dict[str, float]:
    """The x of each run that is not just spaces, keyed by its text without spaces."""
    positions = {}
    for run in laid.runs:
        stripped = run.text.strip()
        if stripped:
            positions[stripped] = run.x
    return positions


@pytest.mark.parametrize(("text", "left_to_right"), [
    ("abc مرحبا", ["abc", "مرحبا"]),  # LTR paragraph: logical order
    ("\u200fabc مرحبا", ["مرحبا", "abc"]),  # the same text in an RTL paragraph flips
    ("مرحبا abc", ["abc", "مرحبا"]),
    ("abc مرحبا def", ["abc", "مرحبا", "def"]),
    ("مرحبا abc سلام", ["سلام", "abc", "مرحبا"]),
    ("שלום 123 עולם", ["עולם", "123", "שלום"]),
])
def test_bidi_runs_are_placed_in_visual_order(chain, text, left_to_right):
    laid = layout_text(text, chain, TextBox(width=1000, height=100, size=40, min_size=40))
    positions = run_positions(laid)
    assert sorted(left_to_right, key=positions.__getitem__) == left_to_right
    xs = [run.x for run in laid.runs]
    assert xs == sorted(xs)  # runs come in visual order, without overlapping
    for before, after in zip(laid.runs, laid.runs[1:], strict=False):
        assert after.x == pytest.approx(before.x + before.width)


def test_mixed_line_draws_latin_left_of_arabic():
    """The same check on pixels: the Latin run's ink is at the left in an LTR paragraph."""
    template = text_template("abc مرحبا", size=48, box=(20, 20, 560, 100), canvas=(600, 140))
    item = text_item(template)
    latin = next(run for run in item.runs if "abc" in run.text)
    arabic = next(run for run in item.runs if "مرحبا" in run.text)
    image = picture(template)
    ink = np.asarray(image.convert("L")) < 245
    latin_cols = ink[:, 20 + round(latin.x): 20 + round(latin.x + latin.width)].sum()
    arabic_cols = ink[:, 20 + round(arabic.x): 20 + round(arabic.x + arabic.width)].sum()
    assert latin.x < arabic.x and latin_cols > 100 and arabic_cols > 100


# --- line breaking --------------------------------------------------------------------------------

CJK = "我们的夏季系列已经上市，轻薄的亚麻衬衫适合漫长的夜晚。欢迎光临，祝您购物愉快。" \
      "今日限定、全品二割引！お早めにどうぞ。"


@pytest.mark.parametrize("width", range(90, 600, 23))
def test_cjk_breaks_between_characters_and_keeps_punctuation_off_line_starts(chain, width):
    box = TextBox(width=width, height=5000, size=24, min_size=24, fit="overflow")
    laid = layout_text(CJK, chain, box)
    assert len(laid.lines) > 1  # there are no spaces, and yet it breaks
    assert "".join(laid.lines) == CJK
    for line in laid.lines[1:]:
        assert line[0] not in "。，、！", f"line starts with punctuation: {laid.lines}"
    assert all(w <= box.width + 0.01 for w in line_widths(laid.runs))
    # greedy: a line is broken only where the next character would not fit (punctuation may
    # pull one character along)
    for line, following in zip(laid.lines, laid.lines[1:], strict=False):
        extra = measure(line + following[:1], laid.runs[0].face, 24, False, 0.0)
        assert extra > box.width or following[:1] in "。，、！" or following[1:2] in "。，、！"


@pytest.mark.parametrize("width", range(100, 400, 9))
def test_no_break_spaces_hold(chain, width):
    text = "Only 44,10\u00a0€ and 100\u00a0km today"
    box = TextBox(width=width, height=5000, size=28, min_size=28, fit="overflow")
    laid = layout_text(text, chain, box)
    assert all(not line.startswith(("€", "km")) for line in laid.lines), laid.lines


@pytest.mark.parametrize("width", range(150, 620, 37))
def test_latin_words_are_never_split_when_they_fit(chain, width):
    box = TextBox(width=width, height=5000, size=28, min_size=28, fit="overflow")
    laid = layout_text(LONG, chain, box)
    assert " ".join(laid.lines).split() == LONG.split()
    assert all(w <= box.width + 0.01 for w in line_widths(laid.runs))


def test_a_word_wider_than_the_box_is_split_between_clusters_in_overflow(chain):
    word = "Supercalifragilisticexpialidocious"
    box = TextBox(width=120, height=1000, size=30, min_size=30, fit="overflow")
    laid = layout_text(word, chain, box)
    assert "".join(laid.lines) == word and len(laid.lines) > 1
    assert all(w <= box.width + 0.01 for w in line_widths(laid.runs))


# --- bidi internals ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("abc", (0, [0, 0, 0])),
    ("אבג", (1, [1, 1, 1])),
    ("abc אבג", (0, [0, 0, 0, 0, 1, 1, 1])),
    ("אבג abc", (1, [1, 1, 1, 1, 2, 2, 2])),
    ("אבג 123", (1, [1, 1, 1, 1, 2, 2, 2])),
    ("1,000 אבג", (1, [2, 2, 2, 2, 2, 1, 1, 1, 1])),
    ("מחיר $49", (1, [1, 1, 1, 1, 1, 2, 2, 2])),
    ("مرحبا 25", (1, [1, 1, 1, 1, 1, 1, 2, 2])),
    ("abc مرحبا 25", (0, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2])),
    ("abc (אבג) def", (0, [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0])),
    ("123 !?", (0, [0, 0, 0, 0, 0, 0])),
])
def test_bidi_levels(text, expected):
    assert bidi_levels(text) == expected


@pytest.mark.parametrize(("levels", "order"), [
    ([], []),
    ([0, 0, 0], [0, 1, 2]),
    ([1, 1, 1], [2, 1, 0]),
    ([0, 0, 1, 1, 0], [0, 1, 3, 2, 4]),
    ([1, 1, 2, 2, 1], [4, 2, 3, 1, 0]),
    ([0, 1, 2, 2, 1, 0], [0, 4, 2, 3, 1, 5]),
])
def test_visual_order(levels, order):
    assert visual_order(levels) == order
