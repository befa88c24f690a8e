"""From a template and variables to a :class:`~renderer.scene.Scene`.

Every property is evaluated (expressions) and checked again with the same rules as at load time,
so a value an expression produced is held to the same standard as one written by hand. Text is
laid out here, once, and both painters draw the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .colors import parse_color, parse_paint
from .errors import RendererError, TemplateError
from .expressions import Scope, coerce, compile_expression
from .fonts import FontResolver
from .images import FitSpec, fitted, load
from .model import COMMON_PROPS, LAYER_PROPS, Layer, Limits, Template, _is_expression, check_value
from .scene import Box, Common, ImageItem, QRItem, Scene, Shadow, ShapeItem, TextItem
from .text import TextBox, apply_transform, layout_text


@dataclass
class Context:
    """What a render may reach: the remote fetcher, the asset store, limits, workspace fonts."""

    fetch: Callable[[str], bytes] | None = None
    assets: Callable[[str], bytes] | None = None
    limits: Limits = field(default_factory=Limits)
    fonts: Mapping[str, Mapping[int, str]] | None = None
    overrides: Mapping[str, Mapping[str, Any]] | None = None  # checked by check_overrides


def resolve_variables(template: Template, variables: Mapping[str, Any] | None) -> dict[str, Any]:
    """Declared types applied to the given values, defaults filled in for blanks."""
    resolved = dict(variables or {})
    for name, spec in template.variables.items():
        value = resolved.get(name)
        if value in (None, "") and spec.default is not None:
            value = spec.default
        if value is not None:
            resolved[name] = coerce(value, spec.type, name=name)
    return resolved


def missing_warnings(scope: Scope) -> list[str]:
    return [f"variable '{name}' is missing; it rendered as empty text"
            for name in sorted(scope.missing)]


def build_scene(template: Template, scope: Scope, *, size: str | None, scale: float,
                context: Context) -> Scene:
    variant = _variant(template, size)
    width, height = variant["width"], variant["height"]
    fonts = _resolver(template, context)
    warnings: list[str] = []
    items = []
    requested = context.overrides or {}
    for layer in template.layers:
        overrides = variant["layers"].get(layer.name, {})
        given = requested.get(layer.name, {})
        # a request's own values are data, never evaluated; what they replace is not evaluated
        # either (no warning about a variable that the request made irrelevant)
        props = resolve_props(layer, overrides, scope, skip=given.keys())
        props.update(given)
        if not props["visible"]:
            continue
        static = layer.static and layer.name not in requested and \
            not any(_is_expression(v) for v in overrides.values())
        item = _build_item(layer, props, scale, fonts, context, warnings, static)
        if item is not None:
            items.append(item)
    background = _evaluate(variant["background"], scope, "background")
    paint = parse_paint(background, path="background") if background not in (None, "") else None
    return Scene(round(width * scale), round(height * scale), paint, items, warnings)


def _variant(template: Template, size: str | None) -> dict[str, Any]:
    if size is None:
        return {"width": template.width, "height": template.height,
                "background": template.background, "layers": {}}
    variant = template.sizes.get(size)
    if variant is None:
        known = ", ".join(template.sizes) or "none defined"
        raise TemplateError(f"unknown size {size!r} (sizes: {known})", path="size",
                            code="unknown_size")
    return {"width": variant.width, "height": variant.height,
            "background": variant.background if variant.background is not None
            else template.background, "layers": variant.layers}


_resolvers: dict[tuple, FontResolver] = {}


def _resolver(template: Template, context: Context) -> FontResolver:
    key = (template.digest, id(context.assets), id(context.fonts))
    resolver = _resolvers.get(key)
    if resolver is None:
        if len(_resolvers) > 256:
            _resolvers.clear()
        resolver = FontResolver(template.fonts, assets=context.assets, extra=context.fonts)
        _resolvers[key] = resolver
    return resolver


def _evaluate(raw: Any, scope: Scope, path: str) -> Any:
    if _is_expression(raw):
        return compile_expression(raw, path=path).evaluate(scope)
    return raw


def resolve_props(layer: Layer, overrides: Mapping[str, Any], scope: Scope, *,
                  skip: Iterable[str] = ()) -> dict[str, Any]:
    props = {**layer.props, **overrides} if overrides else dict(layer.props)
    keys = layer.expressions if not overrides else \
        [k for k, v in props.items() if _is_expression(v)]
    if skip:
        keys = [k for k in keys if k not in skip]
    if keys:
        specs = {**COMMON_PROPS, **LAYER_PROPS[layer.type]}
    for key in keys:
        path = f"{layer.path}.{key}"
        value = _evaluate(props[key], scope, path)
        props[key] = check_value(value, specs[key], path) if value is not None else \
            specs[key].default
    return props


def _common(layer: Layer, props: dict, scale: float, static: bool) -> Common:
    box = Box(props["x"] * scale, props["y"] * scale, props["width"] * scale,
              props["height"] * scale)
    return Common(layer.name, box, float(props["rotation"] or 0), float(props["opacity"]),
                  static)


def _build_item(layer: Layer, props: dict, scale: float, fonts: FontResolver,
                context: Context, warnings: list[str], static: bool):
    _check_dimensions(layer, props, context.limits)
    common = _common(layer, props, scale, static)
    if common.box.width < 0.5 or common.box.height < 0.5 or common.opacity <= 0:
        return None
    if layer.type == "text":
        return _text_item(layer, props, common, scale, fonts)
    if layer.type == "image":
        return _image_item(layer, props, common, context, warnings)
    if layer.type == "qr":
        return _qr_item(layer, props, common, warnings)
    return _shape_item(layer, props, common, scale)


def _check_dimensions(layer: Layer, props: dict, limits: Limits) -> None:
    """Sizes that came from expressions meet the same bound as written ones."""
    for key in ("width", "height"):
        if props[key] > limits.max_canvas:
            raise TemplateError(f"must be at most {limits.max_canvas} pixels, got {props[key]:g}",
                                path=f"{layer.path}.{key}")


def _shape_item(layer: Layer, props: dict, common: Common, scale: float) -> ShapeItem:
    path = layer.path
    fill = parse_paint(props["fill"], path=f"{path}.fill") if props["fill"] else None
    stroke = parse_color(props["stroke"], path=f"{path}.stroke") if props["stroke"] else None
    width = props["stroke_width"] or (1 if stroke else 0)
    return ShapeItem(common, layer.type, fill, stroke, width * scale,
                     (props.get("radius") or 0) * scale)


def _text_item(layer: Layer, props: dict, common: Common, scale: float,
               fonts: FontResolver) -> TextItem | None:
    path = layer.path
    text = apply_transform(_as_text(props["text"]), props["transform"])
    face = fonts.face(props["font"], props["weight"], path=f"{path}.font")
    size = props["size"] * scale
    min_size = (props["min_size"] or max(1.0, props["size"] / 4)) * scale
    box = TextBox(
        width=common.box.width, height=common.box.height, size=size,
        min_size=min(min_size, size), fit=props["fit"], max_lines=props["max_lines"],
        line_height=props["line_height"], letter_spacing=props["letter_spacing"] * scale,
        align=props["align"], valign=props["valign"],
    )
    laid = layout_text(text, fonts.chain(face, props["weight"]), box)
    stroke = parse_color(props["stroke"], path=f"{path}.stroke") if props["stroke"] else None
    stroke_width = (props["stroke_width"] or (2 if stroke else 0)) * scale
    return TextItem(
        common=common, runs=laid.runs, color=parse_color(props["color"], path=f"{path}.color"),
        size=laid.size, lines=laid.lines, stroke=stroke, stroke_width=stroke_width,
        shadow=parse_shadow(props["shadow"], scale, path=f"{path}.shadow"),
        clip=props["fit"] != "overflow", ascent=laid.ascent,
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_SHADOW = re.compile(r"(-?[\d.]+)(?:px)?\s+(-?[\d.]+)(?:px)?(?:\s+([\d.]+)(?:px)?)?\s+(.+)")


def parse_shadow(value: Any, scale: float, *, path: str) -> Shadow | None:
    """``{"color", "x", "y", "blur"}`` or CSS-like ``"2px 2px 6px rgba(0,0,0,.5)"``."""
    if value in (None, "", False):
        return None
    if isinstance(value, str):
        match = _SHADOW.fullmatch(value.strip())
        if not match:
            raise TemplateError("a shadow is 'X Y [BLUR] COLOR', e.g. '2px 2px 6px #0008'",
                                path=path)
        value = {"x": match[1], "y": match[2], "blur": match[3] or 0, "color": match[4]}
    if not isinstance(value, dict):
        raise TemplateError("a shadow is an object {color, x, y, blur} or a CSS-like string",
                            path=path)
    try:
        dx, dy = float(value.get("x", 2)), float(value.get("y", 2))
        blur = float(value.get("blur", 4))
    except (TypeError, ValueError):
        raise TemplateError("shadow x, y and blur must be numbers", path=path) from None
    color = parse_color(value.get("color", "rgba(0,0,0,0.5)"), path=f"{path}.color")
    return Shadow(color, dx * scale, dy * scale, max(0.0, blur) * scale)


def _image_item(layer: Layer, props: dict, common: Common, context: Context,
                warnings: list[str]) -> ImageItem | None:
    spec = FitSpec(
        width=max(1, round(common.box.width)), height=max(1, round(common.box.height)),
        fit=props["fit"], position=props["position"], radius=props["radius"] * (
            common.box.width / props["width"] if props["width"] else 1),
        circle=props["mask"] == "circle", grayscale=bool(props["grayscale"]),
    )
    sources = [s for s in (props["src"], props["fallback"]) if s]
    error: RendererError | None = None
    for src in sources:
        try:
            loaded = load(src, fetch=context.fetch, assets=context.assets,
                          max_bytes=context.limits.max_image_bytes,
                          max_pixels=context.limits.max_image_pixels, path=f"{layer.path}.src")
        except RendererError as exc:
            error = error or exc
            continue
        return ImageItem(common, fitted(loaded, spec), identity=f"{loaded.digest}:{spec}")
    if props["optional"] or not sources:
        reason = error.message if error else "no source"
        warnings.append(f"{layer.path} ({layer.name}): image skipped: {reason}")
        return None
    assert error is not None
    raise type(error)(f"image layer '{layer.name}': {error.message}", path=error.path,
                      code=error.code)


def _qr_item(layer: Layer, props: dict, common: Common, warnings: list[str]) -> QRItem | None:
    data = _as_text(props["data"])
    if not data:
        warnings.append(f"{layer.path} ({layer.name}): QR code skipped: its data is empty")
        return None
    modules = qr_modules(data, props["error"], props["margin"], path=f"{layer.path}.data")
    light = props["background"]
    return QRItem(common, modules,
                  parse_color(props["color"], path=f"{layer.path}.color"),
                  parse_color(light, path=f"{layer.path}.background") if light else None)


@lru_cache(maxsize=1024)
def qr_modules(data: str, error: str, margin: int, *, path: str) -> tuple[tuple[bool, ...], ...]:
    import segno

    try:
        code = segno.make_qr(data, error=error, boost_error=False)
    except segno.DataOverflowError:
        raise TemplateError(f"{len(data)} characters are too many for a QR code",
                            path=path) from None
    return tuple(tuple(bool(m) for m in row) for row in code.matrix_iter(border=margin))
