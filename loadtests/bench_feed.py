"""The change feed and its push deliveries: how soon a change reaches a receiver while the communes
work, and how fast a consumer that was away catches up.

Run with ``make bench``. A fresh warehouse (API and one worker, whose dispatcher sends deliveries)
and a receiver in this process. Figures:

- ``feed_lag_p95_ms``: from a change's commit (its ``timestamp``) to its delivery reaching the local
  receiver, at the 95th percentile, while dossiers are created and scans uploaded at the ``communes``
  shape's rate (2.5 dossiers and 4.5 scans a second). Goal under 1,000. Printed beside it: the worker's
  poll interval (``WAREHOUSE_FEED_POLL_MS``), the floor a delivery waits for at most.
- ``feed_catchup_per_s``: changes per second a returning consumer reads through ``GET /api/v1/feed``
  (pages of ``WAREHOUSE_FEED_PAGE_MAX``, one after another) from a backlog of one million. Goal at
  least 20,000. ``feed_catchup_floor_per_s``: the same pages read straight from Postgres by the same
  query in the same run, and ``feed_catchup_ratio`` the first over the second.

The backlog is written straight into the benchmark's own database (as the triggers would write it):
a million changes through the API would take hours and measure the uploads, not the feed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from aiohttp import web

from loadtests.harness import NO_LIMITS, LiveApi, auth, clear_bucket, login, new_dossier, percentile, prepare
from loadtests.pdfgen import scanned_pdf

BACKLOG_SQL = """
WITH h AS (SELECT pos FROM feed_head FOR UPDATE),
u AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(code ORDER BY id) AS codes FROM units
      WHERE level = 'commune')
INSERT INTO changes (pos, kind, record, dossier_id, unit_id, at, data)
SELECT h.pos + g, 'dossier.created', d.id::text, d.id, u.ids[1 + g % cardinality(u.ids)],
       clock_timestamp(),
       jsonb_build_object('id', d.id,
                          'code', u.codes[1 + g % cardinality(u.codes)] || '-230801-' || lpad((g % 9999)::text, 4, '0'),
                          'unit', u.codes[1 + g % cardinality(u.codes)], 'procedure_code', '1.002891',
                          'title', 'Hồ sơ tồn đọng số ' || g, 'received_on', '2023-08-01', 'returned_on', NULL,
                          'state', 'active', 'complete', false, 'complete_at', NULL,
                          'result_number', g || '/GCN', 'result_valid_until', '2030-12-31')
