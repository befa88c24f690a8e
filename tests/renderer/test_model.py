"""Template validation: every malformed template is refused with an error whose ``path`` and
message name the culprit, and well-formed ones load with their defaults filled in."""

from __future__ import annotations

import json

import pytest
from helpers import open_image

from renderer import ExpressionError, Limits, TemplateError, load_template, render
from renderer.errors import RendererError
from renderer.model import COMMON_PROPS, LAYER_PROPS


def rect(name="box", **props):
    return {"name": name, "type": "rect", "width": 10, "height": 10, **props}


def text(name="title", **props):
    return {"name": name, "type": "text", "width": 100, "height": 40, "text": "Hi", **props}


def layered(*layers, **top):
    return {"kind": "layered", "width": 100, "height": 80, "layers": list(layers), **top}


def refused(data, error=TemplateError, **kwargs) -> RendererError:
    with pytest.raises(error) as info:
        load_template(data, **kwargs)
    return info.value


# ------------------------------------------------------------------ JSON and top level


def test_malformed_json_names_line_and_column():
    error = refused('{"width": 100,\n "height": }')
    assert error.path == "$"
    assert "line 2 column 12" in error.message


def test_malformed_json_bytes_too():
    assert "line 1" in refused(b'{"width": 100,').message


@pytest.mark.parametrize("data", ["[1, 2]", b"[1, 2]", [1, 2], 42, None])
def test_a_template_must_be_an_object(data):
    error = refused(data)
    assert error.path == "$"
    assert "must be a JSON object" in error.message


def test_not_utf8():
    assert "UTF-8" in refused(b'{"name": "\xff"}').message


def test_unknown_kind():
    error = refused(layered(kind="svg"))
    assert error.path == "kind" and "'svg'" in error.message


def test_unknown_top_level_property_suggests_the_right_one():
    error = refused(layered(widht=3))
    assert error.path == "widht"
    assert "did you mean 'width'?" in error.message


def test_error_str_and_dict_carry_the_path():
    error = refused(layered(rect(fil="red")))
    assert str(error).startswith("layers[0].fil: ")
    assert error.to_dict() == {"code": "invalid_template", "message": str(error),
                               "details": {"path": "layers[0].fil"}}


# ------------------------------------------------------------------ sizes


@pytest.mark.parametrize("key", ["width", "height"])
@pytest.mark.parametrize("value", [-1, 0, 8001, 1e9])
def test_canvas_size_out_of_range(key, value):
    error = refused(layered(**{key: value}))
    assert error.path == key
    assert "between 1 and 8000" in error.message


@pytest.mark.parametrize("value", ["100", True, 10.5, [100]])
def test_canvas_size_must_be_whole_pixels(value):
    error = refused(layered(width=value))
    assert error.path == "width" and "whole number" in error.message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_canvas_size_not_finite(value):
    assert refused(layered(width=value)).path == "width"


def test_nan_in_json_text_is_refused_not_crashing():
    assert refused('{"width": NaN, "height": 10, "layers": []}').path == "width"


def test_canvas_size_missing():
    error = refused({"height": 10, "layers": []})
    assert error.path == "width" and "missing" in error.message


def test_canvas_limit_is_configurable():
    assert load_template(layered(width=8000)).width == 8000
    assert refused(layered(width=600), limits=Limits(max_canvas=500)).path == "width"


@pytest.mark.parametrize("key", ["width", "height"])
def test_negative_layer_size(key):
    error = refused(layered(rect(), rect("bad", **{key: -1})))
    assert error.path == f"layers[1].{key}"
    assert "at least 0" in error.message


@pytest.mark.parametrize("key", ["width", "height"])
def test_huge_layer_size(key):
    error = refused(layered(rect(**{key: 8001})))
    assert error.path == f"layers[0].{key}"
    assert "at most 8000" in error.message


