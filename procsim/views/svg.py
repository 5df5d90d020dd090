"""A few SVG helpers for the pictures (plain strings: no plotting stack, deterministic bytes).

Numbers are printed with at most two decimals so the same state always gives the same
bytes; text is XML-escaped.  ``row_runs`` is the trick that keeps a 1 TiB zone small:
consecutive cells of a row that look the same are drawn as one rectangle.
"""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

FONT = "font-family:DejaVu Sans,Verdana,sans-serif"


def num(x: float) -> str:
    """Coordinates: integers as integers, the rest with two decimals (stable bytes)."""
    if x == int(x):
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def rect(x, y, w, h, fill, extra: str = "") -> str:
    return f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" fill="{fill}"{extra}/>'


def text(x, y, s, size: int = 12, anchor: str = "start", weight: str = "normal", fill: str = "#222") -> str:
    w = ' font-weight="bold"' if weight == "bold" else ""
    return (f'<text x="{num(x)}" y="{num(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{w}>'
            f"{escape(s)}</text>")


def document(width, height, body: list[str], title: str) -> bytes:
    """A standalone SVG document with a white background and a <title>."""
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
            f'viewBox="0 0 {num(width)} {num(height)}" style={quoteattr(FONT)}>\n'
            f"<title>{escape(title)}</title>\n"
            f'{rect(0, 0, width, height, "#ffffff")}\n')
    return (head + "\n".join(body) + "\n</svg>\n").encode()


def legend(x, y, items: list[tuple[str, str]], width: float, swatch: int = 12) -> tuple[list[str], float]:
    """Swatch + name pairs, flowed left to right and wrapped at width; returns (parts, height)."""
    out, cx, cy = [], x, y
    for name, colour in items:
        w = swatch + 6 + 7 * len(name) + 16
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + swatch + 8
        out.append(rect(cx, cy, swatch, swatch, colour, ' stroke="#555" stroke-width="0.5"'))
        out.append(text(cx + swatch + 4, cy + swatch - 2, name, 11))
        cx += w
    return out, cy - y + swatch + 8


def row_runs(cells: list, cols: int):
    """(row, first column, length, cell) for each run of equal consecutive cells in a row."""
    for r0 in range(0, len(cells), cols):
        row = cells[r0:r0 + cols]
        start = 0
        for i in range(1, len(row) + 1):
            if i == len(row) or row[i] != row[start]:
                yield r0 // cols, start, i - start, row[start]
                start = i


def blend(a: str, b: str, t: float) -> str:
    """The colour t of the way from #rrggbb a to b."""
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=False))


def human(pages: int) -> str:
    """Pages as KiB/MiB/GiB for labels."""
    kb = pages * 4
    for unit in ("KiB", "MiB", "GiB"):
        if kb < 1024 * 10 or unit == "GiB":
            return f"{kb:g} {unit}" if unit == "KiB" else f"{kb:.1f} {unit}"
        kb /= 1024
    return f"{kb:.1f} GiB"