FROM h, u, generate_series(1, $1) g, LATERAL (SELECT gen_random_uuid() AS id) d
"""


class Receiver:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.measuring = False
        self.count = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        self.count += 1
        if self.measuring:
            committed = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
            self.lags.append((arrived - committed) * 1000)
        return web.Response(status=204)

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner, f"http://127.0.0.1:{port}/hook"


async def lag(url: str, password: str, seconds: float, scans: list[bytes]) -> tuple[float, float, int]:
    """Deliveries' lag (p50, p95 ms) and how many were measured, while the communes' load runs."""
    receiver = Receiver()
    runner, hook = await receiver.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            admin = await login(http, "admin", password)
            r = await http.post("/api/v1/subscriptions", json={"name": "đo độ trễ", "url": hook}, headers=auth(admin))
            r.raise_for_status()
            subscription = r.json()["id"]
            dossiers = [await new_dossier(http, admin) for _ in range(3)]
            await asyncio.sleep(2)  # the first deliveries (these dossiers) open the connection
            receiver.measuring = True
            started = time.monotonic()
            tick = 0

            async def upload(dossier_id: str, data: bytes) -> None:
                r = await http.post(
                    f"/api/v1/dossiers/{dossier_id}/files",
                    content=data,
                    headers=auth(admin, **{"Content-Type": "application/pdf", "X-File-Kind": "component"}),
                )
                r.raise_for_status()

            while time.monotonic() - started < seconds:
                # each second: 2.5 dossiers made and 4.5 scans uploaded (the communes' busy hour)
                work: list[Any] = []
                if tick % 2 == 0:
                    work += [new_dossier(http, admin) for _ in range(3)]
                else:
                    work += [new_dossier(http, admin) for _ in range(2)]
                for n in range(5 if tick % 2 else 4):
                    work.append(upload(dossiers[n % len(dossiers)], scans[(tick + n) % len(scans)]))
                made = await asyncio.gather(*work)
                dossiers = ([*dossiers, *[m for m in made if isinstance(m, str)]])[-20:]
                tick += 1
                await asyncio.sleep(max(0.0, started + tick - time.monotonic()))
            await asyncio.sleep(3)  # the last changes' deliveries
            receiver.measuring = False
            r = await http.delete(f"/api/v1/subscriptions/{subscription}", headers=auth(admin))
            r.raise_for_status()
    finally:
        await runner.cleanup()
    return percentile(receiver.lags, 0.5), percentile(receiver.lags, 0.95), len(receiver.lags)


async def catch_up(url: str, password: str, database_url: str, backlog: int, page: int) -> tuple[float, float]:
    """Changes per second read by a returning consumer through the API, and straight from Postgres."""
    conn = await asyncpg.connect(database_url)
    try:
        start = await conn.fetchval("SELECT pos FROM feed_head")
        instance = await conn.fetchval("SELECT instance FROM feed_head")
        print(f"  writing a backlog of {backlog:,} changes ...", flush=True)
        began = time.monotonic()
        async with conn.transaction():
            await conn.execute(BACKLOG_SQL, backlog)
            await conn.execute("UPDATE feed_head SET pos = pos + $1", backlog)
        await conn.execute("ANALYZE changes")
        print(f"  backlog written in {time.monotonic() - began:.0f} s", flush=True)

        # the floor: the feed's own query, page after page, from this process
        after, read, began = start, 0, time.perf_counter()
        while True:
            rows = await conn.fetch(
                """
                SELECT c.pos, c.kind, c.record, c.dossier_id, c.unit_id, u.code, c.at, c.data FROM changes c
                JOIN units u ON u.id = c.unit_id WHERE c.pos > $1 AND c.pos <= $1 + 100000 ORDER BY c.pos LIMIT $2
                """,
                after,
                page,
            )
            if not rows:
                break
            read += len(rows)
            after = rows[-1]["pos"]
        floor = read / (time.perf_counter() - began)
    finally:
        await conn.close()

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        admin = await login(http, "admin", password)
        cursor = f"{instance.hex[:12]}.{start}"
        read, began = 0, time.perf_counter()
        while True:
            r = await http.get("/api/v1/feed", params={"after": cursor, "limit": page}, headers=auth(admin))
            r.raise_for_status()
            body = r.json()
            read += len(body["items"])
            cursor = body["next"]
            if not body["more"]:
                break
        rate = read / (time.perf_counter() - began)
    if read < backlog:
        raise SystemExit(f"the consumer read {read:,} changes of a backlog of {backlog:,}")
    return rate, floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="how long the communes' load runs for the lag")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="changes a returning consumer reads")
    args = parser.parse_args()
    env, password = prepare(
        "bench_feed",
        **NO_LIMITS,
        WAREHOUSE_OCR_ENABLED="false",
        WAREHOUSE_WEBHOOK_ALLOW_PRIVATE="true",
        WAREHOUSE_WEBHOOK_REQUIRE_HTTPS="false",
    )
    page = int(env.get("WAREHOUSE_FEED_PAGE_MAX", "1000"))
    poll = int(env.get("WAREHOUSE_FEED_POLL_MS", "100"))
    scans = [scanned_pdf(pages=1, dpi=200, seed=700 + s) for s in range(6)]
    log = f"{env.get('WAREHOUSE_DATA_DIR', '.data')}/bench-feed-{env['WAREHOUSE_PORT']}.log"
    try:
        with LiveApi(env, log=log, also=[["-m", "workers"]]) as api:
            print(f"deliveries while the communes work ({args.seconds:.0f} s) ...", flush=True)
            p50, p95, measured = asyncio.run(lag(api.url, password, args.seconds, scans))
            print(f"  {measured} deliveries: lag p50 {p50:.0f} ms, p95 {p95:.0f} ms (the worker looks every {poll} ms)")
            print(f"a returning consumer reads a backlog of {args.backlog:,} changes ...", flush=True)
            rate, floor = asyncio.run(catch_up(api.url, password, env["WAREHOUSE_DATABASE_URL"], args.backlog, page))
            print(f"  {rate:,.0f} changes/s through the API, {floor:,.0f}/s straight from Postgres (pages of {page})")
    finally:
        clear_bucket(env)
    print(f"feed_lag_p50_ms={p50:.0f}")
    print(f"feed_lag_p95_ms={p95:.0f}")
    print(f"feed_poll_ms={poll}")
    print(f"feed_catchup_per_s={rate:.0f}")
    print(f"feed_catchup_floor_per_s={floor:.0f}")
    print(f"feed_catchup_ratio={rate / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