def test_zero_size_layer_loads_and_draws_nothing():
    # A zero-size layer is a collapsed box (an editor or an expression may produce one), not
    # a broken template: it loads and paints nothing.
    tpl = load_template(layered(rect(width=0, fill="#ff0000"), background="#ffffff"))
    out = render(tpl, format="png")
    assert out.width == 100
    assert open_image(out.data).convert("RGB").getcolors() == [(100 * 80, (255, 255, 255))]


def test_layer_size_from_expression_is_held_to_the_canvas_limit():
    # The same rule as a size written by hand: an expression must not make a 9000 px sprite.
    tpl = load_template(layered(rect(width="{{ w }}", height=1, fill="#000"),
                                variables={"w": {"type": "number"}}))
    with pytest.raises(TemplateError) as info:
        render(tpl, {"w": 9000})
    assert info.value.path == "layers[0].width"


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "must be a number"), ([1], "must be a number"), (True, "must be a number"),
    (float("nan"), "finite"),
])
def test_layer_number_of_the_wrong_type(value, message):
    error = refused(layered(rect(x=value)))
    assert error.path == "layers[0].x" and message in error.message


def test_numbers_written_as_text_are_accepted():
    layer = load_template(layered(rect(x="12", y="1,200"))).layers[0]
    assert (layer.props["x"], layer.props["y"]) == (12, 1200)


@pytest.mark.parametrize(("props", "path"), [
    ({"max_lines": float("nan")}, "layers[0].max_lines"),
    ({"max_lines": "inf"}, "layers[0].max_lines"),
    ({"max_lines": 2.5}, "layers[0].max_lines"),
    ({"max_lines": 0}, "layers[0].max_lines"),
])
def test_whole_numbers(props, path):
    assert refused(layered(text(**props))).path == path


# ------------------------------------------------------------------ layers


def test_layers_must_be_a_list():
    assert refused(layered() | {"layers": {}}).path == "layers"
    assert refused({"width": 10, "height": 10}).path == "layers"


def test_layer_must_be_an_object():
    assert refused(layered(rect(), "text")).path == "layers[1]"


def test_unknown_layer_type_names_its_index():
    layers = [rect("a"), rect("b"), rect("c"), rect("d") | {"type": "triangle"}]
    error = refused(layered(*layers))
    assert error.path == "layers[3].type"
    assert "'triangle'" in error.message and "rect" in error.message


@pytest.mark.parametrize("missing", ["width", "height"])
def test_missing_required_common_property(missing):
    layer = rect()
    del layer[missing]
    error = refused(layered(layer))
    assert error.path == f"layers[0].{missing}"
    assert "missing" in error.message


@pytest.mark.parametrize(("layer", "path"), [
    ({"name": "t", "type": "text", "width": 10, "height": 10}, "layers[0].text"),
    ({"name": "t", "type": "text", "width": 10, "height": 10, "text": ""}, "layers[0].text"),
    ({"name": "i", "type": "image", "width": 10, "height": 10}, "layers[0].src"),
    ({"name": "q", "type": "qr", "width": 10, "height": 10}, "layers[0].data"),
    ({"type": "rect", "width": 10, "height": 10}, "layers[0].name"),
    ({"name": "", "type": "rect", "width": 10, "height": 10}, "layers[0].name"),
])
def test_missing_required_property(layer, path):
    assert refused(layered(layer)).path == path


def test_unknown_layer_property_suggests_a_fix():
    error = refused(layered(rect(), text(colour="#fff")))
    assert error.path == "layers[1].colour"
    assert "did you mean 'color'?" in error.message


def test_unknown_property_without_a_close_match():
    error = refused(layered(rect(zzzqqq=1)))
    assert error.path == "layers[0].zzzqqq" and "did you mean" not in error.message


def test_property_of_another_layer_type_is_unknown():
    assert refused(layered(rect(text="hi"))).path == "layers[0].text"


