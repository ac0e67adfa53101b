"""Reading one PDF with pypdf and saying what it is. Runs inside a limited child process."""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

# A page whose extracted text has this many visible characters counts as having a text layer.
MIN_TEXT_CHARS_PER_PAGE = 20
_TAIL_WINDOW = 2048
MIB = 1024 * 1024


@dataclass
class Report:
    """What one inspection found. ``problem`` is set when the file must be rejected."""

    pages: int | None = None
    pdf_version: str | None = None
    encrypted: bool = False
    text_pages: int = 0
    text_chars: int = 0
    text: str = ""
    page_errors: list[int] = field(default_factory=list)
    problem: str | None = None
    problem_detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _has_eof_marker(path: str) -> bool:
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - _TAIL_WINDOW))
        return b"%%EOF" in fh.read()


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
        data = inflater.unconsumed_tail
        if not out and not data:
            break
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


def inspect_pdf(path: str, max_pages: int, max_text_chars: int, max_stream_bytes: int = 512 * MIB) -> dict[str, Any]:
    """Open the PDF and report pages, version, encryption and its text layer.

    Every failure is turned into a ``problem`` code; nothing here raises for a bad file.
    """
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    report = Report()
    if not _has_eof_marker(path):
        report.problem = "pdf_truncated"
        report.problem_detail = "no %%EOF marker at the end of the file"
        return report.to_dict()
    try:
        reader = PdfReader(path, strict=False)
        header = reader.pdf_header  # e.g. "%PDF-1.4"
        match = re.match(r"%PDF-(\d\.\d)", header)
        report.pdf_version = match.group(1) if match else None
        if reader.is_encrypted:
            report.encrypted = True
            report.problem = "pdf_encrypted"
            return report.to_dict()
        pages = len(reader.pages)
        report.pages = pages
        if pages == 0:
            report.problem = "pdf_no_pages"
            return report.to_dict()
        if pages > max_pages:
            report.problem = "pdf_too_many_pages"
            report.problem_detail = f"{pages} pages, the limit is {max_pages}"
            return report.to_dict()
        texts: list[str] = []
        budget = max_text_chars
        for number, page in enumerate(reader.pages, start=1):
            _check_streams(page, max_stream_bytes)
            try:
                text = page.extract_text() or ""
            except LimitReachedError:
                raise
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
                report.page_errors.append(number)
                continue
            visible = len("".join(text.split()))
            if visible >= MIN_TEXT_CHARS_PER_PAGE:
                report.text_pages += 1
            report.text_chars += visible
            if budget > 0 and text:
                texts.append(text[:budget])
                budget -= len(texts[-1])
        report.text = "\n\f".join(texts)
        if len(report.page_errors) == pages:
            report.problem = "pdf_unreadable"
            report.problem_detail = "no page could be read"
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
    except (
        PdfReadError,
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        AssertionError,
    ) as exc:
        report.problem = "pdf_unreadable"
        report.problem_detail = f"{type(exc).__name__}: {exc}"[:300]
    return report.to_dict()
