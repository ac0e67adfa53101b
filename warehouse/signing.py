"""The organisation's signed copy of a file: the QR at the top left of the first page and a PAdES
signature with the unit's certificate, added to the original's bytes as one incremental update (the
original is the first bytes of the copy, unchanged).

Certificates live behind one interface, ``Signers``: a PKCS#12 file per unit today
(``Pkcs12Signers``), a hardware token or a remote signing service later. What a signer is, is told to
the signing child as a small picklable ``SignerSpec``; the child turns it into a pyHanko signer.
Signing runs in child processes (``SigningPool``): it is CPU work that must not stall the API.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from pebble import ProcessExpired, ProcessPool

from storage import Settings
from warehouse.refusals import Busy

QR_XOBJECT = "/KhoSoHoaQR"
MM = 72 / 25.4
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")  # as the page is shown, clockwise
CORNER_VI = {"top_left": "góc trên bên trái", "top_right": "góc trên bên phải"}
CORNER_VI |= {"bottom_right": "góc dưới bên phải", "bottom_left": "góc dưới bên trái"}
# A corner counts as blank when at most this share of its scan's pixels differ clearly from the paper
# (scanner grain and specks stay below it; a line of text or a stamp does not).
BLANK_INK = 0.04


@dataclass(frozen=True, slots=True)
class SignerSpec:
    """How the signing child reaches a unit's key: ``kind`` pkcs12 (``path``, ``passphrase``)."""

    kind: str
    path: str
    passphrase: bytes | None = field(default=None, repr=False)
    unit_code: str = ""


class Signers(Protocol):
    """Where each unit's signing key is: the one interface the warehouse signs through."""

    def for_unit(self, unit_code: str) -> SignerSpec | None: ...


class Pkcs12Signers:
    """Each unit's PKCS#12 file in one folder: ``<UNIT CODE>.p12``, its passphrase in
    ``<UNIT CODE>.pass`` (no file: no passphrase). A unit without a file cannot sign."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def for_unit(self, unit_code: str) -> SignerSpec | None:
        path = self.folder / f"{unit_code}.p12"
        if not path.is_file():
            return None
        secret = self.folder / f"{unit_code}.pass"
        passphrase = secret.read_bytes().strip() if secret.is_file() else None
        return SignerSpec(kind="pkcs12", path=str(path), passphrase=passphrase, unit_code=unit_code)


@lru_cache(maxsize=64)
def _pkcs12_signer(path: str, mtime: float, passphrase: bytes | None) -> Any:
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12(path, passphrase=passphrase)  # type: ignore[no-untyped-call]
    if signer is None:
        raise SignerUnavailable(f"the PKCS#12 file {Path(path).name} cannot be opened with its passphrase")
    return signer


def load_signer(spec: SignerSpec) -> Any:
    """The pyHanko signer a spec names (kept per child while its file is unchanged)."""
    if spec.kind == "pkcs12":
        try:
            mtime = os.stat(spec.path).st_mtime
        except OSError as exc:
            raise SignerUnavailable(f"the PKCS#12 file {Path(spec.path).name} cannot be read") from exc
        return _pkcs12_signer(spec.path, mtime, spec.passphrase)
    raise SignerUnavailable(f"no signer of kind {spec.kind!r}")


class SignerUnavailable(Exception):
    """The unit's key cannot be used (missing, unreadable, wrong passphrase)."""


class NotSignable(Exception):
    """The file's structure cannot take an incremental update."""


# -- where the QR goes ---------------------------------------------------------------------------------