@pytest.mark.parametrize(("props", "path", "message"), [
    ({"visible": "maybe"}, "visible", "true or false"),
    ({"opacity": 2}, "opacity", "at most 1"),
    ({"opacity": -0.1}, "opacity", "at least 0"),
    ({"fit": "squeeze"}, "fit", "shrink, truncate, overflow"),
    ({"align": "justify"}, "align", "left, center, right"),
    ({"text": {"a": 1}}, "text", "must be text"),
    ({"size": 0}, "size", "at least 1"),
    ({"weight": 1001}, "weight", "at most 1000"),
])
def test_wrong_values(props, path, message):
    error = refused(layered(text(**props)))
    assert error.path == f"layers[0].{path}" and message in error.message


def test_duplicate_layer_names():
    error = refused(layered(rect("a"), rect("b"), rect("a")))
    assert error.path == "layers[2].name" and "'a'" in error.message


def test_too_many_layers():
    assert len(load_template(layered(*[rect(f"r{i}") for i in range(200)])).layers) == 200
    error = refused(layered(*[rect(f"r{i}") for i in range(201)]))
    assert error.path == "layers" and "201" in error.message and "200" in error.message


# ------------------------------------------------------------------ colours and gradients


@pytest.mark.parametrize(("props", "path"), [
    ({"fill": "#ggg"}, "fill"), ({"fill": "#12345"}, "fill"), ({"fill": "rgb(1,2)"}, "fill"),
    ({"fill": "blurple"}, "fill"), ({"fill": 12}, "fill"),
    ({"stroke": "linear-gradient(red, blue)"}, "stroke"),  # a stroke is one colour
])
def test_bad_colours(props, path):
    error = refused(layered(rect(**props)))
    assert error.path == f"layers[0].{path}"
    assert "colour" in error.message


@pytest.mark.parametrize(("fill", "message"), [
    ("linear-gradient(45deg, red)", "at least two colour stops"),
    ("linear-gradient(abcdeg, red, blue)", "bad gradient angle"),
    ("linear-gradient(45deg, red, blue", "is not a linear-gradient"),
    ("linear-gradient(45deg, red 50, blue)", "'red 50' is not a colour"),
    ("linear-gradient(45deg, red, nocolour)", "'nocolour' is not a colour"),
])
def test_bad_gradients(fill, message):
    error = refused(layered(rect(fill=fill)))
    assert error.path == "layers[0].fill" and message in error.message


def test_bad_background():
    assert refused(layered(background="linear-gradient(to nowhere, red, blue)")).path == \
        "background"


@pytest.mark.parametrize("color", [
    "#abc", "#abcd", "#aabbcc", "#aabbcc80", "rgb(1, 2, 3)", "rgba(1,2,3,.5)", "rgb(1 2 3 / 50%)",
    "rebeccapurple", "transparent", "linear-gradient(135deg, #1e3a8a, #7c3aed 80%)",
    "linear-gradient(to right, red, rgba(0, 0, 255, 0.5) 30%, blue)",
])
def test_good_colours_and_gradients(color):
    assert load_template(layered(rect(fill=color))).layers[0].props["fill"] == color


def test_colour_values():
    from renderer.colors import parse_color, parse_gradient

    assert parse_color("#F00", path="p").rgba == (255, 0, 0, 255)
    assert parse_color("#00ff0080", path="p").rgba == (0, 255, 0, 128)
    assert parse_color("rgba(0, 0, 255, 0.5)", path="p").rgba == (0, 0, 255, 128)
    assert parse_color("white", path="p").rgba == (255, 255, 255, 255)
    gradient = parse_gradient("linear-gradient(to right, red, lime, blue 90%)", path="p")
    assert gradient.angle == 90
    assert [s.offset for s in gradient.stops] == [0.0, 0.45, 0.9]
    assert parse_gradient("linear-gradient(red, blue)", path="p").angle == 180
    assert parse_gradient("linear-gradient(0.25turn, red, blue)", path="p").angle == 90


# ------------------------------------------------------------------ variables and fonts


