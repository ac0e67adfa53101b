"""The restore drill in short form: the test warehouse backed up, restored into an empty database and
bucket, every record's bytes proved; a corrupted backup and a restore over records are caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage import Settings
from tests.factories import Api, Subtree
from tests.pdfs import _one_text_page, build_pdf
from warehouse.drill import DrillRefused, DrillReport, Target, backup, check, drill, remove, restore

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def some_records(api: Api, tree: Subtree) -> None:
    _, operator = await api.account("operator", tree.commune(1))
    d = await api.dossier(operator)
    for n in range(3):
        r = await api.upload(
            operator,
            d["id"],
            build_pdf(_one_text_page(b"BT /F1 12 Tf 100 700 Td (Ban sao luu kiem tra cua kho so hoa so %d) Tj ET" % n)),
        )
        assert r.status_code == 201, r.text


async def test_the_drill_restores_every_record_with_its_bytes(
    api: Api, tree: Subtree, prepared: Settings, tmp_path: Path
) -> None:
    await some_records(api, tree)
    stored = await api.db.pool.fetchval("SELECT count(*) FROM blobs WHERE purged_at IS NULL")
    report = await drill(prepared, backup_dir=tmp_path / "backup", keep=False)
    assert report.ok, report.lines()
    assert report.records == stored and report.records >= 3 and report.bytes > 0
    assert (tmp_path / "backup" / "warehouse.dump").stat().st_size > 0  # the backup stays where it was put
    lines = report.lines()
    assert lines[-1] == "drill: PASS, every record's bytes match" and "stored records checked" in lines[0]

    # the command, as the runbook gives it
    run = subprocess.run([sys.executable, "-m", "warehouse", "drill"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "drill: PASS" in run.stdout


async def test_a_corrupted_backup_fails_the_drill_and_a_restore_never_goes_over_records(
    api: Api, tree: Subtree, prepared: Settings, tmp_path: Path
) -> None:
    await some_records(api, tree)
    target = Target.beside(prepared)
    report = DrillReport()
    await backup(prepared, tmp_path, report)
    key = await api.db.pool.fetchval("SELECT object_key FROM blobs WHERE purged_at IS NULL ORDER BY created_at DESC")
    copy = tmp_path / "objects" / key
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit flipped on the second medium
    copy.write_bytes(bytes(data))
    try:
        await restore(prepared, tmp_path, target, report)
        await check(prepared, target, report)
        assert not report.ok and report.differing == [key] and report.lines()[-1] == "drill: FAIL"

        with pytest.raises(DrillRefused, match="not empty"):  # the drill's database holds records now
            await restore(prepared, tmp_path, target, DrillReport())
    finally:
        await remove(prepared, target)
