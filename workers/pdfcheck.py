"""Reading one PDF with pypdf and saying what it is, page by page. Runs inside a limited child process.

Facts only: what they mean against the scan standard is decided in ``workers.standard``.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from pypdf.errors import FileNotDecryptedError, LimitReachedError

# Signatures validated per file (each costs pyHanko a chain and a digest); the rest are listed unchecked.
MAX_SIGNATURES_CHECKED = 20
# A page whose extracted text has this many visible characters counts as having a text layer.
MIN_TEXT_CHARS_PER_PAGE = 20
MIB = 1024 * 1024
PT_TO_MM = 25.4 / 72


@dataclass
class Report:
    """What one inspection found. ``problem`` is set when the file cannot be read at all.

    Facts only; what they mean against the scan standard is decided in ``workers.standard``.
    """

    pages: int | None = None
    pdf_version: str | None = None
    encrypted: bool = False
    text_pages: int = 0
    text_chars: int = 0
    page_texts: list[str] = field(default_factory=list)
    page_facts: list[dict[str, Any]] = field(default_factory=list)
    page_errors: list[int] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    pdfa: dict[str, str] | None = None
    javascript: bool = False
    launch_actions: bool = False
    embedded_files: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    damaged: bool = False
    problem: str | None = None
    problem_detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _open(source: str | bytes) -> io.BufferedIOBase:
    """A file to read: ``source`` is a path, or the file's bytes as fetched from the store."""
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _has_eof_marker(source: str | bytes) -> bool:
    """Whether the file has an end-of-file marker anywhere: scanners and office software pad files after
    it, and readers accept that, so only a file with none at all is taken as cut short."""
    if isinstance(source, bytes):
        return source.rfind(b"%%EOF") >= 0
    with open(source, "rb") as fh:
        tail = b""
        while chunk := fh.read(MIB):
            if b"%%EOF" in tail + chunk:
                return True
            tail = chunk[-4:]
    return False


class StreamBomb(Exception):
    """A compressed stream that inflates past the allowed size."""


def _inflated_size(raw: bytes, limit: int) -> int:
    """Bytes a Flate stream inflates to, counted without keeping them; stops past ``limit``."""
    inflater = zlib.decompressobj()
    total, data = 0, raw
    while data:
        out = inflater.decompress(data, 1024 * 1024)
        total += len(out)
        if total > limit:
            raise StreamBomb(f"a stream inflates to more than {limit // (1024 * 1024)} MiB")
        if inflater.eof:  # bytes after the end of the zlib data (an end-of-line counted in /Length) are not data
            break
        if not out and inflater.unconsumed_tail == data:  # no progress: nothing more will come out
            break
        data = inflater.unconsumed_tail
    return total


def _check_streams(page: Any, limit: int) -> None:
    """Measure the page's Flate-compressed content and image streams before anything decodes them."""
    from pypdf.generic import ArrayObject, StreamObject

    candidates: list[Any] = []
    contents = page.get("/Contents")
    if contents is not None:
        contents = contents.get_object()
        candidates.extend(contents if isinstance(contents, ArrayObject) else [contents])
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is not None:
        candidates.extend(xobjects.get_object().values())
    for ref in candidates:
        stream = ref.get_object()
        if not isinstance(stream, StreamObject):
            continue
        filters = stream.get("/Filter")
        names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)]
        if names and names[0] in ("/FlateDecode", "/Fl"):
            try:
                _inflated_size(stream._data, limit)
            except zlib.error:
                continue  # a damaged stream: text extraction reports it for the page


_COMPONENTS = {"/DeviceRGB": 3, "/DeviceCMYK": 4, "/DeviceGray": 1, "/CalRGB": 3, "/CalGray": 1, "/Lab": 3}
_BILEVEL_FILTERS = {"/JBIG2Decode", "/CCITTFaxDecode", "/CCF"}
_MAX_WALK = 2000  # fields, annotations and chained actions looked at per document