@pytest.mark.parametrize(("variables", "path"), [
    ({"x": {"type": "integer"}}, "variables.x.type"),
    ({"x": "text"}, "variables.x"),
    ({"x-y": {"type": "text"}}, "variables.x-y"),
    ({"x": {"type": "number", "sampel": 1}}, "variables.x.sampel"),
    ([1], "variables"),
])
def test_bad_variable_declarations(variables, path):
    assert refused(layered(variables=variables)).path == path


def test_unknown_variable_type_lists_the_types():
    message = refused(layered(variables={"x": {"type": "integer"}})).message
    assert "'integer'" in message and "number" in message and "bool" in message


@pytest.mark.parametrize(("decl", "path"), [
    ({"type": "number", "default": "abc"}, "variables.price.default"),
    ({"type": "number", "sample": "forty"}, "variables.price.sample"),
    ({"type": "bool", "default": "perhaps"}, "variables.price.default"),
    ({"type": "date", "sample": "not a date"}, "variables.price.sample"),
])
def test_defaults_and_samples_must_fit_the_declared_type(decl, path):
    error = refused(layered(variables={"price": decl}))
    assert error.path == path


@pytest.mark.parametrize(("fonts", "path"), [
    ({"Brand": {"400": "/etc/passwd"}}, "fonts.Brand.400"),
    ({"Brand": {"bold": "asset:b.ttf"}}, "fonts.Brand.bold"),
    ({"Brand": {}}, "fonts.Brand"),
    ([], "fonts"),
])
def test_bad_fonts(fonts, path):
    assert refused(layered(fonts=fonts)).path == path


# ------------------------------------------------------------------ expressions


def test_broken_expression_names_layer_and_property():
    error = refused(layered(rect(), text(text="{{ title ")), error=ExpressionError)
    assert error.path == "layers[1].text"
    assert "syntax error" in error.message


@pytest.mark.parametrize(("source", "message"), [
    ("{% if on_sale %}yes", "endif"),
    ("{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'"),
    ("{{ title | }}", "syntax error"),
])
def test_expression_errors(source, message):
    error = refused(layered(rect(), text(text=source)), error=ExpressionError)
    assert error.path == "layers[1].text" and message in error.message


def test_expression_in_a_colour_is_checked_for_syntax():
    error = refused(layered(rect(fill="{{ brand ")), error=ExpressionError)
    assert error.path == "layers[0].fill"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ title.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
])
def test_sandbox_escapes_are_refused(source):
    with pytest.raises(ExpressionError) as info:
        tpl = load_template(layered(rect(), text(text=source)))
        render(tpl, {"title": "Hi"})
    assert info.value.code == "sandbox_violation"
    assert info.value.path == "layers[1].text"


def test_runtime_expression_errors_name_the_property():
    tpl = load_template(layered(text(text="{{ 1 / zero }}")))
    with pytest.raises(ExpressionError) as info:
        render(tpl, {"zero": 0})
    assert info.value.path == "layers[0].text"


def test_expression_producing_a_bad_value_names_the_property():
    tpl = load_template(layered(text(color="{{ brand }}")))
    with pytest.raises(TemplateError) as info:
        render(tpl, {"brand": "not-a-colour"})
    assert info.value.path == "layers[0].color"


# ------------------------------------------------------------------ sizes variants


def test_size_override_for_an_unknown_layer():
    error = refused(layered(rect(), sizes={"story": {"width": 10, "height": 10,
                                                      "layers": {"ghost": {"x": 1}}}}))
    assert error.path == "sizes.story.layers.ghost" and "'ghost'" in error.message


@pytest.mark.parametrize(("variant", "path"), [
    ({"width": 10, "height": 10, "layers": {"box": {"fil": "red"}}}, "sizes.story.layers.box.fil"),
    ({"width": 10, "height": 10, "layers": {"box": {"fill": "#ggg"}}},
     "sizes.story.layers.box.fill"),
    ({"width": 10, "height": 10, "layers": {"box": {"width": 9000}}},
     "sizes.story.layers.box.width"),
    ({"width": 10, "height": 10, "layers": {"box": {"height": -3}}},
     "sizes.story.layers.box.height"),
    ({"width": 10, "height": 10, "layers": ["box"]}, "sizes.story.layers"),
    ({"width": 0, "height": 10}, "sizes.story.width"),
    ({"height": 10}, "sizes.story.width"),
    ({"width": 10, "height": 10, "depth": 3}, "sizes.story.depth"),
    ("big", "sizes.story"),
])
def test_bad_size_variants(variant, path):
    assert refused(layered(rect(), sizes={"story": variant})).path == path


