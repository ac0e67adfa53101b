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


def text_document_pdf(pages: int = 20, *, seed: int = 0, lines_per_page: int = 45) -> bytes:
    """A text-heavy document as office software exports it: A4 pages of running text in a standard
    font, Flate-compressed content streams, an outline-free page tree, an info dictionary."""
    import zlib

    rng = random.Random(seed)
    words = [
        "giay",
        "chung",
        "nhan",
        "quyen",
        "su",
        "dung",
        "dat",
        "uy",
        "ban",
        "nhan",
        "dan",
        "xa",
        "huyen",
        "tinh",
        "lang",
        "son",
        "ho",
        "so",
        "thu",
        "tuc",
        "hanh",
        "chinh",
        "ket",
        "qua",
        "giai",
        "quyet",
        "con",
        "hieu",
        "luc",
        "cong",
        "dan",
        "to",
        "chuc",
        "ngay",
        "thang",
        "nam",
        "so",
        "ky",
        "hieu",
        "co",
        "quan",
        "ban",
        "hanh",
    ]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for _ in range(pages):
        text = [b"BT /F1 11 Tf 13 TL 64 790 Td"]
        for _ in range(lines_per_page):
            line = " ".join(rng.choice(words) for _ in range(rng.randint(9, 14))).capitalize()
            text.append(b"(" + line.encode("latin-1") + b") '")
        text.append(b"ET")
        content = zlib.compress(b"\n".join(text))
        page_number = len(objects) + 1
        kids.append(page_number)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (page_number + 1)
        )
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % pages
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
