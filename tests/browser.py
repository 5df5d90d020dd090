"""Headless Chromium screenshots and a small PNG reader, for the picture tests.

Chromium (Debian's ``chromium``, installed by ``make deps``) runs as root here, hence
``--no-sandbox``; ``--force-device-scale-factor=1`` keeps one SVG unit one pixel, so a test
can look at the pixel where it drew a cell.  The PNG reader handles what Chromium writes
(8-bit RGB/RGBA, non-interlaced, all five filters): no imaging library needed.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "chromium"


def screenshot(url: str, out: Path, size: tuple[int, int] = (900, 1000), timeout: float = 120) -> "Png":
    """Load url in headless Chromium and return its screenshot (also written to out)."""
    out = Path(out)
    if out.exists():
        out.unlink()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--force-device-scale-factor=1", "--allow-file-access-from-files", "--virtual-time-budget=3000",
           f"--user-data-dir={out.parent / ('.chromium-' + out.stem)}",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    assert out.exists(), f"chromium wrote no screenshot (rc {r.returncode}): {r.stderr.decode()[-2000:]}"
    return Png(out.read_bytes())


class Png:
    def __init__(self, data: bytes):
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat = 8, b""
        while pos < len(data):
            n, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + n]
            if kind == b"IHDR":
                self.width, self.height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
                assert depth == 8 and colour in (2, 6) and not interlace, (depth, colour, interlace)
                self.bpp = 3 if colour == 2 else 4
            elif kind == b"IDAT":
                idat += body
            pos += 12 + n
        raw = zlib.decompress(idat)
        stride = self.width * self.bpp
        rows, prev = [], bytearray(stride)
        for y in range(self.height):
            f = raw[y * (stride + 1)]
            line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            bpp = self.bpp
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    line[i] = (line[i] + a) & 255
                elif f == 2:
                    line[i] = (line[i] + b) & 255
                elif f == 3:
                    line[i] = (line[i] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            rows.append(bytes(line))
            prev = line
        self.rows = rows

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = x * self.bpp
        return tuple(self.rows[y][i:i + 3])

    def colours(self) -> set:
        return {self.pixel(x, y) for y in range(0, self.height, 3) for x in range(0, self.width, 3)}

    def non_white(self) -> float:
        """Fraction of sampled pixels that are not white."""
        n = hit = 0
        for y in range(0, self.height, 4):
            for x in range(0, self.width, 4):
                n += 1
                hit += self.pixel(x, y) != (255, 255, 255)
        return hit / n
