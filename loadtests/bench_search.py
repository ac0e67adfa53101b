"""Find-and-report benchmark at the province's size: the API beside the bare query in psql.

Run with ``make bench`` (``SCALE=10000000 make bench`` for ten million). Prepares its own database,
fills it with ``warehouse seed --synthetic SCALE`` (default 1,100,000 dossiers, the province today),
serves the API as its own process and times, over HTTP, one request after another:

- ``code``: a dossier found by its code (``q=<code>``);
- ``subject``: the dossiers of a citizen ID (``subject_id=``);
- ``fulltext``: a name without diacritics, within a district, still-valid results only;
- ``unit_list``: the first page of a commune's list;
- ``report``: the progress report of every commune.

Each figure is printed beside the floor: the plain SQL that gives the same answer, run in psql in the
same run (``\\timing``). Lines: ``<name>_p50_ms=``, ``<name>_p95_ms=``, ``<name>_floor_p95_ms=``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import date

import asyncpg
from argon2 import PasswordHasher

from loadtests.harness import (
    NO_LIMITS,
    Warehouse,
    auth,
    bench_env,
    free_port,
    login,
    percentile,
    prepare,
    serving,
)
from warehouse.client.transport import warehouse_http


def psql_times(url: str, statements: list[str]) -> list[float]:
    """Milliseconds of each statement as psql reports it with \\timing."""
    script = "\\timing on\n" + "\n".join(s.rstrip(";") + ";" for s in statements) + "\n"
    out = subprocess.run(
        ["psql", "-X", "-q", "-d", url, "-o", "/dev/null"], input=script, capture_output=True, text=True, check=True
    )
    return [float(m) for m in re.findall(r"Time: ([0-9.]+) ms", out.stdout + out.stderr)]


async def api_times(server: Warehouse, token: str, path: str, params_list: list[dict[str, str]]) -> list[float]:
    times = []
    async with warehouse_http(base_url=server.url, timeout=120) as http:
        await http.get(path, params=params_list[0], headers=auth(token))  # warm the connection
        for params in params_list:
            started = time.perf_counter()
            r = await http.get(path, params=params, headers=auth(token))
            times.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
    return times


async def count_dossiers(url: str) -> int:
    """Dossiers in an earlier run's database (0 if there is none)."""
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return 0
    try:
        return int(await conn.fetchval("SELECT count(*) FROM dossiers"))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


def reuse(name: str, **extra: str) -> tuple[dict[str, str], str]:
    """An earlier run's database, migrated, with a new admin password for this run."""
    password = secrets.token_urlsafe(16)
    env = bench_env(name, free_port(), password, **extra)
    subprocess.run([sys.executable, "-m", "warehouse", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)

    async def set_password() -> None:
        conn = await asyncpg.connect(env["WAREHOUSE_DATABASE_URL"])
        try:
            hashed = PasswordHasher().hash(password)  # argon2id; the warehouse rehashes to its own cost at login
            await conn.execute("UPDATE accounts SET password_hash = $1 WHERE login = 'admin'", hashed)
        finally:
            await conn.close()

    asyncio.run(set_password())
    return env, password


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def samples(url: str, n: int) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT d.code, d.subject_id_number, u.code AS unit FROM dossiers d JOIN units u ON u.id = d.unit_id "
            "WHERE u.level = 'commune' ORDER BY random() LIMIT $1",
            n,
        )
        districts = await conn.fetch("SELECT code FROM units WHERE level = 'district' ORDER BY code")
    finally:
        await conn.close()
    return {
        "codes": [r["code"] for r in rows],
        "subjects": [r["subject_id_number"] for r in rows],
        "communes": [r["unit"] for r in rows],
        "districts": [r["code"] for r in districts],
    }


def province_sized(scale: int, *, keep: bool) -> tuple[dict[str, str], str]:
    """The benchmark warehouse of ``scale`` synthetic dossiers: an earlier run's when ``keep`` and it is
    there, else a fresh one loaded now. Returns (environment, admin password)."""
    name = "bench_search" if scale == 1_100_000 else f"bench_search_{scale}"
    loaded = asyncio.run(count_dossiers(bench_env(name, 0, "")["WAREHOUSE_DATABASE_URL"])) if keep else 0
    if loaded >= scale:
        print(f"reusing {loaded:,} dossiers loaded by an earlier run", flush=True)
        return reuse(name, **NO_LIMITS)
    env, password = prepare(name, **NO_LIMITS)
    print(f"loading {scale:,} synthetic dossiers ...", flush=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "warehouse", "seed", "--synthetic", str(scale)], env=env, check=True)
    print(f"  loaded in {time.monotonic() - started:.0f}s", flush=True)
    return env, password