def test_sizes_must_be_an_object():
    assert refused(layered(rect(), sizes=[])).path == "sizes"


# ------------------------------------------------------------------ frames


@pytest.mark.parametrize(("frames", "path", "message"), [
    ([], "frames", "list of frames"),
    ("x", "frames", "list of frames"),
    ([1], "frames[0]", "must be an object"),
    ([{"variables": {}, "duration": 5}], "frames[0].duration", "at least 20"),
    ([{"variables": {}}, {"variabels": {}}], "frames[1].variabels", "did you mean 'variables'"),
    ([{"variables": "x"}], "frames[0].variables", "must be an object"),
    ([{"variables": {}}] * 301, "frames", "301"),
    ({"countdown": {}}, "frames.countdown.until", "missing"),
    ({"countdown": "soon"}, "frames.countdown", "'until'"),
    ({"countdown": {"until": "{{ ends_at "}}, "frames.countdown.until", "syntax error"),
    ({"countdown": {"until": "2030-01-01", "frames": 0}}, "frames.countdown.frames", "at least"),
    ({"countdown": {"until": "2030-01-01", "frames": 301}}, "frames.countdown.frames",
     "at most 300"),
    ({"countdown": {"until": "2030-01-01", "step": 0}}, "frames.countdown.step", "at least 1"),
    ({"countdown": {"until": "2030-01-01", "stpe": 1}}, "frames.countdown.stpe", "'step'"),
    ({"countdwn": {"until": "2030-01-01"}}, "frames.countdwn", "'countdown'"),
])
def test_bad_frames(frames, path, message):
    error = refused(layered(rect(), frames=frames), error=RendererError)
    assert error.path == path and message in error.message


def test_good_frames_get_defaults():
    tpl = load_template(layered(rect(), frames=[{"variables": {"a": 1}}, {"duration": 250}]))
    assert tpl.frames == [{"variables": {"a": 1}, "duration": 100},
                          {"variables": {}, "duration": 250}]
    tpl = load_template(layered(rect(), frames={"countdown": {"until": "{{ ends_at }}",
                                                              "step": 60}}))
    assert tpl.frames == {"countdown": {"until": "{{ ends_at }}", "frames": 60, "step": 60,
                                        "duration": 60000}}


# ------------------------------------------------------------------ html templates


@pytest.mark.parametrize(("data", "path"), [
    ({"kind": "html", "width": 100, "height": 100}, "html"),
    ({"kind": "html", "width": 100, "height": 100, "html": "  "}, "html"),
    ({"kind": "html", "width": 100, "height": 100, "html": "<p>x</p>", "layers": [rect()]},
     "layers"),
    ({"kind": "html", "width": 100, "height": 100, "html": "<p>x</p>", "css": 3}, "css"),
    ({"kind": "html", "width": 0, "height": 100, "html": "<p>x</p>"}, "width"),
    (layered(html="<p>x</p>"), "html"),
    (layered(css="p {}"), "css"),
])
def test_bad_html_templates(data, path):
    assert refused(data).path == path


def test_html_expression_syntax_is_checked():
    error = refused({"kind": "html", "width": 10, "height": 10, "html": "<p>{{ name </p>"},
                    error=ExpressionError)
    assert error.path == "html"


def test_html_template_loads_without_layers():
    tpl = load_template({"kind": "html", "width": 300, "height": 200, "html": "<p>{{ x }}</p>",
                         "css": "p { color: red }"})
    assert (tpl.kind, tpl.layers, tpl.html, tpl.css) == ("html", (), "<p>{{ x }}</p>",
                                                         "p { color: red }")


