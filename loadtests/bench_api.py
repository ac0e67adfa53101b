"""Requests per core: the API's CPU per request at the communes' mix, beside a bare handler's.

Run with ``make bench`` (or ``python -m loadtests.bench_api``). It prepares its own database, provisions
the operators of a district's communes, gives each commune dossiers to find, then sends the metadata
requests of the ``communes`` load shape's operators in their proportions (list the unit's dossiers 4,
search by name 2, open a dossier 2, look a citizen up for reuse 1, create a dossier 1; each as its
operator, signed in) from a number of concurrent clients, and reads the API process's CPU time (user
and system, from /proc) before and after. The floor is the same server (granian, ASGI, uvloop, one
process) running a bare Litestar handler that does one indexed asyncpg query (``loadtests.bare``), sent
the same number of requests by the same client in the same run. Ends with ``name=value`` lines:

- ``api_cpu_ms_per_request``: the API's CPU milliseconds over the requests it served;
- ``api_cpu_floor_ms_per_request``: the same for the bare handler;
- ``api_cpu_ratio``: floor over ours (goal at least 0.5);
- ``api_requests_per_core_s``: requests one core serves a second at that cost.

With ``--profile DIR`` a sampling profiler (py-spy) records the API while the mix runs and writes
``DIR/metadata.svg`` (a flame graph) and ``DIR/metadata.txt`` (collapsed stacks, for
``python -m loadtests.profile``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from loadtests.harness import NO_LIMITS, LiveApi, auth, cpu_seconds, free_port, operator_tokens, prepare, serving
from loadtests.profile import sampling
from warehouse.client.transport import warehouse_http

DISTRICT = "000.00.22.HXX"  # Tràng Định: 22 communes
GIVEN = ["Nguyễn Văn An", "Hoàng Thị Bình", "Lương Văn Chiến", "Vi Thị Dung", "Nông Văn Hải", "Lộc Thị Hoa"]
# The communes operators' metadata calls, in the load suite's proportions (its task weights).
MIX = [("list", 4), ("search", 2), ("open", 2), ("reuse", 1), ("create", 1)]


def _subject(i: int) -> dict[str, str]:
    return {"name": random.choice(GIVEN), "id_kind": "cccd", "id_number": f"020{i:09d}"}


class Communes:
    """The communes' operators and what they have made, to ask about."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.dossiers: dict[str, list[str]] = {t: [] for t in tokens}
        self.subjects: dict[str, list[str]] = {t: [] for t in tokens}
        self.made = 0

    async def create(self, http: httpx.AsyncClient, token: str) -> httpx.Response:
        self.made += 1
        subject = _subject(self.made)
        r = await http.post(
            "/api/v1/dossiers",
            json={
                "procedure_code": "1.002891",
                "subject": subject,
                "title": "Số hóa hồ sơ tồn đọng",
                "result": {"number": f"{self.made}/GCN", "issued_on": "2022-06-01", "issuer": "UBND"},
            },
            headers=auth(token, **{"Idempotency-Key": uuid.uuid4().hex}),
        )
        if r.status_code == 201:
            self.dossiers[token].append(r.json()["id"])
            self.subjects[token].append(subject["id_number"])
        return r

    async def one(self, http: httpx.AsyncClient, token: str, what: str) -> httpx.Response:
        if what == "create" or not self.dossiers[token]:
            return await self.create(http, token)
        if what == "list":
            return await http.get("/api/v1/dossiers", params={"limit": 20}, headers=auth(token))
        if what == "search":
            return await http.get(
                "/api/v1/dossiers", params={"q": random.choice(GIVEN), "limit": 20}, headers=auth(token)
            )
        if what == "open":
            return await http.get(f"/api/v1/dossiers/{random.choice(self.dossiers[token])}", headers=auth(token))
        subject = random.choice(self.subjects[token])
        return await http.get("/api/v1/dossiers", params={"subject_id": subject, "valid": "true"}, headers=auth(token))


async def _one_kind(communes: Communes, what: str, http: httpx.AsyncClient, i: int) -> httpx.Response:
    return await communes.one(http, communes.tokens[i % len(communes.tokens)], what)


async def drive(
    url: str, count: int, clients: int, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
) -> float:
    """Send ``count`` requests from ``clients`` concurrent connections; returns the seconds it took."""
    counter = iter(range(count))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with warehouse_http(base_url=url, timeout=60, limits=limits) as http:

        async def loop() -> None:
            for i in counter:
                r = await send(http, i)
                if r.status_code >= 400:
                    raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return time.perf_counter() - started


