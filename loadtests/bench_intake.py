"""Returns pushed by the one-stop system into a warehouse of the province's size, beside a bare INSERT.

Run with ``make bench`` (after the search phase, whose database of 1.1 million synthetic dossiers it
uses; it loads one itself when there is none). A one-stop system's account pushes batches of 100
returns without files over HTTP, one batch after another; the floor is the same rows (other codes)
written by one bare multi-row INSERT per batch into the same table, its indexes and triggers included,
timed in the same run. Lines: ``intake_items_per_s``, ``intake_floor_items_per_s``, ``intake_ratio``
(ours over the floor, goal at least 0.5), ``intake_batch_p95_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import unicodedata
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher

from loadtests.bench_search import province_sized
from loadtests.harness import login, percentile, serving
from warehouse.client.transport import warehouse_http

ACCOUNT = "bench-mot-cua"
PASSWORD = "bench-mot-cua-" + uuid.uuid4().hex
BATCH = 100
PROCEDURES = ["1.001612", "1.001193", "1.000656", "1.003583", "2.000488", "2.001159"]


async def one_stop_account(url: str) -> int:
    """The one-stop system's account (province-wide), its earlier benchmark rows removed."""
    conn = await asyncpg.connect(url)
    try:
        province = await conn.fetchval("SELECT id FROM units WHERE level = 'province'")
        account: int = await conn.fetchval(
            """
            INSERT INTO accounts (login, unit_id, role, password_hash) VALUES ($1, $2, 'one_stop', $3)
            ON CONFLICT (login) DO UPDATE SET password_hash = excluded.password_hash, state = 'active'
            RETURNING id
            """,
            ACCOUNT,
            province,
            PasswordHasher().hash(PASSWORD),
        )
        removed = await conn.execute("DELETE FROM dossiers WHERE created_by = $1", account)
        if removed != "DELETE 0":
            await conn.execute("SELECT progress_rebuild()")
        return account
    finally:
        await conn.close()


def returns(communes: list[str], n: int, rng: random.Random, taken: set[str]) -> list[dict[str, Any]]:
    """``n`` returns without files, with codes no other row of this run uses (sequences 9000 and up:
    the synthetic data numbers each unit's day from 1)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        unit = rng.choice(communes)
        received = date.today() - timedelta(days=rng.randrange(5, 900))
        code = f"{unit}-{received:%y%m%d}-{rng.randrange(9000, 10000):04d}"
        if code in taken:
            continue
        taken.add(code)
        out.append(
            {
                "dossier_code": code,
                "procedure_code": rng.choice(PROCEDURES),
                "unit_code": unit,
                "received_on": received.isoformat(),
                "returned_on": (received + timedelta(days=rng.randrange(1, 5))).isoformat(),
                "subject": {"name": "Lương Văn Bốn", "id_kind": "cccd", "id_number": f"0201{rng.randrange(10**8):08d}"},
                "result": {"number": f"{rng.randrange(1, 9999)}/KQ", "type_code": "KQ1", "issuer": "UBND xã"},
            }
        )
    return out


def _folded(r: dict[str, Any]) -> str:
    """The search text the warehouse keeps (codes and names, lower case, without diacritics)."""
    words = " ".join([r["dossier_code"], r["procedure_code"], "Đăng ký khai sinh", r["subject"]["name"],
                      r["subject"]["id_number"], r["result"]["number"]])  # fmt: skip
    plain = "".join(c for c in unicodedata.normalize("NFKD", words) if not unicodedata.combining(c))
    return plain.replace("đ", "d").replace("Đ", "D").lower()


async def bare_inserts(url: str, batches: list[list[dict[str, Any]]], account: int) -> float:
    """Seconds to write the batches with one bare multi-row INSERT each, in their own transactions."""
    conn = await asyncpg.connect(url)
    try:
        units = {r["code"]: r["id"] for r in await conn.fetch("SELECT id, code FROM units")}
        started = time.perf_counter()
        for batch in batches:
            async with conn.transaction():
                await conn.execute(
                    """
                    INSERT INTO dossiers (id, code, unit_id, procedure_code, title, subject_name, subject_id_kind,
                        subject_id_number, received_on, result_number, result_issuer, result_kind_code,
                        returned_on, search_text, created_by, source_account_id)
                    SELECT *, $15::bigint, $15::bigint FROM unnest($1::uuid[], $2::text[], $3::bigint[],
                        $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::date[], $10::text[],
                        $11::text[], $12::text[], $13::date[], $14::text[])
                    """,
                    [uuid.uuid4() for _ in batch],
                    [r["dossier_code"] for r in batch],
                    [units[r["unit_code"]] for r in batch],
                    [r["procedure_code"] for r in batch],
                    ["Đăng ký khai sinh" for _ in batch],
                    [r["subject"]["name"] for r in batch],
                    ["cccd" for _ in batch],
                    [r["subject"]["id_number"] for r in batch],
                    [date.fromisoformat(r["received_on"]) for r in batch],
                    [r["result"]["number"] for r in batch],
                    [r["result"]["issuer"] for r in batch],
                    [r["result"]["type_code"] for r in batch],
                    [date.fromisoformat(r["returned_on"]) for r in batch],
                    [_folded(r) for r in batch],
                    account,
                )
        return time.perf_counter() - started
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=int(os.environ.get("SCALE", "1100000")))
    parser.add_argument("--batches", type=int, default=30, help="measured batches of 100 returns, each way")
    args = parser.parse_args()
    env, password = province_sized(args.scale, keep=True)
    url = env["WAREHOUSE_DATABASE_URL"]
    account = asyncio.run(one_stop_account(url))
    rng = random.Random(61)
    communes = asyncio.run(_communes(url))
    taken: set[str] = set()
    ours = [returns(communes, BATCH, rng, taken) for _ in range(args.batches + 2)]
    floor = [returns(communes, BATCH, rng, taken) for _ in range(args.batches)]
    floor_seconds = asyncio.run(bare_inserts(url, floor, account))
    times: list[float] = []
    with serving(env, password) as server:

        async def go() -> None:
            async with warehouse_http(base_url=server.url, timeout=120) as http:
                token = await login(http, ACCOUNT, PASSWORD)
                key = await http.post(
                    "/api/v1/api-keys", json={"label": "bench"}, headers={"Authorization": f"Bearer {token}"}
                )
                headers = {"X-API-Key": key.json()["key"]}
                for i, batch in enumerate(ours):
                    started = time.perf_counter()
                    r = await http.post("/api/v1/intake/returns", json=batch, headers=headers)
                    took = time.perf_counter() - started
                    r.raise_for_status()
                    created = r.json()["created"]
                    if created != len(batch):
                        raise SystemExit(f"batch {i}: {created} of {len(batch)} created: {r.text[:500]}")
                    if i >= 2:  # the first two warm the connection and the caches
                        times.append(took)

        asyncio.run(go())
    ours_rate = BATCH * len(times) / sum(times)
    floor_rate = BATCH * len(floor) / floor_seconds
    print(f"  intake: {ours_rate:.0f} returns/s through the API, {floor_rate:.0f}/s by bare INSERT", flush=True)
    print(f"intake_items_per_s={ours_rate:.0f}")
    print(f"intake_floor_items_per_s={floor_rate:.0f}")
    print(f"intake_ratio={ours_rate / floor_rate:.2f}")
    print(f"intake_batch_p95_ms={percentile([t * 1000 for t in times], 0.95):.0f}")
    return 0


async def _communes(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["code"] for r in await conn.fetch("SELECT code FROM units WHERE level = 'commune' ORDER BY code")]
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
