"""Small PNG charts drawn with Pillow (no matplotlib): line charts, grouped bars, picture grids.

The sanity-check report needs only a few plain charts; drawing them here keeps the engine's
dependencies to PyTorch, NumPy and Pillow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Colour-blind-safe palette (Okabe-Ito), cycled for series.
PALETTE = [
    (0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167),
    (230, 159, 0), (86, 180, 233), (240, 228, 66), (0, 0, 0),
    (120, 120, 120), (150, 75, 0),
]
_MARGIN = {"left": 56, "right": 16, "top": 42, "bottom": 46}


def _font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow: bitmap font of fixed size
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


class _Axes:
    """Maps data coordinates to pixels inside the plot frame and draws the frame and ticks."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: tuple[int, int], x_range, y_range) -> None:
        self.draw = draw
        self.x0, self.y0 = _MARGIN["left"], _MARGIN["top"]
        self.x1, self.y1 = size[0] - _MARGIN["right"], size[1] - _MARGIN["bottom"]
        self.x_range = (float(x_range[0]), float(x_range[1]) if x_range[1] != x_range[0] else float(x_range[0]) + 1)
        self.y_range = (float(y_range[0]), float(y_range[1]) if y_range[1] != y_range[0] else float(y_range[0]) + 1)

    def px(self, x: float) -> float:
        lo, hi = self.x_range
        return self.x0 + (x - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, y: float) -> float:
        lo, hi = self.y_range
        return self.y1 - (y - lo) / (hi - lo) * (self.y1 - self.y0)

    def frame(self, title: str, x_label: str, y_label: str, y_ticks: int = 5) -> None:
        d, font = self.draw, _font()
        d.rectangle([self.x0, self.y0, self.x1, self.y1], outline=(80, 80, 80))
        lo, hi = self.y_range
        for k in range(y_ticks + 1):
            v = lo + (hi - lo) * k / y_ticks
            y = self.py(v)
            d.line([self.x0, y, self.x1, y], fill=(232, 232, 232))
            label = f"{v:.2f}" if hi - lo <= 5 else f"{v:.0f}"
            d.text((self.x0 - 6 - _text_width(d, label, font), y - 7), label, fill=(60, 60, 60), font=font)
        d.rectangle([self.x0, self.y0, self.x1, self.y1], outline=(80, 80, 80))
        d.text((self.x0, 4), title, fill=(0, 0, 0), font=_font(15))
        d.text(((self.x0 + self.x1) / 2 - _text_width(d, x_label, font) / 2, self.y1 + 26), x_label,
               fill=(60, 60, 60), font=font)
        d.text((4, self.y0 - 17), y_label, fill=(60, 60, 60), font=font)


