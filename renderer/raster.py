"""The Pillow painter: draws a :class:`~renderer.scene.Scene` into an image.

Each item becomes a sprite (an RGBA picture of its box) that is cached by the item's value, so
an unchanged layer is never drawn twice. Canvases are cached too: the background, the canvas
before the first and the last layer that holds an expression, and the one before the first
layer that changed since the last render of the same template shape. A render whose data
changes only in its last layers starts from a copy of everything beneath them; a batch that
changes the title starts beneath the title.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .cache import ImageLRU
from .fonts import emoji_image, load_font
from .images import rounded_mask
from .scene import Color, ImageItem, Item, LinearGradient, Paint, QRItem, Scene, ShapeItem, TextItem
from .text import clusters, measure

_sprites = ImageLRU(384 * 1024 * 1024)
_canvases = ImageLRU(256 * 1024 * 1024)
_gradients = ImageLRU(128 * 1024 * 1024)
WHITE = (255, 255, 255, 255)


def paint(scene: Scene, *, transparent: bool = False) -> Image.Image:
    """RGBA when ``transparent``, otherwise an opaque RGB image.

    Opaque output is painted on an RGB canvas from the start: on an opaque canvas "over" is a
    paste with the sprite's alpha as mask, and it spares a full-canvas conversion per render."""
    items = scene.items
    cuts = _cut_points(items)
    kept = _kept_prefix(scene, transparent)
    if kept:
        cuts.add(kept)
    start, canvas = _cached_prefix(scene, transparent, cuts)
    for index in range(start, len(items) + 1):
        # a canvas above the items that changed last time would hold this render's data only
        if index in cuts and index > start and (kept is None or index <= kept):
            _canvases.put(_prefix_key(scene, transparent, index), canvas.copy())
        if index < len(items):
            _composite(canvas, items[index])
    return canvas


def _cut_points(items: list[Item]) -> set[int]:
    """Where to keep a snapshot: before the first and the last item that can change."""
    dynamic = [i for i, item in enumerate(items) if not item.common.static]
    if not dynamic:
        return {len(items)}
    return {dynamic[0], dynamic[-1]}


# The items (by hash) of the last render of each scene shape in this process.
_last_items: dict[tuple, tuple[int, ...]] = {}
_last_items_lock = threading.Lock()
_LAST_ITEMS_MAX = 1024


def _kept_prefix(scene: Scene, transparent: bool) -> int | None:
    """How many first items this render shares with the last one of the same shape (None for
    the first). Where the data changed last time is where it will likely change next — a batch
    changes the title, a live banner its price — so the canvas beneath that item is worth
    keeping, and the one beneath the last item holding an expression often is not (with the
    title changed, nobody will render that canvas again)."""
    hashes = tuple(map(hash, scene.items))
    # the items without expressions tell apart templates of one size and background
    fixed = tuple(h for h, item in zip(hashes, scene.items, strict=True) if item.common.static)
    shape = (scene.width, scene.height, scene.background, transparent, len(hashes), fixed)
    with _last_items_lock:
        last = _last_items.pop(shape, None)
        if len(_last_items) >= _LAST_ITEMS_MAX:
            _last_items.clear()
        _last_items[shape] = hashes
    if last is None:
        return None
    return next((i for i, (a, b) in enumerate(zip(hashes, last, strict=True)) if a != b),
                len(hashes))


def _prefix_key(scene: Scene, transparent: bool, index: int) -> tuple:
    return (scene.width, scene.height, scene.background, transparent, tuple(scene.items[:index]))


def _cached_prefix(scene: Scene, transparent: bool, cuts: set[int]) -> tuple[int, Image.Image]:
    """The longest cached canvas, or the background, which is cached too: when the first item
    can change (a photo placeholder), painting a gradient would be redone on every render."""
    for index in sorted(cuts | {0}, reverse=True):
        hit = _canvases.get(_prefix_key(scene, transparent, index))
        if hit is not None:
            return index, hit.copy()
    background = _background(scene, transparent)
    _canvases.put(_prefix_key(scene, transparent, 0), background.copy())
    return 0, background


def _background(scene: Scene, transparent: bool) -> Image.Image:
    size = (scene.width, scene.height)
    if transparent:
        if scene.background is None:
            return Image.new("RGBA", size, (0, 0, 0, 0))
        return fill_image(scene.background, size).copy()
    if scene.background is None:
        return Image.new("RGB", size, WHITE[:3])
    if isinstance(scene.background, Color) and scene.background.a == 255:
        return Image.new("RGB", size, scene.background.rgba[:3])
    base = Image.new("RGBA", size, WHITE)
    base.alpha_composite(fill_image(scene.background, size))
    return base.convert("RGB")