async def warehouse_figures(
    url: str, pid: int, password: str, count: int, clients: int, profile: Path | None, by_kind: bool = False
) -> float:
    async with warehouse_http(base_url=url, timeout=120) as http:
        r = await http.post("/api/v1/auth/login", json={"login": "admin", "password": password})
        admin = r.json()["access_token"]
        by_unit = await operator_tokens(http, admin, DISTRICT, 1)
    communes = Communes([tokens[0] for tokens in by_unit.values()])
    print(f"  {len(communes.tokens)} communes' operators signed in; giving each 20 dossiers ...", flush=True)
    tokens = communes.tokens
    await drive(url, 20 * len(tokens), clients, lambda http, i: communes.create(http, tokens[i % len(tokens)]))
    names = [name for name, weight in MIX for _ in range(weight)]
    plan = [(random.choice(tokens), random.choice(names)) for _ in range(count)]
    await drive(url, 200, clients, lambda http, i: communes.one(http, *plan[i]))  # warm
    with sampling(pid, profile / "metadata" if profile else None):
        before = cpu_seconds(pid)
        seconds = await drive(url, count, clients, lambda http, i: communes.one(http, *plan[i]))
        used = cpu_seconds(pid) - before
    print(
        f"  warehouse: {count} requests in {seconds:.1f} s ({count / seconds:.0f}/s), API CPU {used:.2f} s", flush=True
    )
    if by_kind:
        before = cpu_seconds(pid)
        await drive(url, 1000, clients, lambda http, i: http.get("/health/live"))
        print(
            f"    liveness probe (no sign-in, no database): {cpu_seconds(pid) - before:.2f} ms of CPU each", flush=True
        )
        for name, _ in MIX:
            each = max(200, count // 10)
            before = cpu_seconds(pid)
            await drive(url, each, clients, functools.partial(_one_kind, communes, name))
            print(f"    {name}: {(cpu_seconds(pid) - before) * 1000 / each:.2f} ms of CPU each", flush=True)
    return used * 1000 / count


@contextmanager
def bare_server(env: dict[str, str]) -> Iterator[LiveApi]:
    """The bare handler under the same server settings as the warehouse's API."""
    port = free_port()
    bare_env = {**env, "WAREHOUSE_PORT": str(port), "BARE_DATABASE_URL": env["WAREHOUSE_DATABASE_URL"]}
    log = os.path.join(env.get("WAREHOUSE_DATA_DIR", ".data"), f"bench-bare-{port}.log")
    server = LiveApi(bare_env, log=log)
    server.command = [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--factory",
        "loadtests.bare:create_app",
    ]
    with server:
        yield server


async def floor_figures(server: LiveApi, count: int, clients: int) -> float:
    assert server.proc is not None
    codes = ["000.00.22.HXX", "000.01.22.HXX", "000.00.00.HXX"]
    await drive(server.url, 200, clients, lambda http, i: http.get(f"/units/{codes[i % len(codes)]}"))
    before = cpu_seconds(server.proc.pid)
    seconds = await drive(server.url, count, clients, lambda http, i: http.get(f"/units/{codes[i % len(codes)]}"))
    used = cpu_seconds(server.proc.pid) - before
    print(
        f"  bare handler: {count} requests in {seconds:.1f} s ({count / seconds:.0f}/s), CPU {used:.2f} s", flush=True
    )
    return used * 1000 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="requests measured, for each server")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--profile", type=Path, help="record a flame graph of the API into this folder")
    parser.add_argument("--by-kind", action="store_true", help="also the CPU of each kind of request alone")
    args = parser.parse_args()
    random.seed(20261203)
    env, password = prepare("api", **NO_LIMITS)
    with serving(env, password) as server:
        ours = asyncio.run(
            warehouse_figures(server.url, server.pid, password, args.count, args.clients, args.profile, args.by_kind)
        )
    with bare_server(env) as bare:
        floor = asyncio.run(floor_figures(bare, args.count, args.clients))
    print(f"api_cpu_ms_per_request={ours:.2f}")
    print(f"api_cpu_floor_ms_per_request={floor:.2f}")
    print(f"api_cpu_ratio={floor / ours:.2f}")
    print(f"api_requests_per_core_s={1000 / ours:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
