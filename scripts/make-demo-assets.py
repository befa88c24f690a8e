"""Generates the demo pictures in renderer/demo/ (kept in git; rerun to change them).

A deterministic "photo" (soft landscape-like shapes with grain) and a logo, so the demo and the
benchmark need no network and no third-party images."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

OUT = Path(__file__).resolve().parent.parent / "renderer" / "demo"


def photo(width: int = 1200, height: int = 900) -> Image.Image:
    rng = np.random.default_rng(7)
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    sky = np.stack([120 + 100 * y + 0 * x, 170 + 60 * y + 0 * x, 230 - 40 * y + 0 * x], -1)
    image = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((760, 110, 980, 330), fill=(255, 214, 120))
    for i, color in enumerate([(70, 110, 90), (50, 85, 70), (35, 60, 50)]):
        base = 480 + i * 120
        points = [(0, height)] + [(px, base + 90 * np.sin(px / (170 + 60 * i) + i))
                                  for px in range(0, width + 40, 40)] + [(width, height)]
        draw.polygon(points, fill=color)
    image = image.filter(ImageFilter.GaussianBlur(2))
    grain = rng.normal(0, 5, (height, width, 1))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def logo(size: int = 256) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=56, fill=(255, 255, 255, 235))
    draw.polygon([(64, 184), (128, 64), (192, 184)], fill=(225, 29, 72))
    font = ImageFont.truetype("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf", 40)
    draw.text((128, 222), "PM", font=font, fill=(15, 23, 42), anchor="mm")
    return image


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    photo().save(OUT / "photo.jpg", quality=80)
    logo().save(OUT / "logo.png")
    print("wrote", OUT / "photo.jpg", OUT / "logo.png")