def fill_image(paint_: Paint, size: tuple[int, int]) -> Image.Image:
    if isinstance(paint_, Color):
        return Image.new("RGBA", size, paint_.rgba)
    key = (paint_, size)
    image = _gradients.get(key)
    if image is None:
        image = gradient_image(paint_, size)
        _gradients.put(key, image)
    return image


def gradient_image(gradient: LinearGradient, size: tuple[int, int]) -> Image.Image:
    """CSS linear-gradient geometry: the gradient line passes through the centre at ``angle``
    (0deg points up) and is just long enough for the corners to get the end colours."""
    width, height = size
    theta = math.radians(gradient.angle)
    dx, dy = math.sin(theta), -math.cos(theta)
    length = abs(width * dx) + abs(height * dy) or 1.0
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) * dx / length
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) * dy / length
    t = np.clip(ys[:, None] + xs[None, :] + 0.5, 0.0, 1.0)
    offsets = [s.offset for s in gradient.stops]
    # CSS interpolates premultiplied colours, so fading to transparent never darkens
    alpha = np.interp(t, offsets, [s.color.a for s in gradient.stops])
    channels = [np.interp(t, offsets, [s.color.rgba[c] * s.color.a / 255 for s in gradient.stops])
                for c in range(3)]
    safe = np.where(alpha > 0, alpha, 1.0) / 255
    colour = [np.clip(channel / safe, 0, 255) for channel in channels]
    pixels = np.rint(np.stack([*colour, alpha], axis=-1)).astype(np.uint8)
    return Image.fromarray(pixels, "RGBA")


# ---------------------------------------------------------------- compositing

def _composite(canvas: Image.Image, item: Item) -> None:
    cached = _sprites.get(item)
    if cached is None:
        cached = _finish(item, _sprite(item))
        _sprites.put(item, cached)
    sprite, x, y = cached
    _paste(canvas, sprite, x, y)


def _paste(canvas: Image.Image, sprite: Image.Image, x: int, y: int) -> None:
    """Composite ``sprite`` over ``canvas``, tolerating sprites hanging off any edge."""
    if canvas.mode == "RGB":  # opaque canvas: paste clips by itself
        canvas.paste(sprite, (x, y), sprite)
        return
    left, top = max(0, -x), max(0, -y)
    right = min(sprite.width, canvas.width - x)
    bottom = min(sprite.height, canvas.height - y)
    if right <= left or bottom <= top:
        return
    canvas.alpha_composite(sprite, dest=(x + left, y + top), source=(left, top, right, bottom))


def _finish(item: Item, drawn: tuple[Image.Image, float, float]) -> tuple[Image.Image, int, int]:
    """Opacity and rotation (about the box centre) applied to a drawn sprite."""
    sprite, x, y = drawn
    common = item.common
    if common.opacity < 1:
        alpha = sprite.getchannel("A").point(lambda a: round(a * common.opacity))
        sprite = sprite.copy()
        sprite.putalpha(alpha)
    if common.rotation % 360:
        cx, cy = x + sprite.width / 2, y + sprite.height / 2
        # a transparent margin lets the resampler smooth the outer edge too
        padded = Image.new("RGBA", (sprite.width + 4, sprite.height + 4), (0, 0, 0, 0))
        padded.paste(sprite, (2, 2))
        sprite = padded.rotate(-common.rotation, resample=Image.Resampling.BICUBIC, expand=True)
        x, y = cx - sprite.width / 2, cy - sprite.height / 2
    return sprite, round(x), round(y)


def _sprite(item: Item) -> tuple[Image.Image, float, float]:
    box = item.common.box
    if isinstance(item, TextItem):
        return _text_sprite(item)
    if isinstance(item, ImageItem):
        return item.image, box.x, box.y
    if isinstance(item, QRItem):
        return _qr_sprite(item), box.x, box.y
    return _shape_sprite(item), box.x, box.y


def _box_size(item: Item) -> tuple[int, int]:
    box = item.common.box
    return max(1, round(box.width)), max(1, round(box.height))


def _shape_sprite(item: ShapeItem) -> Image.Image:
    size = _box_size(item)
    ellipse = item.shape == "ellipse"
    rounded = ellipse or item.radius > 0
    sprite = Image.new("RGBA", size, (0, 0, 0, 0))
    if item.fill is not None:
        fill = fill_image(item.fill, size)
        if rounded:
            _masked_onto(sprite, fill, rounded_mask(*size, item.radius, ellipse))
        else:
            sprite = fill.copy()
    if item.stroke is not None and item.stroke_width > 0:
        ring = _ring(size, item.radius, ellipse, item.stroke_width)
        _masked_onto(sprite, Image.new("RGBA", size, item.stroke.rgba), ring)
    return sprite


def _masked_onto(sprite: Image.Image, layer: Image.Image, mask: Image.Image) -> None:
    piece = layer.copy()
    piece.putalpha(ImageChops.multiply(layer.getchannel("A"), mask))
    sprite.alpha_composite(piece)


