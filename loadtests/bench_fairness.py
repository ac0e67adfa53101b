"""Fair-share benchmark: do other communes still get quick answers while one uploads flat out?

Run with ``make bench``. Operators of four communes make ordinary metadata calls (list their
dossiers, open one, create one) while, in a second phase, the operators of a fifth commune upload
scans as fast as they can. The same is repeated with the fair-share limits switched off, to show
what the limits buy. Ends with ``name=value`` lines:

- ``fair_p95_ms_quiet``: p95 latency of the others' calls with nobody uploading;
- ``fair_p95_ms_greedy``, ``fair_slowdown``: the same with one commune uploading flat out under the
  default limits, and its ratio to the quiet figure;
- ``fair_p95_ms_greedy_unlimited``, ``fair_slowdown_unlimited``: the same without limits;
- ``fair_greedy_mb_s``: what the greedy commune still uploaded per second under the limits;
- ``fair_lost_connections``: requests (of anyone, under the limits) whose connection failed before an
  answer came; counted and named, never the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx

from loadtests.harness import (
    NO_LIMITS,
    MiB,
    auth,
    clear_bucket,
    login,
    new_dossier,
    operator_tokens,
    percentile,
    prepare,
    serving,
)
from loadtests.pdfgen import scanned_pdf
from warehouse.client.transport import warehouse_http

DISTRICT = "000.00.22.HXX"  # Tràng Định: 22 communes
OFF = NO_LIMITS


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lost: list[str] = field(default_factory=list)  # requests whose connection failed, and why
    uploaded: int = 0
    refused: int = 0


async def _others(http: httpx.AsyncClient, tokens: list[str], dossiers: list[str], until: float, phase: Phase) -> None:
    async def one(token: str, dossier: str) -> None:
        i = 0
        while time.monotonic() < until:
            i += 1
            started = time.perf_counter()
            try:
                if i % 3 == 0:
                    r = await http.post(
                        "/api/v1/dossiers",
                        json={
                            "procedure_code": "1.002891",
                            "subject": {"name": "Lô Văn Sáng", "id_kind": "other", "id_number": f"f{i}"},
                        },
                        headers=auth(token, **{"Idempotency-Key": uuid.uuid4().hex}),
                    )
                elif i % 3 == 1:
                    r = await http.get("/api/v1/dossiers", params={"limit": 20}, headers=auth(token))
                else:
                    r = await http.get(f"/api/v1/dossiers/{dossier}", headers=auth(token))
            except httpx.TransportError as exc:  # counted, and said at the end: one lost call ends nothing
                phase.errors += 1
                phase.lost.append(f"{type(exc).__name__}: {exc}")
                continue
            phase.latencies.append((time.perf_counter() - started) * 1000)
            if r.status_code >= 400:
                phase.errors += 1
            await asyncio.sleep(0.2)  # an operator's think time between calls

    await asyncio.gather(*(one(t, d) for t, d in zip(tokens, dossiers, strict=True)))


async def _greedy(
    http: httpx.AsyncClient, tokens: list[str], dossier: str, scan: bytes, streams: int, until: float, phase: Phase
) -> None:
    async def one(token: str) -> None:
        while time.monotonic() < until:
            try:
                r = await http.post(
                    f"/api/v1/dossiers/{dossier}/files",
                    content=scan,
                    headers=auth(token, **{"Content-Type": "application/pdf", "X-File-Kind": "component"}),
                )
            except httpx.TransportError as exc:
                phase.lost.append(f"upload {type(exc).__name__}: {exc}")
                continue
            if r.status_code == 201:
                phase.uploaded += len(scan)
            elif r.status_code == 429:
                phase.refused += 1
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))  # as the warehouse asks

    await asyncio.gather(*(one(tokens[i % len(tokens)]) for i in range(streams)))


async def _run(url: str, password: str, seconds: float, streams: int, scan: bytes) -> tuple[Phase, Phase]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with warehouse_http(base_url=url, timeout=120, limits=limits) as http:
        admin = await login(http, "admin", password)
        by_unit = await operator_tokens(http, admin, DISTRICT, per_unit=2)
        units = sorted(by_unit)
        greedy_unit, other_units = units[0], units[1:5]
        others = [t for u in other_units for t in by_unit[u]]
        dossiers = [await new_dossier(http, token, "Hà Thị Lan") for token in others]
        greedy_dossier = await new_dossier(http, by_unit[greedy_unit][0], "Quét hàng loạt")

        quiet = Phase()
        await _others(http, others, dossiers, time.monotonic() + seconds, quiet)
        busy = Phase()
        until = time.monotonic() + seconds
        await asyncio.gather(
            _others(http, others, dossiers, until, busy),
            _greedy(http, by_unit[greedy_unit], greedy_dossier, scan, streams, until, busy),
        )
        return quiet, busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument("--streams", type=int, default=16, help="concurrent uploads of the greedy commune")
    args = parser.parse_args()
    scan = scanned_pdf(pages=5, dpi=200, seed=5)
    results: dict[str, tuple[Phase, Phase]] = {}
    for name, extra in (("limited", {}), ("unlimited", OFF)):
        env, password = prepare("fairness", **extra)
        try:
            with serving(env, password) as server:
                results[name] = asyncio.run(_run(server.url, password, args.seconds, args.streams, scan))
        except Exception as exc:  # the other run still measures; the figures below say what is missing
            print(f"  {name}: FAILED ({type(exc).__name__}: {exc})", flush=True)
            continue
        finally:
            clear_bucket(env)
        quiet, busy = results[name]
        print(
            f"  {name}: others p95 {percentile(quiet.latencies, 0.95):.0f} ms quiet, "
            f"{percentile(busy.latencies, 0.95):.0f} ms beside the greedy commune "
            f"({len(busy.latencies)} calls, {busy.errors} errors); greedy uploaded "
            f"{busy.uploaded / MiB / args.seconds:.1f} MiB/s, {busy.refused} uploads refused with 429",
            flush=True,
        )
        for phase in (quiet, busy):
            for line in sorted(set(phase.lost)):
                print(f"    connection lost: {line} ({phase.lost.count(line)}x)", flush=True)
    if "limited" in results:
        quiet, busy = results["limited"]
        p95_quiet = percentile(quiet.latencies, 0.95)
        print(f"fair_p95_ms_quiet={p95_quiet:.0f}")
        print(f"fair_p95_ms_greedy={percentile(busy.latencies, 0.95):.0f}")
        print(f"fair_slowdown={percentile(busy.latencies, 0.95) / p95_quiet:.2f}")
        print(f"fair_greedy_mb_s={busy.uploaded / MiB / args.seconds:.1f}")
        print(f"fair_lost_connections={len(quiet.lost) + len(busy.lost)}")
        if "unlimited" in results:
            _, busy_off = results["unlimited"]
            print(f"fair_p95_ms_greedy_unlimited={percentile(busy_off.latencies, 0.95):.0f}")
            print(f"fair_slowdown_unlimited={percentile(busy_off.latencies, 0.95) / p95_quiet:.2f}")
    return 0 if len(results) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
