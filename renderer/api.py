"""The renderer's public face: ``render``, ``render_key`` and ``render_scene``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assets import directory_assets
from .encode import EXTENSIONS, FORMATS, encode, encode_frames, normalize_format
from .errors import ExpressionError, RendererError, TemplateError
from .expressions import Scope, coerce, compile_expression
from .key import compute_key, used_variables
from .layout import Context, build_scene, missing_warnings, resolve_variables
from .model import Limits, Template, check_overrides, load_template
from .scene import Scene

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int
    format: str
    key: str
    warnings: list[str] = field(default_factory=list)

    @property
    def mime(self) -> str:
        return FORMATS[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class Options:
    format: str
    size: str | None
    scale: float
    quality: int | None
    transparent: bool

    def as_key(self) -> dict[str, Any]:
        return {"scale": self.scale, "quality": self.quality, "transparent": self.transparent}


def _options(format: str, size: str | None, scale: float, quality: int | None,
             transparent: bool, limits: Limits) -> Options:
    fmt = normalize_format(format)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or \
            not 1 <= scale <= limits.max_scale:
        raise TemplateError(f"scale must be a number from 1 to {limits.max_scale}, got {scale!r}",
                            path="scale", code="invalid_option")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int)
                                or not 1 <= quality <= 100):
        raise TemplateError(f"quality must be a whole number from 1 to 100, got {quality!r}",
                            path="quality", code="invalid_option")
    if transparent and fmt not in ("png", "webp", "avif"):
        transparent = False  # only these formats carry alpha: the key must not pretend
    return Options(fmt, size, float(scale) if scale % 1 else int(scale), quality,
                   bool(transparent))


def _as_template(template: Template | Mapping | str | Path) -> Template:
    return template if isinstance(template, Template) else load_template(template)


def render_key(template: Template | Mapping | str | Path, variables: Mapping | None = None, *,
               format: str = "png", size: str | None = None, scale: float = 1,
               quality: int | None = None, transparent: bool = False,
               template_id: Any = None, version: Any = None,
               now: dt.datetime | None = None, limits: Limits | None = None,
               overrides: Mapping[str, Mapping[str, Any]] | None = None,
               asset_digests: Mapping[str, str] | None = None) -> str:
    """The key of SPEC 5 for this request, without rendering. ``asset_digests`` (asset name to
    content digest) makes a re-uploaded asset a new request."""
    tpl = _as_template(template)
    opts = _options(format, size, scale, quality, transparent, limits or Limits())
    return _key(tpl, resolve_variables(tpl, variables), opts, template_id, version, now,
                check_overrides(tpl, overrides), asset_digests)


def _key(tpl: Template, resolved: Mapping, opts: Options, template_id: Any, version: Any,
         now: dt.datetime | None, overrides: Mapping | None = None,
         asset_digests: Mapping[str, str] | None = None) -> str:
    options = opts.as_key()
    countdown = _countdown(tpl)
    if countdown and opts.format == "gif":
        # a countdown changes with time: the key moves on every step so caches stay current
        options["tick"] = _tick(now, countdown["step"])
    return compute_key(
        template_id=tpl.digest if template_id is None else template_id,
        version=tpl.digest if version is None else version,
        variables=used_variables(tpl, resolved), format=opts.format, options=options,
        size=opts.size, layers=overrides, assets=asset_digests,
    )


def render(template: Template | Mapping | str | Path, variables: Mapping | None = None, *,
           format: str = "png", size: str | None = None, scale: float = 1,
           fetch: Fetch | None = None, assets: Callable[[str], bytes] | None = None,
           quality: int | None = None, transparent: bool = False,
           fonts: Mapping[str, Mapping[int, str]] | None = None, limits: Limits | None = None,
           template_id: Any = None, version: Any = None,
           now: dt.datetime | None = None,
           overrides: Mapping[str, Mapping[str, Any]] | None = None,
           asset_digests: Mapping[str, str] | None = None) -> Rendered:
    """Render ``template`` with ``variables`` into ``format`` bytes.

    ``overrides`` sets layer properties for this render only ({"title": {"text": "Hi"}}):
    values are checked like written ones and are never evaluated as expressions."""
    tpl = _as_template(template)
    limits = limits or Limits()
    opts = _options(format, size, scale, quality, transparent, limits)
    resolved = resolve_variables(tpl, variables)
    checked = check_overrides(tpl, overrides)
    key = _key(tpl, resolved, opts, template_id, version, now, checked, asset_digests)
    context = Context(fetch=fetch, assets=assets or _default_assets(tpl), limits=limits,
                      fonts=fonts, overrides=checked)
    if tpl.kind == "html":
        data, width, height, warnings = _render_html(tpl, resolved, opts, context)
    elif tpl.frames and opts.format == "gif":
        data, width, height, warnings = _render_frames(tpl, resolved, opts, context, now)
    else:
        data, width, height, warnings = _render_layered(tpl, resolved, opts, context)
    return Rendered(data, width, height, opts.format, key, warnings)


def render_scene(template: Template | Mapping | str | Path, variables: Mapping | None = None, *,
                 size: str | None = None, scale: float = 1, fetch: Fetch | None = None,
                 assets: Callable[[str], bytes] | None = None,
                 fonts: Mapping[str, Mapping[int, str]] | None = None,
                 limits: Limits | None = None,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Scene:
    """The laid-out scene (positions, chosen font sizes, lines) without painting it."""
    tpl = _as_template(template)
    context = Context(fetch=fetch, assets=assets or _default_assets(tpl),
                      limits=limits or Limits(), fonts=fonts,
                      overrides=check_overrides(tpl, overrides))
    scope = Scope(resolve_variables(tpl, variables))
    scene = build_scene(tpl, scope, size=size, scale=scale, context=context)
    scene.warnings[:0] = missing_warnings(scope)
    return scene


def _render_layered(tpl: Template, resolved: Mapping, opts: Options, context: Context):
    scope = Scope(resolved)
    scene = build_scene(tpl, scope, size=opts.size, scale=opts.scale, context=context)
    warnings = missing_warnings(scope) + scene.warnings
    if opts.format == "pdf":
        from .pdf import paint_pdf

        return paint_pdf(scene), scene.width, scene.height, warnings
    from .raster import paint

    image = paint(scene, transparent=opts.transparent)
    data = encode(image, opts.format, quality=opts.quality, transparent=opts.transparent)
    return data, scene.width, scene.height, warnings


def _render_frames(tpl: Template, resolved: Mapping, opts: Options, context: Context,
                   now: dt.datetime | None):
    from .raster import paint

    images, durations, warnings = [], [], []
    for extra, duration in _frame_plan(tpl, resolved, now):
        scope = Scope({**resolved, **extra})
        scene = build_scene(tpl, scope, size=opts.size, scale=opts.scale, context=context)
        images.append(paint(scene))
        durations.append(duration)
        for warning in missing_warnings(scope) + scene.warnings:
            if warning not in warnings:
                warnings.append(warning)
    data = encode_frames(images, durations, format="gif", quality=opts.quality)
    return data, images[0].width, images[0].height, warnings


def _countdown(tpl: Template) -> dict | None:
    return tpl.frames.get("countdown") if isinstance(tpl.frames, dict) else None


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _tick(now: dt.datetime | None, step: int) -> int:
    return int(_now(now).timestamp()) // step


def _tick_time(now: dt.datetime | None, step: int) -> dt.datetime:
    """The start of the current step: the frames and the key both count from it, so one key
    always names one picture."""
    return dt.datetime.fromtimestamp(_tick(now, step) * step, dt.UTC)


def _frame_plan(tpl: Template, resolved: Mapping, now: dt.datetime | None):
    countdown = _countdown(tpl)
    if countdown is None:
        for frame in tpl.frames:
            yield _coerce_frame(tpl, frame["variables"]), frame["duration"]
        return
    until = _deadline(countdown["until"], resolved)
    left = max(0, int((until - _tick_time(now, countdown["step"])).total_seconds()))
    for index in range(countdown["frames"]):
        yield _clock(max(0, left - index * countdown["step"])), countdown["duration"]


def _coerce_frame(tpl: Template, values: Mapping) -> dict:
    return {k: coerce(v, tpl.variables[k].type, name=k) if k in tpl.variables else v
            for k, v in values.items()}


def _deadline(source: str, resolved: Mapping) -> dt.datetime:
    path = "frames.countdown.until"
    value = compile_expression(source, path=path).evaluate(Scope(resolved))
    when = coerce(value, "date", name="countdown.until") if value not in (None, "") else None
    if when is None:
        raise ExpressionError("the countdown has no end time (is its variable set?)", path=path)
    if not isinstance(when, dt.datetime):
        when = dt.datetime.combine(when, dt.time(), dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _clock(seconds: int) -> dict[str, Any]:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return {"days": days, "hours": hours, "minutes": minutes, "seconds": secs,
            "total_seconds": seconds, "dd": f"{days:02d}", "hh": f"{hours:02d}",
            "mm": f"{minutes:02d}", "ss": f"{secs:02d}"}


def _render_html(tpl: Template, resolved: Mapping, opts: Options, context: Context):
    from .pdf import rasterize_pdf, render_html

    variant = tpl.sizes.get(opts.size) if opts.size else None
    if opts.size and variant is None:
        raise TemplateError(f"unknown size {opts.size!r}", path="size", code="unknown_size")
    width, height = (variant.width, variant.height) if variant else (tpl.width, tpl.height)
    scope = Scope(resolved)
    html = str(compile_expression(tpl.html, path="html", html=True).evaluate(scope))
    css = str(compile_expression(tpl.css, path="css", html=True).evaluate(scope)) \
        if tpl.css else ""
    pdf = render_html(html, css, width=width, height=height, fetch=context.fetch,
                      assets=context.assets)
    warnings = missing_warnings(scope)
    if opts.format == "pdf":
        return pdf, width, height, warnings
    image = rasterize_pdf(pdf, scale=opts.scale, transparent=opts.transparent)
    data = encode(image, opts.format, quality=opts.quality, transparent=opts.transparent)
    return data, image.width, image.height, warnings


def _default_assets(tpl: Template) -> Callable[[str], bytes] | None:
    return directory_assets(tpl.base_path) if tpl.base_path else None


__all__ = ["Rendered", "RendererError", "directory_assets", "render", "render_key",
           "render_scene"]