def _ring(size: tuple[int, int], radius: float, ellipse: bool, width: float) -> Image.Image:
    """The stroke band, drawn inside the box (CSS border-box), anti-aliased."""
    outer = rounded_mask(*size, radius, ellipse)
    inset = round(width)
    inner_size = (size[0] - 2 * inset, size[1] - 2 * inset)
    if inner_size[0] <= 0 or inner_size[1] <= 0:
        return outer
    inner = Image.new("L", size, 0)
    inner.paste(rounded_mask(*inner_size, max(0.0, radius - width), ellipse), (inset, inset))
    return ImageChops.subtract(outer, inner)


def _qr_sprite(item: QRItem) -> Image.Image:
    size = _box_size(item)
    matrix = np.array(item.modules, dtype=bool)
    mask = Image.fromarray((matrix * 255).astype(np.uint8), "L")
    mask = mask.resize(size, Image.Resampling.NEAREST)
    light = item.light.rgba if item.light else (0, 0, 0, 0)
    sprite = Image.new("RGBA", size, light)
    sprite.paste(Image.new("RGBA", size, item.dark.rgba), (0, 0), mask)
    return sprite


# ---------------------------------------------------------------- text

def _text_sprite(item: TextItem) -> tuple[Image.Image, float, float]:
    box = item.common.box
    left, top, right, bottom = _text_bounds(item)
    sprite = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    origin = (-left, -top)
    if item.shadow is not None:
        _draw_shadow(sprite, item, origin)
    _draw_runs(sprite, item, origin, item.color, with_stroke=True)
    return sprite, box.x + left, box.y + top


def _text_bounds(item: TextItem) -> tuple[int, int, int, int]:
    """The sprite's extent relative to the box: the box itself when clipped; otherwise
    wherever the runs go, with room for ascenders, descenders, stroke and shadow."""
    width, height = round(item.common.box.width), round(item.common.box.height)
    if item.clip or not item.runs:
        return 0, 0, width, height
    margin = item.stroke_width + item.size
    if item.shadow is not None:
        margin += abs(item.shadow.dx) + abs(item.shadow.dy) + 2 * item.shadow.blur
    left = min(0.0, min(r.x for r in item.runs) - margin)
    right = max(float(width), max(r.x + r.width for r in item.runs) + margin)
    top = min(0.0, min(r.baseline - 1.5 * r.size for r in item.runs) - margin)
    bottom = max(float(height), max(r.baseline + r.size for r in item.runs) + margin)
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


def _draw_shadow(sprite: Image.Image, item: TextItem, origin: tuple[int, int]) -> None:
    shadow = item.shadow
    layer = Image.new("RGBA", sprite.size, (0, 0, 0, 0))
    _draw_runs(layer, item, origin, shadow.color, with_stroke=True,
               offset=(shadow.dx, shadow.dy))
    if shadow.blur > 0:
        layer = layer.filter(ImageFilter.GaussianBlur(shadow.blur / 2))
    sprite.alpha_composite(layer)


def _draw_runs(target: Image.Image, item: TextItem, origin: tuple[int, int], color: Color, *,
               with_stroke: bool, offset: tuple[float, float] = (0.0, 0.0)) -> None:
    draw = ImageDraw.Draw(target)
    stroke = item.stroke_width if with_stroke and item.stroke is not None else 0
    for run in item.runs:
        x, y = run.x + origin[0] + offset[0], run.baseline + origin[1] + offset[1]
        if run.emoji:
            if offset == (0.0, 0.0):  # colour emoji cast no shadow of their own colour
                _draw_emoji(target, run, x, y)
            continue
        font = load_font(run.face, run.size)
        # a shadow is one colour, its outline included
        stroke_fill = (color if offset != (0.0, 0.0) else item.stroke).rgba if stroke else None
        options = {"font": font, "anchor": "ls", "direction": run.direction,
                   "stroke_width": stroke, "stroke_fill": stroke_fill, "fill": color.rgba,
                   "features": list(run.features) or None}
        if run.letter_spacing:
            _draw_spaced(draw, run, x, y, options)
        else:
            draw.text((x, y), run.text, **options)


def _draw_spaced(draw: ImageDraw.ImageDraw, run, x: float, y: float, options: dict) -> None:
    """Letter-spaced text, cluster by cluster in visual order with the space after each, as
    Pango spaces the PDF. (Cursive scripts such as Arabic get no letter spacing at all.)"""
    rtl = run.direction == "rtl"
    parts = clusters(run.text)
    for cluster in reversed(parts) if rtl else parts:
        draw.text((x, y), cluster, **options)
        x += measure(cluster, run.face, run.size, rtl, run.letter_spacing)


def _draw_emoji(target: Image.Image, run, x: float, y: float) -> None:
    image, ascent = emoji_image(run.text, run.face, run.size)
    _paste(target, image, round(x), round(y - ascent))