def _filters(stream: Any) -> list[str]:
    from pypdf.generic import ArrayObject

    value = stream.get("/Filter")
    if value is None:
        return []
    value = value.get_object()
    return [str(f) for f in value] if isinstance(value, ArrayObject) else [str(value)]


def _components(space: Any, depth: int = 0) -> int:
    """Colour components of a colour space (3 for RGB, 1 for grey); unknown spaces count as colour."""
    from pypdf.generic import ArrayObject, NameObject

    if space is None or depth > 4:
        return 3
    space = space.get_object()
    if isinstance(space, NameObject):
        return _COMPONENTS.get(str(space), 3)
    if isinstance(space, ArrayObject) and space:
        kind = str(space[0])
        if kind == "/ICCBased" and len(space) > 1:
            return int(space[1].get_object().get("/N", 3))
        if kind == "/Indexed" and len(space) > 1:
            return _components(space[1], depth + 1)
        if kind in ("/Separation",):
            return 1
        if kind == "/DeviceN" and len(space) > 1:
            return len(space[1].get_object())
        return _COMPONENTS.get(kind, 3)
    return 3


def image_colour(image: Any) -> str:
    """``colour``, ``greyscale`` or ``bilevel`` for an image XObject, read from its dictionary alone."""
    if image.get("/ImageMask"):
        return "bilevel"
    if int(image.get("/BitsPerComponent", 8)) == 1 or _BILEVEL_FILTERS.intersection(_filters(image)):
        return "bilevel"
    if image.get("/ColorSpace") is None and "/JPXDecode" in _filters(image):
        return "colour"  # JPEG 2000 carries its colour space inside the stream
    return "colour" if _components(image.get("/ColorSpace")) >= 3 else "greyscale"


