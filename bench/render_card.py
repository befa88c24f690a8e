"""Benchmark: the standard card (renderer/demo/card.json, 1200x630: gradient background, cover
photo, logo, four-line auto-fit bold title, subtitle, price badge whose text changes on every
render), warm renders, side by side in one run with:

- takumi-py (the Takumi Rust renderer) rendering the same card from HTML with the same fonts and
  pictures, the price changing on every render too;
- the encoder alone encoding a finished canvas of the same size (for PNG as pixels it has
  never seen: the bands that our renders reuse are forgotten before each encoding).

Run: .venv/bin/python bench/render_card.py [--runs 200] [--markdown]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from renderer import load_template, render
from renderer.api import directory_assets, render_scene
from renderer.encode import _bands, encode
from renderer.raster import paint

DEMO = Path(__file__).resolve().parent.parent / "renderer" / "demo"
NOTO = Path("/usr/share/fonts/truetype/noto")
FORMATS = ("png", "jpeg", "webp")


def timed_together(fns: list, runs: int, warmup: int = 10) -> list[tuple[float, int]]:
    """Median ms and output bytes of each function, run round-robin so that the noise of a
    shared 2-core VM falls on all of them alike."""
    for i in range(warmup):
        for fn in fns:
            fn(i)
    samples: list[list[float]] = [[] for _ in fns]
    sizes = [0] * len(fns)
    for i in range(runs):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            data = fn(warmup + i)
            samples[index].append(time.perf_counter() - start)
            sizes[index] = len(data)
    return [(statistics.median(s) * 1000, size) for s, size in zip(samples, sizes, strict=True)]


def ours(fmt: str):
    template = load_template(DEMO / "card.json")
    variables = template.samples()
    assets = directory_assets(DEMO)

    def run(i: int) -> bytes:
        return render(template, {**variables, "price": 10 + i}, format=fmt, assets=assets).data

    return run


def encoder_only(fmt: str):
    template = load_template(DEMO / "card.json")
    scene = render_scene(template, template.samples(), assets=directory_assets(DEMO))
    canvas = paint(scene)

    def run(i: int) -> bytes:
        _bands.clear()
        return encode(canvas, fmt)

    return run


TAKUMI_HTML = """
<div style="display:flex;width:1200px;height:630px;background:linear-gradient(135deg,#0f172a,#1e3a8a 60%,#7c3aed);font-family:'Noto Sans'">
  <img src="photo.jpg" style="width:560px;height:630px;object-fit:cover"/>
  <img src="logo.png" style="position:absolute;left:1076px;top:32px;width:92px;height:92px;object-fit:contain"/>
  <div style="position:absolute;left:600px;top:64px;width:560px;height:300px;color:#fff;font-weight:700;font-size:{size}px;line-height:1.12;overflow:hidden">{title}</div>
  <div style="position:absolute;left:600px;top:384px;width:560px;height:72px;color:#cbd5e1;font-size:28px;line-height:1.2">{subtitle}</div>
  <div style="position:absolute;left:600px;top:488px;width:280px;height:96px;border-radius:48px;background:#e11d48;display:flex;align-items:center;justify-content:center;color:#fff;font-weight:700;font-size:48px">{price}</div>
</div>
"""


def takumi(fmt: str):
    from takumi_py import FontResource, Renderer

    fonts = [FontResource((NOTO / "NotoSans-Regular.ttf").read_bytes(), name="Noto Sans",
                          weight=400),
             FontResource((NOTO / "NotoSans-Bold.ttf").read_bytes(), name="Noto Sans",
                          weight=700)]
    renderer = Renderer(load_default_fonts=False, fonts=fonts)
    images = [("photo.jpg", (DEMO / "photo.jpg").read_bytes()),
              ("logo.png", (DEMO / "logo.png").read_bytes())]
    template = load_template(DEMO / "card.json")
    samples = template.samples()
    # Takumi has no shrink-to-fit: give it the size our layout chose, so the text is the same.
    size = render_scene(template, samples, assets=directory_assets(DEMO)).items[2].size

    def run(i: int) -> bytes:
        html = TAKUMI_HTML.format(title=samples["title"], subtitle=samples["subtitle"],
                                  price=f"${(10 + i) * 0.9:.2f}", size=size)
        return renderer.render_html(html, width=1200, height=630, format=fmt, images=images)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = []
    for fmt in FORMATS:
        mine, theirs, alone = timed_together([ours(fmt), takumi(fmt), encoder_only(fmt)],
                                             args.runs)
        rows.append((fmt, mine, theirs, alone))
    print_table(rows, args.runs, args.markdown)


def print_table(rows, runs: int, markdown: bool) -> None:
    print(f"standard card 1200x630, median of {runs} warm renders, {platform.processor() or platform.machine()}"
          f", Python {platform.python_version()}")
    header = ("format", "pixelmerge ms", "takumi-py ms", "encode alone ms", "ours/takumi",
              "ours/encode", "bytes ours", "bytes takumi", "bytes encode")
    lines = [header] + [
        (fmt, f"{m[0]:.2f}", f"{t[0]:.2f}", f"{e[0]:.2f}", f"{m[0] / t[0]:.2f}x",
         f"{m[0] / e[0]:.2f}x", f"{m[1]:,}", f"{t[1]:,}", f"{e[1]:,}")
        for fmt, m, t, e in rows
    ]
    if markdown:
        print("| " + " | ".join(lines[0]) + " |")
        print("|" + "---|" * len(lines[0]))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
