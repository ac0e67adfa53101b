"""Malformed and hostile PDFs, built in code: what a careless or malicious client might send."""

from __future__ import annotations

import io
import zlib

from pypdf import PdfReader, PdfWriter

from loadtests.pdfgen import scanned_pdf


def build_pdf(objects: list[bytes], *, root: int = 1, version: str = "1.4") -> bytes:
    """A PDF from numbered object bodies (object n is objects[n-1]), with a correct xref table."""
    out = io.BytesIO()
    out.write(f"%PDF-{version}\n%\xe2\xe3\xcf\xd3\n".encode("latin-1"))
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def stream_object(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_pdf(text: str = "Giay chung nhan quyen su dung dat so 123") -> bytes:
    """One A4 page with a real text layer (Helvetica, ASCII)."""
    content = b"BT /F1 14 Tf 72 760 Td (" + text.encode("latin-1") + b") Tj ET"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            stream_object(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def slow_pdf(operators: int = 200_000) -> bytes:
    """One page whose content stream holds so many text operators that reading it takes seconds."""
    content = zlib.compress(b"BT /F1 1 Tf " + b"(a) Tj " * operators + b"ET")
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            stream_object(content, b"/Filter /FlateDecode"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def truncated_pdf() -> bytes:
    """A scan cut off halfway, as a dropped link leaves it."""
    whole = scanned_pdf(pages=2, dpi=100)
    return whole[: len(whole) // 2]


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf())))
    writer.encrypt(user_password="mat-khau", owner_password="chu-so-huu", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def cyclic_pdf() -> bytes:
    """A page tree whose Pages node lists itself (through a second node) as a kid."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        ]
    )


def bomb_pdf(inflated_mib: int = 1024) -> bytes:
    """One page whose content stream is small on disk and inflates to ``inflated_mib`` MiB."""
    packer = zlib.compressobj(9)
    block = b" " * (16 * 1024 * 1024)
    parts = [packer.compress(block) for _ in range(inflated_mib // 16)]
    parts.append(packer.flush())
    data = b"".join(parts)
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            stream_object(data, b"/Filter /FlateDecode"),
        ]
    )