NAMES = ["nguyen thi lan", "hoang van son", "nong thi mai", "luong duc hung", "vi thi hoa", "loc van nam"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=int(os.environ.get("SCALE", "1100000")))
    parser.add_argument("--runs", type=int, default=60, help="requests per figure")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of an earlier run at this scale (loading ten million takes most of an hour)",
    )
    args = parser.parse_args()

    env, password = province_sized(args.scale, keep=args.reuse)
    url = env["WAREHOUSE_DATABASE_URL"]
    s = asyncio.run(samples(url, args.runs))
    runs = len(s["codes"])
    year = date.today().year
    figures: dict[str, tuple[list[float], list[float]]] = {}
    with serving(env, password) as server:

        async def go() -> None:
            async with warehouse_http(base_url=server.url, timeout=60) as http:
                token = await login(http, "admin", password)
            cases = {
                "code": (
                    "/api/v1/dossiers",
                    [{"q": c} for c in s["codes"]],
                    [f"SELECT * FROM dossiers WHERE code = {quote(c)}" for c in s["codes"]],
                ),
                "subject": (
                    "/api/v1/dossiers",
                    [{"subject_id": x} for x in s["subjects"]],
                    [
                        f"SELECT * FROM dossiers WHERE subject_id_number = {quote(x)} "
                        "ORDER BY created_at DESC, id DESC LIMIT 50"
                        for x in s["subjects"]
                    ],
                ),
                "fulltext": (
                    "/api/v1/dossiers",
                    [
                        {"q": NAMES[i % len(NAMES)], "unit": s["districts"][i % len(s["districts"])], "valid": "true"}
                        for i in range(runs)
                    ],
                    [
                        "SELECT d.* FROM dossiers d WHERE d.unit_id = ANY(ARRAY(SELECT id FROM units "
                        f"WHERE code = {quote(s['districts'][i % len(s['districts'])])} OR parent_id = "
                        f"(SELECT id FROM units WHERE code = {quote(s['districts'][i % len(s['districts'])])}))) "
                        f"AND d.search_vector @@ websearch_to_tsquery('vn_unaccent', {quote(NAMES[i % len(NAMES)])}) "
                        "AND d.result_number IS NOT NULL "
                        "AND (d.result_valid_until IS NULL OR d.result_valid_until >= current_date) "
                        f"ORDER BY ts_rank(d.search_vector, websearch_to_tsquery('vn_unaccent', "
                        f"{quote(NAMES[i % len(NAMES)])})) DESC LIMIT 50"
                        for i in range(runs)
                    ],
                ),
                "unit_list": (
                    "/api/v1/dossiers",
                    [{"unit": u} for u in s["communes"]],
                    [
                        "SELECT d.* FROM dossiers d WHERE d.unit_id = (SELECT id FROM units WHERE code = "
                        f"{quote(u)}) ORDER BY d.created_at DESC, d.id DESC LIMIT 50"
                        for u in s["communes"]
                    ],
                ),
                "report": (
                    "/api/v1/reports/progress",
                    [{"level": "commune", "year": str(year)}] * min(runs, 20),
                    [
                        "SELECT u.code, t.declared_total, coalesce(p.n, 0) FROM units u "
                        f"LEFT JOIN unit_targets t ON t.unit_id = u.id AND t.year = {year} "
                        f"LEFT JOIN (SELECT unit_id, sum(digitized) AS n FROM unit_progress WHERE year = {year} "
                        "GROUP BY unit_id) p ON p.unit_id = u.id WHERE u.level = 'commune'"
                    ]
                    * min(runs, 20),
                ),
            }
            for name, (path, params, sql) in cases.items():
                api = await api_times(server, token, path, params)
                floor = psql_times(url, sql)
                figures[name] = (api, floor)
                print(
                    f"  {name}: API p50 {percentile(api, 0.5):.1f} ms, p95 {percentile(api, 0.95):.1f} ms; "
                    f"psql p95 {percentile(floor, 0.95):.1f} ms",
                    flush=True,
                )

        asyncio.run(go())
    print(f"search_scale={args.scale}")
    for name, (api, floor) in figures.items():
        print(f"{name}_p50_ms={percentile(api, 0.5):.1f}")
        print(f"{name}_p95_ms={percentile(api, 0.95):.1f}")
        print(f"{name}_floor_p95_ms={percentile(floor, 0.95):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