def _multiply(m: list[float], ctm: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = ctm
    return [a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F]


def _placements(page: Any, images: dict[str, Any]) -> list[tuple[Any, float, float]]:
    """Each image drawn on the page with the width and height (points) it is drawn at.

    Follows the content stream's transformation matrix through q/Q/cm, so rotated and scaled
    drawings give the size on paper; images drawn inside form XObjects are not followed.
    """
    contents = page.get_contents()
    if contents is None:
        return []
    found: list[tuple[Any, float, float]] = []
    ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    stack: list[list[float]] = []
    for operands, operator in contents.operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q":
            ctm = stack.pop() if stack else ctm
        elif operator == b"cm" and len(operands) == 6:
            ctm = _multiply([float(x) for x in operands], ctm)
        elif operator == b"Do" and operands and str(operands[0]) in images:
            found.append((images[str(operands[0])], math.hypot(ctm[0], ctm[1]), math.hypot(ctm[2], ctm[3])))
    return found


def _ink_ratio(image: Any) -> float | None:
    """Share of the image's pixels clearly darker or lighter than its paper (the median), on a small
    copy; None if not decodable."""
    from PIL import Image

    try:
        if _filters(image) == ["/DCTDecode"]:
            picture = Image.open(io.BytesIO(image._data))
            picture.draft("L", (max(1, picture.width // 8), max(1, picture.height // 8)))
        else:
            if int(image.get("/Width", 0)) * int(image.get("/Height", 0)) > 40_000_000:
                return None
            picture = image.decode_as_image()
        grey = picture.convert("L")
        grey.thumbnail((400, 400))
        histogram = grey.histogram()
    except Exception:  # a picture Pillow cannot decode says nothing about blankness
        return None
    total = sum(histogram)
    if not total:
        return None
    half, running, median = total / 2, 0, 255
    for level, count in enumerate(histogram):
        running += count
        if running >= half:
            median = level
            break
    # Marks are whatever differs clearly from the paper, darker or lighter: a dark background (a
    # photograph, a negative scan) has its marks above the median, not below.
    below, above = max(0, median - 64), min(256, median + 65)
    return round((sum(histogram[:below]) + sum(histogram[above:])) / total, 5)


def _page_size(page: Any) -> tuple[float, float, int]:
    """Width and height in points as the page is shown (rotation applied), and the rotation."""
    box = page.mediabox
    rotate = int(page.get("/Rotate", 0) or 0) % 360
    width_pt, height_pt = abs(float(box.width)), abs(float(box.height))
    if rotate in (90, 270):
        width_pt, height_pt = height_pt, width_pt
    return width_pt, height_pt, rotate


def _page_images(page: Any) -> dict[str, Any]:
    from pypdf.generic import StreamObject

    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    images: dict[str, Any] = {}
    if xobjects is not None:
        for name, ref in xobjects.get_object().items():
            obj = ref.get_object()
            if isinstance(obj, StreamObject) and obj.get("/Subtype") == "/Image":
                images[str(name)] = obj
    return images


def _scans(page: Any, images: dict[str, Any], page_area: float) -> list[tuple[Any, float, float]]:
    """The images that make up the scan: (image, drawn width, drawn height) of those covering a tenth of
    the page or more (logos and stamps do not set the scan's resolution)."""
    placements = _placements(page, images) if images else []
    if images and not placements:
        # drawn inside a form XObject: a full-page scan fills the media box
        box = page.mediabox
        largest = max(images.values(), key=lambda im: int(im.get("/Width", 0)) * int(im.get("/Height", 0)))
        pw, ph = float(box.width), float(box.height)
        iw, ih = int(largest.get("/Width", 0)), int(largest.get("/Height", 0))
        if (iw > ih) != (pw > ph):  # orientation follows the image
            pw, ph = ph, pw
        placements = [(largest, pw, ph)]
    return [(im, w, h) for im, w, h in placements if w > 0 and h > 0 and w * h >= page_area / 10]


def ink_ratios(path: str, pages: list[int]) -> dict[int, float | None]:
    """The ink ratio of the largest scan image on each of ``pages`` (None where there is none).

    Decoding pixels is the dearest part of reading a scan, so it is done where the pages are decoded
    anyway (the OCR child) unless the verdict needs it.
    """
    from pypdf import PdfReader

    reader = PdfReader(path, strict=False)
    ratios: dict[int, float | None] = {}
    for number in pages:
        if not 1 <= number <= len(reader.pages):
            continue
        page = reader.pages[number - 1]
        width_pt, height_pt, _ = _page_size(page)
        scans = _scans(page, _page_images(page), width_pt * height_pt or 1.0)
        largest = max(scans, key=lambda s: s[1] * s[2], default=None)
        ratios[number] = _ink_ratio(largest[0]) if largest is not None else None
    return ratios


def page_facts(page: Any, number: int, text_chars: int, *, measure_ink: bool = True) -> dict[str, Any]:
    """Size on paper, the scan images' resolution and colour, and (``measure_ink``) whether the page
    looks blank."""
    width_pt, height_pt, rotate = _page_size(page)
    facts: dict[str, Any] = {
        "page": number,
        "width_mm": round(width_pt * PT_TO_MM, 1),
        "height_mm": round(height_pt * PT_TO_MM, 1),
        "rotate": rotate,
        "images": 0,
        "dpi": None,
        "colour": None,
        "text_chars": text_chars,
        "ink_ratio": None,
        "blank": False,
    }
    images = _page_images(page)
    resolutions: list[float] = []
    colours: set[str] = set()
    scan: Any = None
    for image, drawn_w, drawn_h in _scans(page, images, width_pt * height_pt or 1.0):
        pixels_w, pixels_h = int(image.get("/Width", 0)), int(image.get("/Height", 0))
        resolutions.append(min(pixels_w / (drawn_w / 72), pixels_h / (drawn_h / 72)))
        colours.add(image_colour(image))
        if scan is None or drawn_w * drawn_h > scan[1]:
            scan = (image, drawn_w * drawn_h)
    facts["images"] = len(images)
    if resolutions:
        facts["dpi"] = round(min(resolutions))
        facts["colour"] = next(c for c in ("colour", "greyscale", "bilevel") if c in colours)
    if text_chars == 0:
        if scan is not None:
            if measure_ink:
                facts["ink_ratio"] = _ink_ratio(scan[0])
        elif not images:
            contents = page.get_contents()
            facts["blank"] = contents is None or len(contents.get_data().strip()) < 32
    return facts


def _pdf_date(value: Any) -> str | None:
    """A PDF date (D:YYYYMMDDHHmmSS+07'00') as ISO 8601, or None."""
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+-])?(\d{2})?'?(\d{2})?", str(value or ""))
    if not match:
        return None
    y, mo, d, h, mi, sec, sign, tzh, tzm = match.groups()
    text = f"{y}-{mo or '01'}-{d or '01'}T{h or '00'}:{mi or '00'}:{sec or '00'}"
    if sign in ("+", "-"):
        text += f"{sign}{tzh or '00'}:{tzm or '00'}"
    elif sign:
        text += "+00:00"
    return text


def signature_fields(root: Any) -> list[dict[str, Any]]:
    """Signature fields of the form: signed or not, and the signer and time the signature states."""
    acroform = root.get("/AcroForm")
    if acroform is None:
        return []
    found: list[dict[str, Any]] = []
    pending = list(acroform.get_object().get("/Fields", []) or [])
    seen = 0
    while pending and seen < _MAX_WALK:
        seen += 1
        field_ = pending.pop().get_object()
        kids = field_.get("/Kids")
        if kids:
            pending.extend(kids)
        if field_.get("/FT") != "/Sig":
            continue
        value = field_.get("/V")
        entry: dict[str, Any] = {"field": str(field_.get("/T", "")), "signed": value is not None}
        if value is not None:
            value = value.get_object()
            entry["signer"] = str(value["/Name"]) if value.get("/Name") else None
            entry["time"] = _pdf_date(value.get("/M"))
            entry["kind"] = str(value.get("/SubFilter", "")).lstrip("/") or None
        found.append(entry)
    return found


def pdfa_claim(root: Any) -> dict[str, str] | None:
    """The PDF/A part and conformance the XMP metadata claims (a claim, not a validation)."""
    meta = root.get("/Metadata")
    if meta is None:
        return None
    xmp = meta.get_object().get_data()[: 1024 * 1024].decode("utf-8", "replace")
    part = re.search(r"pdfaid:part\s*(?:=\s*[\"']|>)\s*(\d)", xmp)
    if not part:
        return None
    conformance = re.search(r"pdfaid:conformance\s*(?:=\s*[\"']|>)\s*([A-Za-z])", xmp)
    return {"part": part.group(1), "conformance": conformance.group(1).upper() if conformance else ""}


def active_content(reader: Any) -> tuple[bool, bool, list[str]]:
    """JavaScript, launch actions and embedded files, where a reader would find and run or open them.

    Looks at the document's name tree, open action and additional actions, every page's actions and
    every annotation's actions and attachments.
    """
    from pypdf.generic import ArrayObject, DictionaryObject

    root = reader.root_object
    javascript = launch = False
    embedded: list[str] = []
    budget = [_MAX_WALK]

    def action(value: Any) -> None:
        nonlocal javascript, launch
        while value is not None and budget[0] > 0:
            budget[0] -= 1
            value = value.get_object()
            if isinstance(value, ArrayObject):
                for item in value[:50]:
                    action(item)
                return
            if not isinstance(value, DictionaryObject):
                return
            kind = value.get("/S")
            javascript |= kind == "/JavaScript" or "/JS" in value
            launch |= kind == "/Launch"
            value = value.get("/Next")

    def additional(holder: Any) -> None:
        triggers = holder.get("/AA")
        if triggers is not None:
            for trigger in triggers.get_object().values():
                action(trigger)

    names = root.get("/Names")
    if names is not None:
        names = names.get_object()
        javascript |= "/JavaScript" in names
        tree = names.get("/EmbeddedFiles")
        if tree is not None:
            pending = [tree.get_object()]
            while pending and budget[0] > 0:
                budget[0] -= 1
                node = pending.pop()
                leaf = node.get("/Names") or []
                embedded.extend(str(leaf[i]) for i in range(0, len(leaf), 2))
                pending.extend(kid.get_object() for kid in node.get("/Kids") or [])
            embedded = embedded or ["(unnamed)"]
    action(root.get("/OpenAction"))
    additional(root)
    for page in reader.pages:
        additional(page)
        for ref in page.get("/Annots") or []:
            if budget[0] <= 0:
                break
            budget[0] -= 1
            annot = ref.get_object()
            if not isinstance(annot, DictionaryObject):
                continue
            action(annot.get("/A"))
            additional(annot)
            if annot.get("/Subtype") == "/FileAttachment":
                spec = annot.get("/FS")
                spec = spec.get_object() if spec is not None else {}
                embedded.append(str(spec.get("/UF") or spec.get("/F") or "(unnamed)"))
    return javascript, launch, embedded


def _load_pem_or_der(path: str | None, kind: Any) -> list[Any]:
    """The objects of ``kind`` (asn1crypto) in a PEM file (one or more) or a DER file; none without a path."""
    if not path:
        return []
    from asn1crypto import pem  # type: ignore[import-untyped]

    with open(path, "rb") as fh:
        data = fh.read()
    if pem.detect(data):
        return [kind.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [kind.load(data)]


def _name(name: Any) -> str:
    """A certificate name as people read it: its common name, else the whole name."""
    try:
        native = name.native
        return str(native.get("common_name") or name.human_friendly)
    except Exception:
        return str(getattr(name, "human_friendly", ""))


def signature_status(status: Any, now: Any) -> str:
    """``valid``, ``invalid`` (the bytes or the signature value do not match), ``revoked``, ``expired``
    or ``untrusted`` (no chain to a configured root, or a certificate not fit for signing)."""
    if not status.intact or not status.valid:
        return "invalid"
    if status.revoked:
        return "revoked"
    cert = status.signing_cert
    if cert is not None and (cert.not_valid_after < now or cert.not_valid_before > now):
        return "expired"
    return "valid" if status.trusted else "untrusted"


def validate_signatures(
    source: str | bytes, signatures: list[dict[str, Any]], trust_roots: str | None, crl_file: str | None = None
) -> None:
    """Check each signature with pyHanko and say exactly what was checked, beside its field.

    ``intact``: the signed bytes are unchanged since signing. ``valid``: the signature value matches
    the signer's certificate inside the file. ``trusted``: that certificate chains to a root in
    ``trust_roots`` (no roots configured means no chain is trusted) and is fit for signing; it is
    checked against the revocation lists in ``crl_file`` when one is configured (no network).
    ``coverage`` says whether the signature covers the whole file (``entire_file``), the revision it
    was made in with changes after it (``entire_revision``), or only part of it. ``status`` sums it up.
    """
    import datetime

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    try:
        from asn1crypto import crl, x509

        roots = _load_pem_or_der(trust_roots, x509.Certificate)
        crls = _load_pem_or_der(crl_file, crl.CertificateList)
    except Exception as exc:  # the warehouse's own settings: said beside each signature, never a crash
        for sig in signatures:
            sig["validation"] = {"checked": False, "detail": f"trust settings unreadable: {exc}"[:200]}
        return
    by_field = {sig["field"]: sig for sig in signatures}
    now = datetime.datetime.now(datetime.UTC)
    for name in ("pyhanko", "pyhanko_certvalidator"):  # what they log of a bad chain is said in the answer
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # With revocation lists configured, a signer's certificate must be covered by one of them (a
    # certificate no list speaks for is not trusted); intermediates are checked where they say where
    # their list is. Without lists, revocation is not checked (and the answer says so).
    rule = RevocationCheckingRule.CRL_REQUIRED if crls else RevocationCheckingRule.CHECK_IF_DECLARED_SOFT
    revinfo = CertRevTrustPolicy(RevocationCheckingPolicy(rule, RevocationCheckingRule.CHECK_IF_DECLARED_SOFT))
    context = ValidationContext(trust_roots=roots, crls=crls, allow_fetching=False, revinfo_policy=revinfo)
    with _open(source) as fh:
        try:
            embedded = PdfFileReader(fh, strict=False).embedded_signatures
        except Exception as exc:  # pyHanko could not read the signature structure at all
            for sig in signatures:
                sig["validation"] = {"checked": False, "detail": f"{type(exc).__name__}: {exc}"[:200]}
            return
        for n, found in enumerate(embedded):
            entry = by_field.get(found.field_name)
            if entry is None:
                continue
            if n >= MAX_SIGNATURES_CHECKED:  # a file made of signatures must not spend the reading time
                entry["validation"] = {"checked": False, "detail": f"not checked: more than {n} signatures"}
                continue
            try:
                status = validate_pdf_signature(found, context)
            except Exception as exc:  # a malformed signature is a finding, not a crash
                entry["validation"] = {
                    "checked": True,
                    "intact": False,
                    "status": "invalid",
                    "detail": f"{type(exc).__name__}: {exc}"[:200],
                }
                continue
            cert = status.signing_cert
            coverage = status.coverage.name.lower() if status.coverage else None
            level = status.modification_level
            signed_at = getattr(status, "signer_reported_dt", None)
            entry["validation"] = {
                "checked": True,
                "status": signature_status(status, now),
                "intact": bool(status.intact),
                "valid": bool(status.valid),
                "trusted": bool(status.trusted),
                "revoked": bool(status.revoked),
                "coverage": coverage,
                "whole_file": coverage == "entire_file",
                "modified_after": coverage != "entire_file",
                "modifications": level.name.lower() if level is not None else None,
                "certificate": _name(cert.subject) if cert is not None else None,
                "serial": format(cert.serial_number, "X") if cert is not None else None,
                "issuer": _name(cert.issuer) if cert is not None else None,
                "not_after": cert.not_valid_after.isoformat() if cert is not None else None,
                "signed_at": signed_at.isoformat() if signed_at else None,
                "revocation_checked": bool(crls),
            }


# What pypdf says when it skipped an object it could not parse (nesting, memory), rather than repaired it.
_DAMAGE_MARKERS = ("Error reading PDF file", "RecursionError", "MemoryError", "LimitReached")


class _Repairs(logging.Handler):
    """Collects what pypdf logs while it reads: the repairs it made and the objects it skipped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 20:
            self.messages.append(record.getMessage()[:200])


def _quietly(fn: Any, arg: Any, default: Any) -> Any:
    """Facts about optional parts (forms, metadata) that cannot be read are left out."""
    try:
        return fn(arg)
    except Exception:
        return default


def _unreadable_page(page: Any, number: int, exc: BaseException) -> dict[str, Any]:
    """The facts of a page that could not be read: why, and its size when even that can be read."""
    facts: dict[str, Any] = {"page": number, "unreadable": True, "error": f"{type(exc).__name__}: {exc}"[:200]}
    if page is not None:
        try:
            width_pt, height_pt, _ = _page_size(page)
            facts.update(width_mm=round(width_pt * PT_TO_MM, 1), height_mm=round(height_pt * PT_TO_MM, 1))
        except Exception:
            pass
    return facts


def inspect_pdf(
    source: str | bytes,
    max_pages: int,
    max_text_chars: int,
    max_stream_bytes: int = 512 * MIB,
    trust_roots: str | None = None,
    measure_ink: bool = True,
    crl_file: str | None = None,
) -> dict[str, Any]:
    """Open the PDF and report its pages, version, encryption, text, signatures and active content.

    ``measure_ink`` decodes image-only pages to find blank ones (see ``ink_ratios``). Every failure is
    turned into a ``problem`` code; nothing here raises for a bad file.
    """
    report = Report()
    repairs = _Repairs()
    pypdf_log = logging.getLogger("pypdf")
    pypdf_log.addHandler(repairs)
    pypdf_log.propagate = False  # a child's log is its report, not the worker's
    try:
        _read(source, report, max_pages, max_text_chars, max_stream_bytes, trust_roots, measure_ink, crl_file)
    finally:
        pypdf_log.removeHandler(repairs)
    report.repairs = repairs.messages
    report.damaged = any(marker in m for m in repairs.messages for marker in _DAMAGE_MARKERS)
    return report.to_dict()


def _read(
    source: str | bytes,
    report: Report,
    max_pages: int,
    max_text_chars: int,
    max_stream_bytes: int,
    trust_roots: str | None,
    measure_ink: bool,
    crl_file: str | None,
) -> None:
    from pypdf import PdfReader

    if not _has_eof_marker(source):
        report.problem = "pdf_truncated"
        report.problem_detail = "no %%EOF marker at the end of the file"
        return
    try:
        reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source, strict=False)
        header = reader.pdf_header  # e.g. "%PDF-1.4"
        match = re.match(r"%PDF-(\d\.\d)", header)
        report.pdf_version = match.group(1) if match else None
        if reader.is_encrypted:
            report.encrypted = True
            report.problem = "pdf_encrypted"
            return
        pages = len(reader.pages)
        report.pages = pages
        if pages == 0:
            report.problem = "pdf_no_pages"
            return
        if pages > max_pages:
            report.problem = "pdf_too_many_pages"
            report.problem_detail = f"{pages} pages, the limit is {max_pages}"
            return
        root = reader.root_object  # pypdf finds the catalogue when the trailer lost it
        report.signatures = _quietly(signature_fields, root, [])
        report.pdfa = _quietly(pdfa_claim, root, None)
        try:
            report.javascript, report.launch_actions, report.embedded_files = active_content(reader)
        except Exception as exc:
            # Where active content might hide cannot be read: the file is damaged there (rejected by
            # default), never taken as free of it.
            logging.getLogger("pypdf").warning("Error reading PDF file: actions or attachments: %s", exc)
        budget = max_text_chars
        complex_pages = 0
        # Page by page: a page that cannot be read (damaged, a stream bomb, past a parser limit) is a
        # finding about that page, and the others are still read and judged.
        for number in range(1, pages + 1):
            page: Any = None
            try:
                page = reader.pages[number - 1]
                _check_streams(page, max_stream_bytes)
                text = page.extract_text() or ""
            except Exception as exc:
                complex_pages += isinstance(exc, StreamBomb | LimitReachedError | RecursionError | MemoryError)
                report.page_errors.append(number)
                report.page_texts.append("")
                report.page_facts.append(_unreadable_page(page, number, exc))
                continue
            visible = len("".join(text.split()))
            if visible >= MIN_TEXT_CHARS_PER_PAGE:
                report.text_pages += 1
            report.text_chars += visible
            kept = text[:budget] if budget > 0 else ""
            budget -= len(kept)
            report.page_texts.append(kept)
            try:
                report.page_facts.append(page_facts(page, number, visible, measure_ink=measure_ink))
            except Exception as exc:
                facts = _unreadable_page(page, number, exc)
                del facts["unreadable"]
                report.page_facts.append({**facts, "text_chars": visible, "unreadable_images": True})
        if len(report.page_errors) == pages:
            report.problem = "pdf_too_complex" if complex_pages == pages else "pdf_unreadable"
            first = next(f.get("error") for f in report.page_facts if f.get("unreadable"))
            report.problem_detail = f"no page could be read (page 1: {first})"
        elif any(sig["signed"] for sig in report.signatures):
            validate_signatures(source, report.signatures, trust_roots, crl_file)
    except StreamBomb as exc:
        report.problem = "pdf_too_complex"
        report.problem_detail = str(exc)
    except FileNotDecryptedError:
        report.encrypted = True
        report.problem = "pdf_encrypted"
    except LimitReachedError as exc:
        report.problem = "pdf_too_complex"
        report.problem_detail = str(exc)[:300]
    except RecursionError:
        report.problem = "pdf_too_complex"
        report.problem_detail = "structure nested too deeply or cyclic"
    except MemoryError:
        report.problem = "pdf_too_complex"
        report.problem_detail = "needs more memory than allowed"
    except Exception as exc:  # whatever else the parser raises: the file cannot be read
        report.problem = "pdf_unreadable"
        report.problem_detail = f"{type(exc).__name__}: {exc}"[:300]
