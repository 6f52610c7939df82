"""Draw `swirls.jpg`, the project's own style image: brush strokes following a swirling flow.

Run from the repository root: `python images/draw_style.py`. Deterministic (fixed seed),
needs only numpy and Pillow. The result is the project's work, under the project's licence.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 512, 384
# (x, y, strength): centres of the swirls, as fractions of the canvas
VORTICES = [(0.28, 0.32, 1.0), (0.70, 0.22, -0.8), (0.55, 0.68, 0.9), (0.12, 0.80, -0.6), (0.90, 0.70, 0.7)]
PALETTE = np.array(
    [
        [18, 38, 92],
        [32, 72, 150],
        [70, 120, 190],
        [120, 170, 215],  # night blues
        [235, 205, 80],
        [250, 230, 140],
        [40, 90, 70],
        [20, 30, 45],
    ],
    float,
)


def flow(x, y):
    """Unit direction of the flow at (x, y) in canvas fractions: swirls over a gentle wave."""
    vx, vy = 1.0, 0.35 * np.sin(6 * x + 2 * y)
    for cx, cy, s in VORTICES:
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + 0.004
        vx, vy = vx - s * dy / r2 * 0.15, vy + s * dx / r2 * 0.15
    n = np.hypot(vx, vy) + 1e-9
    return vx / n, vy / n


def colour(x, y, rng):
    """Blues in the sky, yellow near swirl centres, dark greens low down, with jitter."""
    near = min(np.hypot(x - cx, y - cy) for cx, cy, _ in VORTICES)
    if near < 0.09:
        base = PALETTE[4 + rng.integers(0, 2)]
    elif y > 0.82 and rng.random() < 0.6:
        base = PALETTE[6 + rng.integers(0, 2)]
    else:
        base = PALETTE[rng.integers(0, 4)]
    return tuple(int(c) for c in np.clip(base + rng.normal(0, 14, 3), 0, 255))


def draw(seed=7):
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (WIDTH, HEIGHT), (25, 45, 100))
    pen = ImageDraw.Draw(img)
    for _ in range(9000):
        x, y = rng.random(), rng.random()
        points, fill, width = [], colour(x, y, rng), int(rng.integers(3, 8))
        for _ in range(int(rng.integers(6, 16))):
            points.append((x * WIDTH, y * HEIGHT))
            dx, dy = flow(x, y)
            x, y = x + dx * 0.012, y + dy * 0.012 * WIDTH / HEIGHT
        pen.line(points, fill=fill, width=width, joint="curve")
    return img.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "swirls.jpg"
    draw().save(out, quality=92)
    print(f"wrote {out}")
