"""Malformed and hostile PDFs, built in code: what a careless or malicious client might send."""

from __future__ import annotations

import io
import zlib
from typing import Any

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


def _page_dict(contents: int, resources: bytes = b"/Font << /F1 5 0 R >>", box: bytes = b"[0 0 595 842]") -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox "
        + box
        + b" /Contents %d 0 R /Resources << " % contents
        + (resources + b" >> >>")
    )


def text_pdf_with(catalog_extra: bytes = b"", extra_objects: list[bytes] | None = None, version: str = "1.4") -> bytes:
    """The one-page text PDF with more in its catalog (actions, names, metadata): objects 6 and on."""
    content = b"BT /F1 14 Tf 72 760 Td (Giay chung nhan quyen su dung dat so 123) Tj ET"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page_dict(4),
            stream_object(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *(extra_objects or []),
        ],
        version=version,
    )


def javascript_pdf() -> bytes:
    return text_pdf_with(b"/OpenAction << /S /JavaScript /JS (app.alert('xin chao')) >>")


def launch_pdf() -> bytes:
    return text_pdf_with(b"/OpenAction 6 0 R", [b"<< /S /Launch /F (C:\\\\Windows\\\\System32\\\\cmd.exe) >>"])


def embedded_file_pdf() -> bytes:
    return text_pdf_with(
        b"/Names << /EmbeddedFiles << /Names [(hoa-don.exe) 6 0 R] >> >>",
        [b"<< /Type /Filespec /F (hoa-don.exe) /EF << /F 7 0 R >> >>", stream_object(b"MZ not really")],
    )


def pdfa_pdf() -> bytes:
    xmp = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">'
        b"<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    return text_pdf_with(b"/Metadata 6 0 R", [stream_object(xmp, b"/Type /Metadata /Subtype /XML")])


def old_version_pdf() -> bytes:
    return text_pdf_with(version="1.3")


