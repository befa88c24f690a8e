"""CSS-style colours and linear gradients: ``#rgb``, ``#rrggbb``, ``#rrggbbaa``, ``rgb()``,
``rgba()``, named colours, and ``linear-gradient(135deg, #1e3a8a, #7c3aed 80%)``."""

from __future__ import annotations

import re
from functools import lru_cache

from PIL import ImageColor

from .errors import TemplateError
from .scene import Color, GradientStop, LinearGradient, Paint

_HEX = re.compile(r"#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FUNC = re.compile(r"(rgba?)\(\s*([^)]*)\)", re.IGNORECASE)
_GRADIENT = re.compile(r"linear-gradient\((.*)\)", re.IGNORECASE | re.DOTALL)
_DIRECTIONS = {
    "to top": 0, "to right": 90, "to bottom": 180, "to left": 270,
    "to top right": 45, "to right top": 45, "to bottom right": 135, "to right bottom": 135,
    "to bottom left": 225, "to left bottom": 225, "to top left": 315, "to left top": 315,
}


def parse_color(value: object, *, path: str) -> Color:
    """A CSS colour; raises TemplateError naming ``path`` when it is not one."""
    if not isinstance(value, str):
        raise TemplateError(f"expected a colour, got {value!r}", path=path)
    color = _parse_color_cached(value.strip().lower())
    if color is None:
        raise TemplateError(f"{value!r} is not a colour (use #rrggbb, rgb(), rgba() or a name)",
                            path=path)
    return color


@lru_cache(maxsize=1024)
def _parse_color_cached(text: str) -> Color | None:
    if text == "transparent":
        return Color(0, 0, 0, 0)
    if _HEX.fullmatch(text):
        digits = text[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
        return Color(*channels)
    match = _FUNC.fullmatch(text)
    if match:
        return _parse_function(match.group(2))
    if text in ImageColor.colormap:
        return Color(*ImageColor.getrgb(text)[:3])
    return None


def _parse_function(body: str) -> Color | None:
    parts = [p for p in re.split(r"[\s,/]+", body.strip()) if p]
    if len(parts) not in (3, 4):
        return None
    try:
        rgb = [_channel(p) for p in parts[:3]]
        alpha = _alpha(parts[3]) if len(parts) == 4 else 255
    except ValueError:
        return None
    return Color(*rgb, alpha)


def _channel(text: str) -> int:
    value = float(text[:-1]) * 2.55 if text.endswith("%") else float(text)
    return max(0, min(255, round(value)))


def _alpha(text: str) -> int:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    return max(0, min(255, round(value * 255)))


def parse_paint(value: object, *, path: str) -> Paint:
    """A colour or a ``linear-gradient(...)``."""
    if isinstance(value, str) and value.strip().lower().startswith("linear-gradient"):
        return parse_gradient(value, path=path)
    return parse_color(value, path=path)


def parse_gradient(value: str, *, path: str) -> LinearGradient:
    match = _GRADIENT.fullmatch(value.strip())
    if not match:
        raise TemplateError(f"{value!r} is not a linear-gradient(...)", path=path)
    parts = _split_top_level(match.group(1))
    angle = 180.0  # CSS default: to bottom
    head = parts[0].strip().lower()
    if head.endswith("deg") or head in _DIRECTIONS or head.endswith("turn"):
        angle = _angle(head, value, path)
        parts = parts[1:]
    if len(parts) < 2:
        raise TemplateError(f"{value!r} needs at least two colour stops", path=path)
    return LinearGradient(angle, _stops(parts, path))


def _angle(head: str, value: str, path: str) -> float:
    try:
        if head in _DIRECTIONS:
            return float(_DIRECTIONS[head])
        if head.endswith("turn"):
            return float(head[:-4]) * 360
        return float(head[:-3])
    except ValueError:
        raise TemplateError(f"bad gradient angle in {value!r}", path=path) from None


def _stops(parts: list[str], path: str) -> tuple[GradientStop, ...]:
    colors, offsets = [], []
    for part in parts:
        text = part.strip()
        offset = None
        pct = re.search(r"\s+(-?[\d.]+)%$", text)
        if pct:
            offset = float(pct.group(1)) / 100
            text = text[: pct.start()]
        colors.append(parse_color(text, path=path))
        offsets.append(offset)
    # CSS: missing offsets are spread evenly between their neighbours.
    offsets[0] = 0.0 if offsets[0] is None else offsets[0]
    offsets[-1] = 1.0 if offsets[-1] is None else offsets[-1]
    _spread_missing(offsets)
    return tuple(GradientStop(c, o) for c, o in zip(colors, offsets, strict=True))


def _spread_missing(offsets: list[float | None]) -> None:
    i = 0
    while i < len(offsets):
        if offsets[i] is None:
            j = i
            while offsets[j] is None:
                j += 1
            start, end = offsets[i - 1], offsets[j]
            for k in range(i, j):
                offsets[k] = start + (end - start) * (k - i + 1) / (j - i + 1)
            i = j
        i += 1


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