def line_chart(
    path: Path | str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    axis_labels: tuple[str, str],  # x, y
    y_range: tuple[float, float] = (0.0, 1.0),
    x_ticks: Sequence[float] | None = None,
    size: tuple[int, int] = (560, 360),
    colours: dict[str, tuple[int, int, int]] | None = None,
) -> Path:
    """One polyline with dots per series; the legend lists series in the given order.

    `colours` fixes the colour of named series (e.g. a reference line); the rest cycle the palette.
    """
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    xs_all = [float(x) for xs, _ in series.values() for x in xs] or [0.0, 1.0]
    axes = _Axes(draw, size, (min(xs_all), max(xs_all)), y_range)
    axes.frame(title, *axis_labels)
    font = _font()
    for x in x_ticks if x_ticks is not None else sorted(set(xs_all)):
        label = f"{x:g}"
        draw.text((axes.px(x) - _text_width(draw, label, font) / 2, axes.y1 + 6), label, fill=(60, 60, 60), font=font)
    fixed = colours or {}
    legend: list[tuple[str, tuple[int, int, int]]] = []
    cycle = iter(PALETTE * (len(series) // len(PALETTE) + 1))
    for _k, (name, (xs, ys)) in enumerate(series.items()):
        colour = fixed[name] if name in fixed else next(cycle)
        points = [(axes.px(float(x)), axes.py(float(y))) for x, y in zip(xs, ys) if np.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=4 if name in fixed else 2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend.append((name, colour))
    _legend(draw, axes, legend)
    return _save(image, path)


def bar_chart(
    path: Path | str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    size: tuple[int, int] = (560, 360),
) -> Path:
    """Grouped bars: series[name][g] = (mean, spread) for group g; spread is drawn as +-spread."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    tops = [m + max(s, 0.0) for values in series.values() for m, s in values if np.isfinite(m)] or [1.0]
    lows = [m - max(s, 0.0) for values in series.values() for m, s in values if np.isfinite(m)] or [0.0]
    y_range = y_range or (min(0.0, min(lows)), max(tops) * 1.1 if max(tops) > 0 else 1.0)
    axes = _Axes(draw, size, (0, max(len(groups), 1)), y_range)
    axes.frame(title, "", y_label)
    font = _font()
    n_series = max(len(series), 1)
    slot = (axes.x1 - axes.x0) / max(len(groups), 1)
    bar = slot * 0.8 / n_series
    for g, group in enumerate(groups):
        gx = axes.x0 + slot * g + slot * 0.1
        draw.text((gx + slot * 0.4 - _text_width(draw, group, font) / 2, axes.y1 + 6), group, fill=(60, 60, 60),
                  font=font)
        for k, values in enumerate(series.values()):
            mean, spread = values[g]
            if not np.isfinite(mean):
                continue
            colour = PALETTE[k % len(PALETTE)]
            left = gx + bar * k
            base = axes.py(max(y_range[0], 0.0))
            draw.rectangle([left + 1, min(base, axes.py(mean)), left + bar - 1, max(base, axes.py(mean))], fill=colour)
            if spread > 0:
                cx = left + bar / 2
                draw.line([cx, axes.py(mean - spread), cx, axes.py(mean + spread)], fill=(0, 0, 0), width=1)
                for yy in (mean - spread, mean + spread):
                    draw.line([cx - 3, axes.py(yy), cx + 3, axes.py(yy)], fill=(0, 0, 0))
    if len(series) > 1:
        _legend(draw, axes, [(name, PALETTE[k % len(PALETTE)]) for k, name in enumerate(series)])
    return _save(image, path)


def _legend(draw: ImageDraw.ImageDraw, axes: _Axes, items: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Colour key in the top-right corner of the frame, on white so lines under it stay readable."""
    if not items:
        return
    font = _font()
    width = max(_text_width(draw, name, font) for name, _ in items) + 24
    left = axes.x1 - width - 6
    draw.rectangle([left - 4, axes.y0 + 3, axes.x1 - 3, axes.y0 + 8 + 16 * len(items)], fill="white",
                   outline=(200, 200, 200))
    for k, (name, colour) in enumerate(items):
        ly = axes.y0 + 6 + 16 * k
        draw.rectangle([left, ly + 3, left + 12, ly + 11], fill=colour)
        draw.text((left + 16, ly), name, fill=(0, 0, 0), font=font)


def picture_rows(
    path: Path | str,
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    *,
    title: str = "",
    label_width: int = 120,
    gap: int = 3,
) -> Path:
    """One row per (label, pictures): uint8 [H, W, 3] arrays side by side, label on the left."""
    font = _font()
    heights = [max((p.shape[0] for p in pics), default=0) for _, pics in rows]
    widths = [sum(p.shape[1] + gap for p in pics) for _, pics in rows]
    top = 24 if title else 4
    width = label_width + max(widths, default=0) + gap
    height = top + sum(h + gap for h in heights) + gap
    image = Image.new("RGB", (max(width, 200), max(height, 30)), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((4, 4), title, fill=(0, 0, 0), font=_font(15))
    y = top
    for (label, pictures), h in zip(rows, heights):
        draw.text((4, y + max(h // 2 - 7, 0)), label, fill=(0, 0, 0), font=font)
        x = label_width
        for picture in pictures:
            image.paste(Image.fromarray(np.asarray(picture, dtype=np.uint8)).convert("RGB"), (x, y))
            x += picture.shape[1] + gap
        y += h + gap
    return _save(image, path)


def _save(image: Image.Image, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path
