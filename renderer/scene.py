"""The scene: the resolved, laid-out picture that both painters draw.

The layout step (``renderer.layout``) turns a template plus variables into a :class:`Scene`:
every expression evaluated, every text line broken and every font size chosen. The raster
painter (``renderer.raster``) and the PDF painter (``renderer.pdf``) draw the same scene, so a
layered template's PNG and PDF have the same lines and the same sizes.

All coordinates are in output pixels (already multiplied by ``scale``); the PDF painter maps
one pixel to one CSS ``px``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Color:
    r: int
    g: int
    b: int
    a: int = 255

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        return (self.r, self.g, self.b, self.a)

    def css(self) -> str:
        return f"rgba({self.r},{self.g},{self.b},{self.a / 255:.4f})"


@dataclass(frozen=True)
class GradientStop:
    color: Color
    offset: float  # 0..1


@dataclass(frozen=True)
class LinearGradient:
    """CSS ``linear-gradient``: ``angle`` in degrees, 0 = towards top, 90 = towards right."""

    angle: float
    stops: tuple[GradientStop, ...]

    def css(self) -> str:
        stops = ", ".join(f"{s.color.css()} {s.offset * 100:.3f}%" for s in self.stops)
        return f"linear-gradient({self.angle:g}deg, {stops})"


Paint = Color | LinearGradient


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Common:
    """Properties every item has."""

    name: str
    box: Box
    rotation: float = 0.0  # degrees, clockwise, about the box centre
    opacity: float = 1.0
    static: bool = False  # no property came from an expression: the same in every render


@dataclass(frozen=True)
class ShapeItem:
    common: Common
    shape: str  # "rect" | "ellipse"
    fill: Paint | None = None
    stroke: Color | None = None
    stroke_width: float = 0.0
    radius: float = 0.0


@dataclass(frozen=True)
class ImageItem:
    """``image`` is already fitted, cropped, masked and tinted to exactly the box size (RGBA)."""

    common: Common
    image: Image.Image = field(compare=False)
    identity: str = ""  # a stable digest of what produced ``image`` (cache key)


@dataclass(frozen=True)
class QRItem:
    common: Common
    modules: tuple[tuple[bool, ...], ...]  # dark modules, quiet zone included
    dark: Color = Color(0, 0, 0)
    light: Color | None = Color(255, 255, 255)


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int = 0  # face index inside a .ttc collection
    bitmap_size: int | None = None  # colour bitmap fonts (CBDT emoji) load at this size only


@dataclass(frozen=True)
class Run:
    """A piece of one line in one font and one direction, placed on the line.

    ``x`` is the left edge of the run and ``baseline`` its baseline, both relative to the text
    item's box. ``width`` is the advance width. Runs are in visual order (left to right)."""

    text: str
    face: FontFace
    size: float
    x: float
    baseline: float
    width: float
    direction: str = "ltr"  # "ltr" | "rtl"
    letter_spacing: float = 0.0
    emoji: bool = False  # drawn from a colour bitmap font, scaled to ``size``
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shadow:
    color: Color
    dx: float
    dy: float
    blur: float


@dataclass(frozen=True)
class TextItem:
    common: Common
    runs: tuple[Run, ...]
    color: Color
    size: float  # the chosen font size (after shrink-to-fit)
    lines: tuple[str, ...]  # each line's text in logical order (for tests and the PDF text layer)
    stroke: Color | None = None
    stroke_width: float = 0.0
    shadow: Shadow | None = None
    clip: bool = True  # False only for fit == "overflow"
    ascent: float = 0.0  # of the primary face at ``size``: PDF uses it to place baselines


Item = ShapeItem | ImageItem | QRItem | TextItem


@dataclass
class Scene:
    width: int
    height: int
    background: Paint | None
    items: list[Item]
    warnings: list[str] = field(default_factory=list)