def letter_pdf() -> bytes:
    """A US Letter page (216 x 279 mm): neither A4 nor A3."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page_dict(4, box=b"[0 0 612 792]"),
            stream_object(b"BT /F1 14 Tf 72 700 Td (Don de nghi cap ban sao trich luc) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def blank_scan_pdf(dpi: int = 200) -> bytes:
    """An image-only page of empty paper with sensor noise, as a scanner makes of a blank sheet."""
    from PIL import Image

    width, height = round(8.27 * dpi), round(11.69 * dpi)
    grain = Image.effect_noise((width, height), 46).point(lambda v: min(255, 228 + v // 5))
    paper = Image.merge("RGB", [grain, grain, grain])
    out = io.BytesIO()
    paper.save(out, format="PDF", resolution=float(dpi), quality=85)
    return out.getvalue()


def rotated_scan_pdf(dpi: int = 200) -> bytes:
    """A portrait A4 scan stored as a landscape image on a landscape page turned by /Rotate 90."""
    from loadtests.pdfgen import scanned_page

    landscape = scanned_page(dpi, seed=7).rotate(90, expand=True)
    out = io.BytesIO()
    landscape.save(out, format="PDF", resolution=float(dpi), quality=80)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(out.getvalue())))
    writer.pages[0].rotate(90)
    writer.pdf_header = b"%PDF-1.4"
    result = io.BytesIO()
    writer.write(result)
    return result.getvalue()


def mixed_pdf() -> bytes:
    """Page 1 has a text layer, page 2 is an image-only scan."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf())))
    writer.append(PdfReader(io.BytesIO(scanned_pdf(pages=1, dpi=200, seed=3))))
    writer.pdf_header = b"%PDF-1.4"
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def deeply_nested_pdf(depth: int = 100_000) -> bytes:
    """A page whose resources hold an array nested ``depth`` levels deep."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /X "
            + b"[" * depth
            + b"]" * depth
            + b" >> >>",
            stream_object(b"BT ET"),
        ]
    )


def many_pages_pdf(pages: int = 5000) -> bytes:
    """A page tree claiming more pages than allowed, all sharing one content stream."""
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
            stream_object(b"BT ET"),
            *([page] * pages),
        ]
    )


def broken_xref_pdf() -> bytes:
    """Offsets in the cross-reference table that point nowhere, and no objects to rebuild it from."""
    good = text_pdf()
    head, _, _ = good.partition(b"1 0 obj")
    return (
        head
        + b"garbage where the objects were\nxref\n0 2\n0000000000 65535 f \n0000099999 00000 n \n"
        + (b"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n12345\n%%EOF\n")
    )


def sign_with(data: bytes, who: Any, ca: Any, field: str = "ChuKyCanBo") -> bytes:
    """``data`` signed by ``who`` (a ``warehouse.pki.Issued``) as a digitizer's signing tool does it,
    with the certificate of ``ca`` that issued it carried along."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    der = serialization.Encoding.DER
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(who.cert.public_bytes(der)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            who.key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        ),
        cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(ca.cert.public_bytes(der))]),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    append_signature_field(writer, SigFieldSpec(sig_field_name=field))
    from cryptography.x509.oid import NameOID

    name = str(who.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    out = signers.sign_pdf(writer, signers.PdfSignatureMetadata(field_name=field, name=name), signer=signer)
    return out.getvalue()


def signed_pdf() -> bytes:
    """The text PDF signed by a commune officer whose certificate no configured root vouches for."""
    from warehouse import pki

    ca = pki.authority()
    return sign_with(text_pdf(), pki.issue(ca, "Nguyễn Văn An"), ca)


def tampered(signed: bytes) -> bytes:
    """The signed PDF with one signed byte changed: the text in the page's content stream."""
    return signed.replace(b"quyen su dung dat so 123", b"quyen su dung dat so 999", 1)


# -- what real scanners and office software make, and what broke on it ---------------------------------


def _one_text_page(content: bytes, *, extra: bytes = b"", more: list[bytes] | None = None) -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> " + extra + b" >> >>",
        stream_object(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *(more or []),
    ]


def nul_text_pdf() -> bytes:
    """A text layer with NUL characters in it, as some TeX and office exports have (Postgres refuses
    them in text)."""
    content = b"BT /F1 14 Tf 72 760 Td (Giay\\000chung nhan quyen\\000su dung dat so 123) Tj ET"
    return build_pdf(_one_text_page(content))


def odd_image_pdf() -> bytes:
    """A page with a text layer and an image whose dictionary cannot be read (its width is a name)."""
    image = stream_object(b"\x00" * 16, b"/Type /XObject /Subtype /Image /Width /Wide /Height 4 /BitsPerComponent 8")
    content = b"q 500 0 0 700 40 60 cm /Im1 Do Q BT /F1 14 Tf 72 760 Td (Giay chung nhan quyen su dung dat) Tj ET"
    return build_pdf(_one_text_page(content, extra=b"/XObject << /Im1 6 0 R >>", more=[image]))


def flate_with_trailing_eol_pdf(inflated_mib: float = 1.5) -> bytes:
    """A text page with an image whose Flate data inflates past 1 MiB and is followed, inside /Length,
    by an end-of-line, as many government PDFs are written."""
    side = int((inflated_mib * 1024 * 1024 / 3) ** 0.5)
    raw = bytes(range(256)) * (side * side * 3 // 256 + 1)
    data = zlib.compress(raw[: side * side * 3]) + b"\r\n"
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(data)) + data + b"\nendstream"
    )
    content = b"q 400 0 0 400 100 300 cm /Im1 Do Q BT /F1 14 Tf 72 760 Td (Giay chung nhan quyen su dung dat) Tj ET"
    return build_pdf(_one_text_page(content, extra=b"/XObject << /Im1 6 0 R >>", more=[image]))


def one_bad_page_pdf(pages: int = 30, bad: int = 17, inflated_mib: int = 64) -> bytes:
    """Many text pages, one of whose content streams inflates past the limit (a reader shows the rest)."""
    packer = zlib.compressobj(9)
    bomb = b"".join([packer.compress(b" " * (16 * 1024 * 1024)) for _ in range(inflated_mib // 16)]) + packer.flush()
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i in range(1, pages + 1):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * (i - 1))
        )
        if i == bad:
            objects.append(stream_object(bomb, b"/Filter /FlateDecode"))
        else:
            objects.append(stream_object(b"BT /F1 14 Tf 72 760 Td (Trang %d cua giay chung nhan) Tj ET" % i))
    return build_pdf(objects)


def lost_root_pdf() -> bytes:
    """A trailer that lost its /Root entry; the catalogue is still there, and readers find it."""
    return text_pdf().replace(b"/Root 1 0 R", b"")


def padded_pdf(padding: int = 8192) -> bytes:
    """A complete file with padding after %%EOF (scanners write in blocks)."""
    return text_pdf() + b"\x00" * padding


def dark_scan_pdf(dpi: int = 100) -> bytes:
    """An image-only page that is mostly dark with light marks: a negative scan or a photograph."""
    from PIL import Image, ImageDraw

    width, height = round(8.27 * dpi), round(11.69 * dpi)
    page = Image.new("RGB", (width, height), (18, 18, 22))
    draw = ImageDraw.Draw(page)
    for row in range(40, height - 40, 28):
        draw.rectangle([60, row, width - 60 - (row * 7) % 200, row + 12], fill=(235, 235, 235))
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=float(dpi), quality=85)
    return out.getvalue()
