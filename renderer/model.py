"""Template types and validation.

``load_template`` turns JSON (a dict, a JSON string or a file path) into an immutable
:class:`Template`, refusing anything malformed with a :class:`TemplateError` whose ``path``
names the culprit (``layers[3].text``). Property values are kept as written: a string may hold
``{{ … }}`` and is checked for syntax here, evaluated later by ``renderer.layout``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ExpressionError, TemplateError
from .expressions import VARIABLE_TYPES, compile_expression

DEFAULT_FAMILY = "Noto Sans"
POSITIONS = (
    "center", "top", "bottom", "left", "right",
    "top-left", "top-right", "bottom-left", "bottom-right",
)


@dataclass(frozen=True)
class Limits:
    """Operator-configurable bounds (SPEC 12)."""

    max_canvas: int = 8000
    max_layers: int = 200
    max_frames: int = 300
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_scale: int = 4


@dataclass(frozen=True)
class Prop:
    kind: str  # number, int, bool, string, color, paint, enum, any
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


def _num(default=None, *, required=False, minimum=None, maximum=None) -> Prop:
    return Prop("number", default, required, minimum=minimum, maximum=maximum)


COMMON_PROPS: dict[str, Prop] = {
    "x": _num(0), "y": _num(0),
    "width": _num(required=True, minimum=0), "height": _num(required=True, minimum=0),
    "rotation": _num(0), "opacity": _num(1, minimum=0, maximum=1),
    "visible": Prop("bool", True),
}
LAYER_PROPS: dict[str, dict[str, Prop]] = {
    "text": {
        "text": Prop("string", required=True),
        "font": Prop("string", DEFAULT_FAMILY), "weight": _num(400, minimum=1, maximum=1000),
        "size": _num(32, minimum=1, maximum=2000), "min_size": _num(None, minimum=1, maximum=2000),
        "fit": Prop("enum", "shrink", choices=("shrink", "truncate", "overflow")),
        "max_lines": Prop("int", None, minimum=1, maximum=1000),
        "color": Prop("color", "#000000"),
        "align": Prop("enum", "left", choices=("left", "center", "right")),
        "valign": Prop("enum", "top", choices=("top", "middle", "bottom")),
        "line_height": _num(1.2, minimum=0.1, maximum=10),
        "letter_spacing": _num(0, minimum=-100, maximum=1000),
        "transform": Prop("enum", "none", choices=("none", "upper", "lower", "capitalize")),
        "stroke": Prop("color", None), "stroke_width": _num(0, minimum=0, maximum=200),
        "shadow": Prop("any", None),
    },
    "image": {
        "src": Prop("string", required=True),
        "fit": Prop("enum", "cover", choices=("cover", "contain", "fill")),
        "position": Prop("enum", "center", choices=POSITIONS),
        "radius": _num(0, minimum=0), "mask": Prop("enum", "none", choices=("none", "circle")),
        "grayscale": Prop("bool", False), "fallback": Prop("string", None),
        "optional": Prop("bool", False),
    },
    "rect": {
        "fill": Prop("paint", None), "stroke": Prop("color", None),
        "stroke_width": _num(0, minimum=0, maximum=1000), "radius": _num(0, minimum=0),
    },
    "ellipse": {
        "fill": Prop("paint", None), "stroke": Prop("color", None),
        "stroke_width": _num(0, minimum=0, maximum=1000),
    },
    "qr": {
        "data": Prop("string", required=True), "color": Prop("color", "#000000"),
        "background": Prop("color", "#ffffff"), "margin": Prop("int", 1, minimum=0, maximum=20),
        "error": Prop("enum", "m", choices=("l", "m", "q", "h")),
    },
}
TOP_LEVEL = {
    "kind", "name", "width", "height", "background", "fonts", "variables", "layers", "sizes",
    "frames", "html", "css", "description", "tags", "public", "$schema",
}


@dataclass(frozen=True)
class VariableSpec:
    type: str = "text"
    default: Any = None
    sample: Any = None


@dataclass(frozen=True)
class Layer:
    index: int
    name: str
    type: str
    props: dict[str, Any] = field(hash=False)  # every known property, defaults filled in

    @cached_property
    def path(self) -> str:
        return f"layers[{self.index}]"

    @cached_property
    def expressions(self) -> tuple[str, ...]:
        """The properties that hold an expression (evaluated on every render)."""
        return tuple(k for k, v in self.props.items() if _is_expression(v))

    @property
    def static(self) -> bool:
        """True when no property holds an expression: its picture never changes."""
        return not self.expressions


@dataclass(frozen=True)
class SizeVariant:
    width: int
    height: int
    background: Any = None
    layers: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, eq=False)
class Template:
    kind: str
    name: str
    width: int
    height: int
    background: Any
    fonts: dict[str, dict[str, str]]
    variables: dict[str, VariableSpec]
    layers: tuple[Layer, ...]
    sizes: dict[str, SizeVariant]
    frames: Any
    html: str
    css: str
    source: dict[str, Any]
    digest: str  # SHA-256 of the canonical JSON: stands in for id + version outside the web app
    base_path: str | None = None  # folder of the file it came from: default asset folder

    def samples(self) -> dict[str, Any]:
        return {k: v.sample if v.sample is not None else v.default
                for k, v in self.variables.items()}


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def load_template(data: Any, *, limits: Limits | None = None) -> Template:
    """Validate a template given as a dict, JSON text, bytes or a path to a .json/.html file."""
    limits = limits or Limits()
    base_path = None
    if isinstance(data, Path) or (isinstance(data, str) and not _looks_like_json(data)):
        path = Path(data)
        base_path = str(path.resolve().parent)
        data = _read_file(path)
    if isinstance(data, bytes | str):
        data = _parse_json(data)
    if not isinstance(data, dict):
        raise TemplateError("a template must be a JSON object", path="$")
    return _build(data, limits, base_path)


def _looks_like_json(text: str) -> bool:
    # JSON that is not an object must still be reported as "not an object", not a bad path
    return text.lstrip()[:1] in ("{", "[", '"')


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"no such template file: {path}", path="$") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}", path="$") from None
    if path.suffix.lower() in (".html", ".htm"):
        return {"kind": "html", "name": path.stem, "html": text, **html_size_hint(text)}
    return text


def html_size_hint(text: str) -> dict[str, int]:
    """An uploaded .html file may give its size: ``<meta name="pixelmerge:size" content="WxH">``."""
    import re

    match = re.search(r'name="pixelmerge:size"\s+content="(\d+)x(\d+)"', text)
    return {"width": int(match[1]), "height": int(match[2])} if match else {
        "width": 1200, "height": 630}


def _parse_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path="$"
        ) from None
    except UnicodeDecodeError:
        raise TemplateError("template is not UTF-8 text", path="$") from None


def _build(data: dict, limits: Limits, base_path: str | None) -> Template:
    _check_keys(data, TOP_LEVEL, "")
    kind = data.get("kind", "layered")
    if kind not in ("layered", "html"):
        raise TemplateError(f"unknown kind {kind!r} (expected 'layered' or 'html')", path="kind")
    width = _dimension(data.get("width"), "width", limits)
    height = _dimension(data.get("height"), "height", limits)
    variables = _variables(_or_empty(data.get("variables")))
    layers = _layers(data.get("layers"), kind, limits)
    html, css = _html(data, kind)
    return Template(
        kind=kind,
        name=_name(data.get("name", "Untitled")),
        width=width,
        height=height,
        background=_literal_or_expr(data.get("background"), Prop("paint", None), "background"),
        fonts=_fonts(_or_empty(data.get("fonts"))),
        variables=variables,
        layers=layers,
        sizes=_sizes(_or_empty(data.get("sizes")), layers, limits),
        frames=_frames(data.get("frames"), limits),
        html=html,
        css=css,
        source=data,
        digest=hashlib.sha256(canonical_json(data).encode()).hexdigest(),
        base_path=base_path,
    )


def _or_empty(value: Any) -> Any:
    """``None`` means "none given"; any other value, ``[]`` included, is checked as written."""
    return {} if value is None else value


def _html(data: dict, kind: str) -> tuple[str, str]:
    if kind != "html":
        for key in ("html", "css"):
            if key in data:
                raise TemplateError(f"'{key}' belongs to html templates", path=key)
        return "", ""
    html = data.get("html")
    if not isinstance(html, str) or not html.strip():
        raise TemplateError("an html template needs non-empty 'html' text", path="html")
    css = data.get("css", "")
    if not isinstance(css, str):
        raise TemplateError("'css' must be text", path="css")
    for key, text in (("html", html), ("css", css)):
        _check_syntax(text, key)
    return html, css


def _check_keys(data: dict, allowed: set[str] | dict, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise TemplateError(f"unknown property '{key}'{suggestion}",
                                path=f"{prefix}{key}" if not prefix else f"{prefix}.{key}")


def _dimension(value: Any, path: str, limits: Limits) -> int:
    if value is None:
        raise TemplateError("missing required property", path=path)
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value != int(value):
        raise TemplateError(f"must be a whole number of pixels, got {value!r}", path=path)
    if not 1 <= value <= limits.max_canvas:
        raise TemplateError(f"must be between 1 and {limits.max_canvas} pixels, got {value}",
                            path=path)
    return int(value)


def _name(value: Any) -> str:
    name = _string(value, "name").strip() or "Untitled"
    if len(name) > 200:
        raise TemplateError(f"a name has at most 200 characters, got {len(name)}", path="name")
    if any(ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 for ch in name):
        raise TemplateError("a name cannot contain control characters", path="name")
    return name


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"must be text, got {value!r}", path=path)
    return value


def _variables(data: Any) -> dict[str, VariableSpec]:
    if not isinstance(data, dict):
        raise TemplateError("must be an object of variable declarations", path="variables")
    specs = {}
    for name, decl in data.items():
        path = f"variables.{name}"
        if not str(name).isidentifier():
            raise TemplateError("a variable name must be a valid identifier", path=path)
        if not isinstance(decl, dict):
            raise TemplateError("must be an object like {\"type\": \"text\"}", path=path)
        _check_keys(decl, {"type", "default", "sample", "label", "description"}, path)
        type_ = decl.get("type", "text")
        if type_ not in VARIABLE_TYPES:
            raise TemplateError(f"unknown type {type_!r} (one of {', '.join(VARIABLE_TYPES)})",
                                path=f"{path}.type")
        specs[name] = VariableSpec(type_, *(_typed(decl.get(key), type_, f"{path}.{key}")
                                            for key in ("default", "sample")))
    return specs


def _typed(value: Any, type_: str, path: str) -> Any:
    """A default or sample must be a value of the declared type; it is kept as written."""
    from .expressions import coerce

    if value not in (None, ""):
        try:
            coerce(value, type_, name=path)
        except ExpressionError:
            raise TemplateError(f"{value!r} is not a {type_}", path=path) from None
    return value


def _fonts(data: Any) -> dict[str, dict[str, str]]:
    if not isinstance(data, dict):
        raise TemplateError("must be an object of font families", path="fonts")
    fonts = {}
    for family, faces in data.items():
        path = f"fonts.{family}"
        if isinstance(faces, str):
            faces = {"400": faces}
        if not isinstance(faces, dict) or not faces:
            raise TemplateError("must map weights to font sources, e.g. {\"400\": "
                                "\"asset:brand.ttf\"}", path=path)
        for weight, src in faces.items():
            if not str(weight).isdigit() or not 1 <= int(weight) <= 1000:
                raise TemplateError(f"weight {weight!r} must be a number from 1 to 1000",
                                    path=f"{path}.{weight}")
            if not isinstance(src, str) or not src.startswith(("asset:", "data:")):
                raise TemplateError("a font source must be 'asset:<name>' or a data: URI",
                                    path=f"{path}.{weight}")
        fonts[family] = {str(w): s for w, s in faces.items()}
    return fonts


def _layers(data: Any, kind: str, limits: Limits) -> tuple[Layer, ...]:
    if kind == "html":
        if data:
            raise TemplateError("html templates have no layers", path="layers")
        return ()
    if not isinstance(data, list):
        raise TemplateError("must be a list of layers", path="layers")
    if len(data) > limits.max_layers:
        raise TemplateError(f"too many layers: {len(data)} (the limit is {limits.max_layers})",
                            path="layers")
    layers, names = [], set()
    for index, raw in enumerate(data):
        layer = _layer(index, raw, limits)
        if layer.name in names:
            raise TemplateError(f"duplicate layer name {layer.name!r}",
                                path=f"layers[{index}].name")
        names.add(layer.name)
        layers.append(layer)
    return tuple(layers)


def _layer(index: int, raw: Any, limits: Limits) -> Layer:
    path = f"layers[{index}]"
    if not isinstance(raw, dict):
        raise TemplateError("a layer must be an object", path=path)
    type_ = raw.get("type")
    if type_ not in LAYER_PROPS:
        raise TemplateError(f"unknown layer type {type_!r} (one of {', '.join(LAYER_PROPS)})",
                            path=f"{path}.type")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise TemplateError("every layer needs a non-empty 'name'", path=f"{path}.name")
    specs = {**COMMON_PROPS, **LAYER_PROPS[type_]}
    _check_keys(raw, {**specs, "name": None, "type": None}, path)
    props = {}
    for key, spec in specs.items():
        if spec.required and raw.get(key) in (None, ""):
            raise TemplateError("missing required property", path=f"{path}.{key}")
        props[key] = _literal_or_expr(raw.get(key, spec.default), spec, f"{path}.{key}")
    _check_size(props, path, limits)
    return Layer(index, name, type_, props)


def _check_size(props: dict, path: str, limits: Limits) -> None:
    for key in ("width", "height"):
        value = props.get(key)
        if isinstance(value, int | float) and value > limits.max_canvas:
            raise TemplateError(f"must be at most {limits.max_canvas} pixels, got {value}",
                                path=f"{path}.{key}")


def _literal_or_expr(value: Any, spec: Prop, path: str) -> Any:
    if _is_expression(value):
        _check_syntax(value, path)
        return value
    if value is None:
        return None
    return check_value(value, spec, path)


def _check_syntax(text: str, path: str) -> None:
    try:
        compile_expression(text, path=path)
    except ExpressionError:
        raise
    except Exception as exc:  # a parser bug must still name the property
        raise ExpressionError(f"cannot parse expression: {exc}", path=path) from None


def check_value(value: Any, spec: Prop, path: str) -> Any:
    """Check (and normalise) one resolved property value; used at load and after evaluation."""
    checker = _CHECKERS[spec.kind]
    result = checker(value, spec, path)
    if spec.kind in ("number", "int") and result is not None:
        _check_range(result, spec, path)
    return result


def _check_number(value: Any, spec: Prop, path: str) -> float | int | None:
    if isinstance(value, bool):
        raise TemplateError(f"must be a number, got {value!r}", path=path)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if not value.strip():
            return spec.default
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    raise TemplateError(f"must be a number, got {value!r}", path=path)


def _check_int(value: Any, spec: Prop, path: str) -> int | None:
    number = _check_number(value, spec, path)
    if number is not None and not math.isfinite(number):
        raise TemplateError(f"must be a finite number, got {value!r}", path=path)
    if number is not None and number != int(number):
        raise TemplateError(f"must be a whole number, got {value!r}", path=path)
    return None if number is None else int(number)


def _check_range(value: float, spec: Prop, path: str) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        raise TemplateError(f"must be a finite number, got {value!r}", path=path)
    if spec.minimum is not None and value < spec.minimum:
        raise TemplateError(f"must be at least {spec.minimum:g}, got {value:g}", path=path)
    if spec.maximum is not None and value > spec.maximum:
        raise TemplateError(f"must be at most {spec.maximum:g}, got {value:g}", path=path)


def _check_bool(value: Any, spec: Prop, path: str) -> bool:
    from .expressions import coerce

    try:
        return bool(coerce(value, "bool", name=path))
    except ExpressionError:
        raise TemplateError(f"must be true or false, got {value!r}", path=path) from None


def _check_string(value: Any, spec: Prop, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TemplateError(f"must be text, got {value!r}", path=path)


def _check_enum(value: Any, spec: Prop, path: str) -> str:
    text = str(value).strip().lower() if value is not None else ""
    if text not in spec.choices:
        raise TemplateError(f"must be one of {', '.join(spec.choices)}; got {value!r}",
                            path=path)
    return text


def _check_color(value: Any, spec: Prop, path: str) -> Any:
    from .colors import parse_color

    if value in ("", None):
        return None
    parse_color(value, path=path)
    return value


def _check_paint(value: Any, spec: Prop, path: str) -> Any:
    from .colors import parse_paint

    if value in ("", None):
        return None
    parse_paint(value, path=path)
    return value


def _check_any(value: Any, spec: Prop, path: str) -> Any:
    return value


_CHECKERS = {
    "number": _check_number, "int": _check_int, "bool": _check_bool, "string": _check_string,
    "enum": _check_enum, "color": _check_color, "paint": _check_paint, "any": _check_any,
}


def _sizes(data: Any, layers: tuple[Layer, ...], limits: Limits) -> dict[str, SizeVariant]:
    if not isinstance(data, dict):
        raise TemplateError("must be an object of named sizes", path="sizes")
    by_name = {layer.name: layer for layer in layers}
    sizes = {}
    for name, raw in data.items():
        path = f"sizes.{name}"
        if not isinstance(raw, dict):
            raise TemplateError("must be an object with width, height and layers", path=path)
        _check_keys(raw, {"width", "height", "background", "layers"}, path)
        overrides = _size_overrides(_or_empty(raw.get("layers")), by_name, path, limits)
        sizes[name] = SizeVariant(
            width=_dimension(raw.get("width"), f"{path}.width", limits),
            height=_dimension(raw.get("height"), f"{path}.height", limits),
            background=_literal_or_expr(raw.get("background"), Prop("paint"),
                                        f"{path}.background"),
            layers=overrides,
        )
    return sizes


def _size_overrides(data: Any, by_name: dict[str, Layer], path: str,
                    limits: Limits) -> dict[str, dict]:
    if not isinstance(data, dict):
        raise TemplateError("must map layer names to property overrides", path=f"{path}.layers")
    overrides = {}
    for layer_name, props in data.items():
        lpath = f"{path}.layers.{layer_name}"
        layer = by_name.get(layer_name)
        if layer is None:
            raise TemplateError(f"no layer named {layer_name!r}", path=lpath)
        if not isinstance(props, dict):
            raise TemplateError("must be an object of properties", path=lpath)
        specs = {**COMMON_PROPS, **LAYER_PROPS[layer.type]}
        _check_keys(props, specs, lpath)
        overrides[layer_name] = {
            key: _literal_or_expr(value, specs[key], f"{lpath}.{key}")
            for key, value in props.items()
        }
        _check_size(overrides[layer_name], lpath, limits)
    return overrides


def _frames(data: Any, limits: Limits) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return _countdown(data, limits)
    if not isinstance(data, list) or not data:
        raise TemplateError("must be a list of frames or {\"countdown\": {...}}", path="frames")
    if len(data) > limits.max_frames:
        raise TemplateError(f"too many frames: {len(data)} (the limit is {limits.max_frames})",
                            path="frames")
    frames = []
    for index, frame in enumerate(data):
        path = f"frames[{index}]"
        if not isinstance(frame, dict):
            raise TemplateError("a frame must be an object", path=path)
        _check_keys(frame, {"variables", "duration"}, path)
        variables = _or_empty(frame.get("variables"))
        if not isinstance(variables, dict):
            raise TemplateError("must be an object", path=f"{path}.variables")
        duration = check_value(frame.get("duration", 100), Prop("int", minimum=20,
                                                                maximum=60000),
                               f"{path}.duration")
        frames.append({"variables": variables, "duration": duration})
    return frames


def _countdown(data: dict, limits: Limits) -> dict:
    _check_keys(data, {"countdown"}, "frames")
    spec = data.get("countdown")
    path = "frames.countdown"
    if not isinstance(spec, dict):
        raise TemplateError("must be an object with 'until'", path=path)
    _check_keys(spec, {"until", "frames", "step", "duration"}, path)
    until = spec.get("until")
    if not isinstance(until, str) or not until:
        raise TemplateError("missing required property", path=f"{path}.until")
    if _is_expression(until):
        _check_syntax(until, f"{path}.until")
    count = check_value(spec.get("frames", 60), Prop("int", minimum=1,
                                                     maximum=limits.max_frames),
                        f"{path}.frames")
    step = check_value(spec.get("step", 1), Prop("int", minimum=1, maximum=86400),
                       f"{path}.step")
    duration = check_value(spec.get("duration", step * 1000),
                           Prop("int", minimum=20, maximum=60000), f"{path}.duration")
    return {"countdown": {"until": until, "frames": count, "step": step,
                          "duration": duration}}


def check_overrides(template: Template, overrides: Any) -> dict[str, dict[str, Any]]:
    """Per-layer property values given with a render request (Placid's ``layers``, Bannerbear's
    ``modifications``), checked like values written in the template. They are data: a value
    holding ``{{`` is text, not an expression."""
    if not overrides:
        return {}
    if not isinstance(overrides, dict):
        raise TemplateError("must map layer names to properties", path="layers")
    by_name = {layer.name: layer for layer in template.layers}
    checked = {}
    for name, props in overrides.items():
        path = f"layers.{name}"
        layer = by_name.get(name)
        if layer is None:
            hint = difflib.get_close_matches(str(name), list(by_name), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise TemplateError(f"no layer named {name!r}{suggestion}", path=path)
        if not isinstance(props, dict):
            raise TemplateError("must be an object of properties", path=path)
        specs = {**COMMON_PROPS, **LAYER_PROPS[layer.type]}
        _check_keys(props, specs, path)
        checked[name] = {key: check_value(value, specs[key], f"{path}.{key}")
                         if value is not None else specs[key].default
                         for key, value in props.items()}
    return checked