def test_html_file_with_size_hint(tmp_path):
    page = tmp_path / "banner.html"
    page.write_text('<meta name="pixelmerge:size" content="640x320"><h1>{{ title }}</h1>')
    tpl = load_template(page)
    assert (tpl.kind, tpl.name, tpl.width, tpl.height) == ("html", "banner", 640, 320)
    assert tpl.base_path == str(tmp_path.resolve())


# ------------------------------------------------------------------ files and identity


def test_missing_file(tmp_path):
    error = refused(str(tmp_path / "nope.json"))
    assert error.path == "$" and "nope.json" in error.message


def test_file_errors_keep_json_positions(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "width": 100,\n  "height": 100,\n  "layers": [,]\n}')
    assert "line 4 column 14" in refused(broken).message


def test_file_sets_the_asset_folder(demo_dir):
    tpl = load_template(str(demo_dir / "card.json"))
    assert tpl.base_path == str(demo_dir.resolve())
    assert load_template(layered()).base_path is None


def test_digest_is_stable_across_key_order():
    first = layered(rect(fill="#f00", x=1), text(color="#fff"), background="#000")
    second = json.loads(json.dumps(first, sort_keys=True))
    second["layers"] = [dict(reversed(list(layer.items()))) for layer in second["layers"]]
    second = dict(reversed(list(second.items())))
    assert list(second) != list(first)
    assert load_template(first).digest == load_template(second).digest
    assert load_template(json.dumps(second, indent=4)).digest == load_template(first).digest
    changed = layered(rect(fill="#f00", x=2), text(color="#fff"), background="#000")
    assert load_template(changed).digest != load_template(first).digest


# ------------------------------------------------------------------ the happy path


@pytest.mark.parametrize("name", ["card", "world", "countdown", "certificate"])
def test_demo_templates_load(load_demo, name):
    tpl = load_demo(name)
    assert tpl.width > 0 and tpl.height > 0
    assert tpl.name


def test_card_is_read_as_written(load_demo):
    tpl = load_demo("card")
    assert (tpl.kind, tpl.width, tpl.height) == ("layered", 1200, 630)
    assert [layer.name for layer in tpl.layers] == ["photo", "logo", "title", "subtitle",
                                                   "badge", "price"]
    assert [layer.path for layer in tpl.layers][2] == "layers[2]"
    assert set(tpl.sizes) == {"story", "square"}
    assert (tpl.sizes["story"].width, tpl.sizes["story"].height) == (1080, 1920)
    assert tpl.sizes["story"].layers["title"] == {"x": 80, "y": 1100, "width": 920,
                                                  "height": 360}
    assert tpl.variables["price"].type == "number"
    assert tpl.samples()["price"] == 49
    assert tpl.samples()["photo"] == "asset:photo.jpg"


def test_defaults_are_filled():
    tpl = load_template(layered(text(), rect("r")))
    title, box = tpl.layers
    assert set(title.props) == set(COMMON_PROPS) | set(LAYER_PROPS["text"])
    assert (title.props["x"], title.props["rotation"], title.props["opacity"]) == (0, 0, 1)
    assert title.props["visible"] is True
    assert (title.props["fit"], title.props["align"], title.props["valign"]) == \
        ("shrink", "left", "top")
    assert title.props["font"] == "Noto Sans" and title.props["size"] == 32
    assert box.props["fill"] is None and box.props["radius"] == 0
    assert tpl.name == "Untitled" and tpl.kind == "layered"


def test_enums_and_booleans_are_normalised():
    layer = load_template(layered(text(align=" Center ", visible="FALSE"))).layers[0]
    assert layer.props["align"] == "center"
    assert layer.props["visible"] is False


def test_static_layers():
    tpl = load_template(layered(rect(fill="#fff"), text(text="{{ title }}"),
                                rect("badge", visible="{{ on_sale }}"),
                                text("cond", text="{% if x %}a{% endif %}")))
    assert [layer.static for layer in tpl.layers] == [True, False, False, False]
