"""Geometry for the dashboards' inline SVG charts (no JavaScript library, no CDN)."""
from __future__ import annotations

from collections.abc import Sequence


def bars(items: Sequence[tuple[str, float]], *, width: int = 360, height: int = 160, gap: int = 6) -> dict:
    """Vertical bars scaled to the tallest; each bar carries its label and value for the template."""
    top = max((v for _, v in items), default=0) or 1
    n = max(len(items), 1)
    slot = width / n
    plot = height - 30  # room for labels under the bars and values above
    out = []
    for i, (label, value) in enumerate(items):
        h = plot * value / top
        out.append({
            "label": label, "value": value, "x": round(i * slot + gap / 2, 1), "w": round(max(slot - gap, 1), 1),
            "y": round(plot - h + 14, 1), "h": round(h, 1), "cx": round(i * slot + slot / 2, 1),
        })
    return {"bars": out, "width": width, "height": height, "label_y": height - 4}


def histogram_bins(counts: Sequence[int]) -> list[tuple[str, int]]:
    """Bins of [0, 1] labelled by their lower edge (0.0, 0.1, ...)."""
    n = len(counts)
    return [(f"{i / n:.1f}", c) for i, c in enumerate(counts)]
