"""Pixelmerge's renderer: a template plus a row of data becomes an image or a PDF.

    from renderer import load_template, render, render_key
    tpl = load_template("card.json")
    out = render(tpl, {"title": "Hi"}, format="png")
    out.data, out.width, out.height, out.format, out.warnings, out.key

A pure library: no web framework, no database and no network of its own. Remote ``http(s)``
images load only through the ``fetch`` callable the caller injects.
"""

from .api import Rendered, render, render_key, render_scene
from .errors import (
    ExpressionError,
    LimitError,
    RendererError,
    ResourceError,
    TemplateError,
)
from .model import Limits, Template, load_template

__all__ = [
    "ExpressionError", "LimitError", "Limits", "Rendered", "RendererError", "ResourceError",
    "Template", "TemplateError", "load_template", "render", "render_key", "render_scene",
]