def _corner_rect(
    box: tuple[float, float, float, float], rotate: int, corner: str, size: float, margin: float
) -> tuple[float, float, float, float]:
    """The square, in the page's own coordinates, at ``corner`` as the page is shown (after /Rotate)."""
    x0, y0, x1, y1 = box
    points = [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]  # top-left, clockwise, unrotated
    x, y = points[(CORNERS.index(corner) - rotate // 90) % 4]
    left = x0 + margin if x == x0 else x1 - margin - size
    bottom = y0 + margin if y == y0 else y1 - margin - size
    return left, bottom, left + size, bottom + size


def _multiply(m: list[float], n: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return [a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F]


def _text_origins(page: Any) -> list[tuple[float, float]]:
    """Where each run of visible text on the page starts (none when the text cannot be read)."""
    origins: list[tuple[float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        if text.strip():
            x, y = _multiply(list(tm), list(cm))[4:6]
            origins.append((x, y))

    try:
        page.extract_text(visitor_text=visit)
    except Exception:
        return []  # text that cannot be read is not counted either way
    return origins


def _images_drawn(page: Any) -> list[tuple[Any, list[float]]]:
    """The image XObjects drawn straight on the page, each with the matrix it is drawn with."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return []
    xobjects = xobjects.get_object()
    contents = page.get_contents()
    if contents is None:
        return []
    drawn: list[tuple[Any, list[float]]] = []
    ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    stack: list[list[float]] = []
    for operands, operator in contents.operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q":
            ctm = stack.pop() if stack else ctm
        elif operator == b"cm" and len(operands) == 6:
            ctm = _multiply([float(v) for v in operands], ctm)
        elif operator == b"Do" and operands and str(operands[0]) in xobjects:
            image = xobjects[str(operands[0])].get_object()
            if image.get("/Subtype") == "/Image":
                drawn.append((image, ctm))
    return drawn


def _picture(image: Any) -> Any:
    """The image as a small greyscale picture (JPEG decoded at an eighth of its size)."""
    from PIL import Image

    filters = image.get("/Filter")
    if str(filters) == "/DCTDecode" or (isinstance(filters, list) and [str(f) for f in filters] == ["/DCTDecode"]):
        picture = Image.open(io.BytesIO(image._data))
        picture.draft("L", (max(1, picture.width // 8), max(1, picture.height // 8)))
    else:
        picture = image.decode_as_image()
    return picture.convert("L")


class _Scans:
    """The page's images as drawn, each decoded at most once however many corners are looked at."""

    def __init__(self, page: Any) -> None:
        self.drawn = _images_drawn(page)
        self._pictures: dict[int, Any] = {}

    def picture(self, image: Any) -> Any:
        key = id(image)
        if key not in self._pictures:
            try:
                self._pictures[key] = _picture(image)
            except Exception:
                self._pictures[key] = None
        return self._pictures[key]


def _ink_in(scans: _Scans, rect: tuple[float, float, float, float]) -> float | None:
    """The share of scan pixels inside ``rect`` that differ clearly from the paper; None without a scan
    there (or one drawn rotated, or one that cannot be decoded)."""
    worst: float | None = None
    for image, (a, b, c, d, e, f) in scans.drawn:
        if abs(b) > 1e-6 or abs(c) > 1e-6 or a == 0 or d == 0:
            continue
        left, right = sorted((e, e + a))
        low, high = sorted((f, f + d))
        x0, x1 = max(rect[0], left), min(rect[2], right)
        y0, y1 = max(rect[1], low), min(rect[3], high)
        if x0 >= x1 or y0 >= y1:
            continue
        picture = scans.picture(image)
        if picture is None:
            continue
        w, h = picture.size
        cols = sorted(min(w, max(0, round((x - e) / a * w))) for x in (x0, x1))
        rows = sorted(min(h, max(0, round((1 - (y - f) / d) * h))) for y in (y0, y1))
        corner = picture.crop((cols[0], rows[0], max(cols[1], cols[0] + 1), max(rows[1], rows[0] + 1)))
        paper = _median(picture.histogram())
        histogram = corner.histogram()
        total = sum(histogram) or 1
        ink = (sum(histogram[: max(0, paper - 64)]) + sum(histogram[min(256, paper + 65) :])) / total
        worst = ink if worst is None else max(worst, ink)
    return worst


def _median(histogram: list[int]) -> int:
    half, running = sum(histogram) / 2, 0
    for level, count in enumerate(histogram):
        running += count
        if running >= half:
            return level
    return 255


@dataclass(frozen=True, slots=True)
class Placement:
    corner: str
    rect: tuple[float, float, float, float]
    rotate: int
    findings: list[dict[str, Any]]


def _finding(code: str, vi: str, en: str) -> dict[str, Any]:
    return {"code": code, "severity": "warning", "vi": vi, "en": en}


def place_qr(page: Any, size: float, margin: float) -> Placement:
    """Where the QR goes on the first page: its top left as the page is shown, or, when that corner is
    not blank, the first blank corner (a finding says so); with no blank corner, the top left anyway,
    on a white square (a finding says that too)."""
    box = page.cropbox
    x0, y0, x1, y1 = (float(v) for v in (box.left, box.bottom, box.right, box.top))
    rotate = int(page.get("/Rotate", 0) or 0) % 360
    rotate -= rotate % 90
    findings: list[dict[str, Any]] = []
    if rotate:
        findings.append(
            _finding(
                "qr_page_rotated",
                f"Trang đầu được hiển thị xoay {rotate}°; mã QR được đặt theo trang như khi hiển thị.",
                f"The first page is shown rotated by {rotate}°; the QR is placed as the page is shown.",
            )
        )
    if min(x1 - x0, y1 - y0) < size + 2 * margin:
        findings.append(
            _finding(
                "qr_no_room",
                "Trang đầu quá nhỏ để đặt mã QR: mã QR được thu nhỏ, đặt ở góc trên bên trái, che một phần trang "
                "và có thể không quét được.",
                "The first page is too small for the QR: it is drawn smaller, at the top left over part of the "
                "page, and may not be readable.",
            )
        )
        margin = 0.0
        size = min(size, x1 - x0, y1 - y0)
        return Placement("top_left", _corner_rect((x0, y0, x1, y1), rotate, "top_left", size, margin), rotate, findings)
    scans, origins = _Scans(page), _text_origins(page)
    for corner in CORNERS:
        rect = _corner_rect((x0, y0, x1, y1), rotate, corner, size, margin)
        ink = _ink_in(scans, rect)
        text = any(rect[0] <= x <= rect[2] and rect[1] <= y <= rect[3] for x, y in origins)
        if (ink is None or ink <= BLANK_INK) and not text:
            if corner != "top_left":
                findings.append(
                    _finding(
                        "qr_corner_not_blank",
                        f"Góc trên bên trái của trang đầu có nội dung; mã QR được đặt ở {CORNER_VI[corner]}.",
                        f"The top left corner of the first page is not blank; the QR is placed at the "
                        f"{corner.replace('_', ' ')}.",
                    )
                )
            return Placement(corner, rect, rotate, findings)
    findings.append(
        _finding(
            "qr_no_room",
            "Không góc nào của trang đầu còn trống; mã QR được đặt ở góc trên bên trái trên nền trắng, che một "
            "phần nội dung.",
            "No corner of the first page is blank; the QR is placed at the top left on a white square, over "
            "part of the page.",
        )
    )
    return Placement("top_left", _corner_rect((x0, y0, x1, y1), rotate, "top_left", size, margin), rotate, findings)


# -- the signing child ---------------------------------------------------------------------------------


QUIET_ZONE = 4  # modules of light margin around the symbol, as ISO/IEC 18004 asks


def qr_modules(text: str) -> list[bytearray]:
    """The QR symbol of ``text`` (ISO/IEC 18004, UTF-8, error correction M, the best mask), row by row,
    1 for a dark module, quiet zone included."""
    import segno

    symbol = segno.make_qr(text, error="m", encoding="utf-8", boost_error=False)
    rows: list[bytearray] = [bytearray(row) for row in symbol.matrix_iter(border=QUIET_ZONE)]
    return rows


def qr_xobject(text: str) -> tuple[Any, float]:
    """The QR of ``text`` as a vector form XObject, and its side in its own units (modules): one filled
    rectangle per run of dark modules, never a picture."""
    from pyhanko.pdf_utils.writer import init_xobject_dictionary

    rows = qr_modules(text)
    side = len(rows)
    drawing = [b"0 g"]
    for y, row in enumerate(rows):
        x = 0
        while x < side:
            if row[x]:
                start = x
                while x < side and row[x]:
                    x += 1
                drawing.append(b"%d %d %d 1 re" % (start, side - 1 - y, x - start))
            else:
                x += 1
    drawing.append(b"f")
    xobject = init_xobject_dictionary(b"\n".join(drawing), side, side)
    xobject.compress()  # type: ignore[no-untyped-call]
    return xobject, float(side)


def _without_padding(source: str, spare: str) -> str:
    """The file to sign: ``source``, or, when a scanner padded it after its end-of-file marker (blocks
    of NULs, which readers ignore and an incremental update cannot follow), its bytes up to that
    marker written to ``spare``."""
    size = os.path.getsize(source)
    with open(source, "rb") as fh:
        fh.seek(max(0, size - _TAIL))
        tail = fh.read()
    end = tail.rfind(b"%%EOF")
    after = tail[end + 5 :] if end >= 0 else b""
    if not after.strip(b"\r\n") or after.strip(b"\r\n \t\x00\x0c"):
        return source  # ends at its marker (or is not padding: pyHanko decides)
    keep = size - len(tail) + end + 5
    with open(source, "rb") as fh, open(spare, "wb") as out:
        while keep > 0:
            block = fh.read(min(keep, 1024 * 1024))
            if not block:
                break
            out.write(block)
            keep -= len(block)
        out.write(b"\n")
    return spare


_TAIL = 1024 * 1024  # where a padded file's end-of-file marker is looked for


def sign_copy(
    spec: SignerSpec,
    source: str,
    target: str,
    *,
    qr_text: str | None,
    qr_size_mm: float,
    field_name: str,
    reason: str,
    location: str,
) -> dict[str, Any]:
    """In a signing child: write to ``target`` the original at ``source`` with the QR on its first page
    (when ``qr_text``) and the unit's signature over the whole, as one incremental update.

    Returns where the QR went, the findings of placing it, and the certificate that signed.
    """
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pypdf import PdfReader

    signer = load_signer(spec)
    placement: Placement | None = None
    source = _without_padding(source, target + ".trimmed")
    with open(source, "rb") as original, open(target, "w+b") as out:
        try:
            writer = IncrementalPdfFileWriter(original, strict=False)
        except Exception as exc:
            raise NotSignable(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if qr_text is not None:
            try:
                first = PdfReader(source, strict=False).pages[0]
                placement = place_qr(first, qr_size_mm * MM, 6 * MM)
            except NotSignable:
                raise
            except Exception as exc:
                raise NotSignable(f"the first page cannot be read: {type(exc).__name__}: {exc}"[:300]) from exc
            xobject, side = qr_xobject(qr_text)
            ref = writer.add_object(xobject)
            left, bottom, right, _ = placement.rect
            size = right - left
            scale = size / side
            drawing = b"Q q 1 g %.3f %.3f %.3f %.3f re f %.5f 0 0 %.5f %.3f %.3f cm %s Do Q" % (
                left,
                bottom,
                size,
                size,
                scale,
                scale,
                left,
                bottom,
                QR_XOBJECT.encode(),
            )
            images = generic.DictionaryObject({generic.pdf_name(QR_XOBJECT): ref})  # type: ignore[no-untyped-call]
            resources = generic.DictionaryObject({generic.pdf_name("/XObject"): images})  # type: ignore[no-untyped-call]
            # Whatever state the page's own content leaves (a matrix, a clip), the QR is drawn in the
            # page's plain coordinates: the page's content goes between q and Q.
            opening = writer.add_object(generic.StreamObject(stream_data=b"q"))
            closing = writer.add_object(generic.StreamObject(stream_data=drawing))
            try:
                writer.add_stream_to_page(0, opening, prepend=True)  # type: ignore[no-untyped-call]
                writer.add_stream_to_page(0, closing, resources=resources)  # type: ignore[no-untyped-call]
            except Exception as exc:
                raise NotSignable(f"the first page cannot be updated: {type(exc).__name__}: {exc}"[:300]) from exc
        meta = signers.PdfSignatureMetadata(
            field_name=field_name,
            reason=reason,
            location=location,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        try:
            signers.PdfSigner(meta, signer=signer).sign_pdf(writer, output=out)
        except SignerUnavailable:
            raise
        except Exception as exc:
            raise NotSignable(f"{type(exc).__name__}: {exc}"[:300]) from exc
    cert = signer.signing_cert
    return {
        "corner": placement.corner if placement else None,
        "rect": [round(v, 2) for v in placement.rect] if placement else None,
        "rotate": placement.rotate if placement else 0,
        "findings": placement.findings if placement else [],
        "certificate_subject": str(cert.subject.native.get("common_name") or cert.subject.human_friendly),
        "certificate_serial": format(cert.serial_number, "X"),
    }


def _limit_child(memory_bytes: int) -> None:
    """In each signing child as it starts: the memory it may take, and no part in the terminal's
    signals (Ctrl-C reaches the whole process group: the API stops its children itself, and a child
    killed under it would be replaced while the API shuts down)."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class SigningPool:
    """Child processes that sign, ``sign_concurrency`` at once per API process. A request holds one of
    as many slots from fetching the original to storing the copy; at most ``sign_queue`` requests wait
    for one and the rest are told to come back, so the API's memory, disk and time stay bounded. A
    child lives within ``sign_memory_mb`` and ``sign_timeout_seconds``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPool | None = None
        self._slots = asyncio.Semaphore(settings.sign_concurrency)
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self.settings.sign_queue:
            raise Busy(
                "signing_busy",
                "Every signer is busy with other files. Try again in a few seconds.",
                retry_after=5,
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``sign_copy(*args, **kwargs)`` in a child (call it holding a slot)."""
        if self._pool is None:
            # Started from a fork server, not forked from the API process: a child gets none of the
            # server's sockets and threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["warehouse.signing", "pyhanko.sign", "pypdf", "segno"])
            self._pool = ProcessPool(
                max_workers=self.settings.sign_concurrency,
                max_tasks=500,
                initializer=_limit_child,
                initargs=(self.settings.sign_memory_mb * 1024 * 1024,),
                context=context,
            )
        future = self._pool.schedule(sign_copy, args=args, kwargs=kwargs, timeout=self.settings.sign_timeout_seconds)
        try:
            result: dict[str, Any] = await asyncio.wrap_future(future)
        except ProcessExpired as exc:  # out of memory, or the child died reading the file
            raise NotSignable(f"the signing child ended ({exc}); the file needs more than allowed") from None
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=5)
            self._pool = None
