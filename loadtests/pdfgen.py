"""Synthetic scans: PDFs that look like a scanner's output (image-only colour pages, set dpi).

Used by the load suite, the benchmarks and the tests, so no large binary is ever committed.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

A4_INCHES = (8.27, 11.69)


def scanned_page(dpi: int = 200, *, seed: int = 0, mode: str = "RGB", noise: float = 18.0) -> Image.Image:
    """One page: off-white paper with sensor noise, dark 'text' lines and a red stamp."""
    rng = random.Random(seed)
    width, height = round(A4_INCHES[0] * dpi), round(A4_INCHES[1] * dpi)
    grain = Image.effect_noise((width, height), noise)
    paper = Image.merge(
        "RGB",
        [grain.point(lambda v, o=o: min(255, 200 + o + v // 5)) for o in (40, 36, 28)],
    )
    draw = ImageDraw.Draw(paper)
    margin = dpi  # one inch
    line_height = max(8, dpi // 6)
    y = margin
    while y < height - margin:
        x = margin
        while x < width - margin:
            word = rng.randint(dpi // 8, dpi // 2)
            draw.rectangle([x, y, min(x + word, width - margin), y + line_height // 2], fill=(30, 30, 40))
            x += word + dpi // 12
        y += line_height + rng.randint(0, line_height // 2)
    r = dpi // 2
    cx, cy = width - 2 * margin, height - 2 * margin
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(200, 20, 20), width=max(2, dpi // 40))
    return paper if mode == "RGB" else paper.convert(mode)


def scanned_pdf(
    pages: int = 5,
    dpi: int = 200,
    *,
    seed: int = 0,
    quality: int = 85,
    mode: str = "RGB",
    noise: float = 46.0,
) -> bytes:
    """A multi-page image-only PDF as a scanner writes it, each page drawn at ``dpi``."""
    images = [scanned_page(dpi, seed=seed * 1000 + i, mode=mode, noise=noise) for i in range(pages)]
    out = io.BytesIO()
    compression = {"quality": quality} if mode in ("RGB", "L") else {}  # JPEG for colour and grey
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi), **compression)
    return out.getvalue()


def vietnamese_scan_pdf(lines: list[str], dpi: int = 200) -> bytes:
    """A Vietnamese page rendered, slightly blurred and rotated like a real scan, image-only."""
    import matplotlib
    from PIL import ImageFilter, ImageFont

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_path), size=round(dpi * 0.16))  # about 12 pt
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    page = Image.new("RGB", (width, height), (246, 243, 235))
    draw = ImageDraw.Draw(page)
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=(25, 25, 35))
        y += round(dpi * 0.3)
    page = page.rotate(0.8, resample=Image.Resampling.BICUBIC, fillcolor=(246, 243, 235))
    page = page.filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=float(dpi), quality=85)
    return out.getvalue()


# A page of a land-use right certificate, as the communes scan them most.
VIETNAMESE_LINES = [
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY CHỨNG NHẬN QUYỀN SỬ DỤNG ĐẤT",
    "Người sử dụng đất: Nguyễn Thị Hường",
    "Thửa đất số 128, tờ bản đồ số 15",
    "Địa chỉ: xã Hoàng Đồng, thành phố Lạng Sơn",
]
