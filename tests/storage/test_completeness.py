"""Completeness kept by triggers stays true when a worker accepts two files of one dossier at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.factories import Api, Subtree
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_two_files_accepted_at_the_same_moment_both_count(api: Api, tree: Subtree) -> None:
    _, op = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(op, procedure_code="1.001612")  # the starter catalogue: TP1 and TP2 required
    ids = []
    for part in ("TP1", "TP2"):
        r = await api.upload(op, dossier["id"], text_pdf(f"race {part}"), headers={"X-Part-Code": part})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    first = await asyncpg.connect(api.settings.database_url)
    second = await asyncpg.connect(api.settings.database_url)
    try:
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        await first.execute("UPDATE files SET state = 'ready' WHERE id = $1", ids[0])
        # The second waits for the first's lock on the dossier; it must then see the first's file.
        racing = asyncio.create_task(second.execute("UPDATE files SET state = 'ready' WHERE id = $1", ids[1]))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second waits for the first"
        await one.commit()
        await racing
        await two.commit()
        row = await first.fetchrow("SELECT parts_present, complete_at FROM dossiers WHERE id = $1", dossier["id"])
    finally:
        await first.close()
        await second.close()
    assert list(row["parts_present"]) == ["TP1", "TP2"]
    assert row["complete_at"] is not None
