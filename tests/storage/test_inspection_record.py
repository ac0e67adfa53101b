"""The typed inspection record reads what any release kept, and never fails a file over one odd value."""

from __future__ import annotations

from storage.inspection import InspectionRecord, PageFacts
from workers.standard import _typed


def test_a_record_of_an_earlier_release_reads_with_its_findings_and_facts() -> None:
    kept = {
        "verdict": "ready_with_warnings",
        "findings": [{"code": "scan_low_dpi", "vi": "…", "en": "…", "pages": [1], "dpi": 150, "severity": "warning"}],
        "page_facts": [{"page": 1, "dpi": 150, "colour": "colour", "width_mm": 210.0, "height_mm": 297.0}],
        "ocr": {"state": "done", "pages": [1], "chars": 812, "pdfa": "PDF/A-2b", "seconds": 3.5},
        "a_field_of_a_later_release": {"kept": True},
    }
    record = InspectionRecord.of(kept)
    assert record.findings[0].dpi == 150 and record.page_facts[0].colour == "colour"
    assert record.ocr is not None and record.ocr.chars == 812
    assert record.stored()["verdict"] == "ready_with_warnings"


def test_one_odd_value_is_left_at_its_default_not_the_whole_record() -> None:
    record = InspectionRecord.of({"verdict": "rejected", "page_facts": "not a list", "findings": [{"code": "x"}]})
    assert record.verdict == "rejected" and record.page_facts == [] and record.findings[0].code == "x"
    assert _typed(PageFacts, {"page": 3, "dpi": "three hundred"}) is None
