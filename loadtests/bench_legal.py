"""Signed copies and the public check: the API against bare pyHanko on the same files, in the same run.

Run with ``make bench``. A fresh warehouse gets a test key for one commune (``warehouse signing
demo-key``), accepted result scans (two pages, colour, 200 dpi) and a signer. Figures:

- ``sign_ratio``: signed copies per second through ``POST /api/v1/files/{id}/sign`` (fetching the
  original from the store, the QR placed and drawn, the PAdES signature, the copy stored and recorded),
  with as many requests at once as the API signs at once (``WAREHOUSE_SIGN_CONCURRENCY``), divided by
  bare pyHanko signing the same files' bytes (PAdES, the same key, no QR, nothing stored) in as many
  processes. Goal at least 0.8.
- ``qr_overhead_pct``: the bytes the QR overlay adds, as a share of the original: our signed copy's size
  less bare pyHanko's signed copy of the same file, over the original's size (mean). Goal under 2.
- ``verify_p95_ms``: ``GET /verify/{code}?sha256=`` latency at the 95th percentile with 50 checks in
  flight at once. Goal under 50. ``verify_floor_p95_ms``: the same for the API's liveness probe (no
  database, no Redis) in the same run: what the server and this load generator allow at 50 in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from loadtests.harness import NO_LIMITS, auth, clear_bucket, login, percentile, prepare, serving
from loadtests.pdfgen import scanned_pdf

UNIT = "000.01.21.HXX"  # a commune of the seeded province (its suffix from the settings' default)
SUBJECT = "020190000042"


def bare_sign(p12: str, passphrase: bytes, data: bytes) -> int:
    """pyHanko alone: the file's bytes signed (PAdES) with the unit's key; the signed size."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _signer(p12, passphrase)
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name="KhoSoHoa-bare", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    out = signers.PdfSigner(meta, signer=signer).sign_pdf(writer)
    return len(out.getvalue())


_SIGNERS: dict[str, Any] = {}


def _signer(p12: str, passphrase: bytes) -> Any:
    if p12 not in _SIGNERS:
        from pyhanko.sign import signers

        _SIGNERS[p12] = signers.SimpleSigner.load_pkcs12(p12, passphrase=passphrase)  # type: ignore[no-untyped-call]
    return _SIGNERS[p12]


def bare_rate(p12: str, passphrase: bytes, files: list[bytes], processes: int, rounds: int) -> tuple[float, list[int]]:
    """Files signed per second by bare pyHanko in ``processes`` processes (warmed first), and the sizes."""
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(bare_sign, [p12] * processes, [passphrase] * processes, files[:processes]))
        started = time.perf_counter()
        sizes = list(
            pool.map(bare_sign, [p12] * (len(files) * rounds), [passphrase] * (len(files) * rounds), files * rounds)
        )
        seconds = time.perf_counter() - started
    return len(files) * rounds / seconds, sizes[: len(files)]


async def accepted_results(http: httpx.AsyncClient, admin: str, files: list[bytes], env: dict[str, str]) -> list[str]:
    """The files uploaded as results of a dossier of the commune and accepted by a worker; their ids."""
    r = await http.post(
        "/api/v1/dossiers",
        json={
            "procedure_code": "1.002891",
            "unit_code": UNIT,
            "subject": {"name": "Hoàng Văn Páo", "id_kind": "cccd", "id_number": SUBJECT},
        },
        headers=auth(admin),
    )
    r.raise_for_status()
    dossier = r.json()["id"]
    ids = []
    for n, data in enumerate(files):
        r = await http.post(
            f"/api/v1/dossiers/{dossier}/files",
            content=data,
            headers=auth(
                admin, **{"Content-Type": "application/pdf", "X-File-Kind": "result", "X-Filename": f"kq{n}.pdf"}
            ),
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = [(await http.get(f"/api/v1/files/{i}", headers=auth(admin))).json()["state"] for i in ids]
            if all(s != "processing" for s in states):
                break
            await asyncio.sleep(0.5)
        if any(s != "ready" for s in states):
            raise SystemExit(f"not every result was accepted: {states}")
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)
    return ids


async def signer_token(http: httpx.AsyncClient, admin: str) -> str:
    r = await http.post(
        "/api/v1/accounts", json={"login": "bench-ky-so", "unit_code": UNIT, "role": "signer"}, headers=auth(admin)
    )
    r.raise_for_status()
    one_time = r.json()["password"]
    token = await login(http, "bench-ky-so", one_time)
    new = "bench-ky-so-" + os.urandom(8).hex()
    r = await http.post(
        "/api/v1/me/password", json={"current_password": one_time, "new_password": new}, headers=auth(token)
    )
    r.raise_for_status()
    return await login(http, "bench-ky-so", new)


async def api_rate(
    http: httpx.AsyncClient, token: str, ids: list[str], at_once: int, rounds: int
) -> tuple[float, list[dict[str, Any]]]:
    """Signed copies per second through the API with ``at_once`` requests in flight (after one warm-up
    round), and the first round's copies."""
    first: list[dict[str, Any]] = []

    async def sign_all(keep: bool) -> None:
        queue = list(ids)

        async def one() -> None:
            while queue:
                file_id = queue.pop()
                r = await http.post(f"/api/v1/files/{file_id}/sign?again=true", headers=auth(token))
                if r.status_code != 201:
                    raise SystemExit(f"sign: {r.status_code} {r.text[:300]}")
                if keep:
                    first.append(r.json())

        await asyncio.gather(*(one() for _ in range(at_once)))

    await sign_all(keep=True)
    started = time.perf_counter()
    for _ in range(rounds):
        await sign_all(keep=False)
    seconds = time.perf_counter() - started
    return len(ids) * rounds / seconds, first


async def p95_in_flight(
    http: httpx.AsyncClient, requests: list[tuple[str, dict[str, str]]], concurrency: int, total: int, what: str
) -> float:
    """p95 latency (ms) of ``total`` GETs of ``requests`` (cycled), ``concurrency`` in flight; each must
    answer 200 (and a check ``genuine``)."""
    times: list[float] = []
    pending = [requests[i % len(requests)] for i in range(total)]

    async def one() -> None:
        while pending:
            path, params = pending.pop()
            started = time.perf_counter()
            r = await http.get(path, params=params)
            times.append(time.perf_counter() - started)
            if r.status_code != 200 or (path.startswith("/verify/") and r.json()["genuine"] is not True):
                raise SystemExit(f"{what}: {r.status_code} {r.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    p95 = percentile([t * 1000 for t in times], 0.95)
    p50 = percentile([t * 1000 for t in times], 0.5)
    print(f"  {what}: {total / seconds:.0f}/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms, {concurrency} in flight")
    return p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=12, help="distinct result scans")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds over every file, each way")
    parser.add_argument("--checks", type=int, default=2000, help="public checks, 50 at a time")
    args = parser.parse_args()
    keys = tempfile.mkdtemp(prefix="bench-signing-")
    env, password = prepare(
        "bench_legal",
        **NO_LIMITS,
        WAREHOUSE_SIGNING_KEYS_DIR=keys,
        WAREHOUSE_OCR_ENABLED="false",
        WAREHOUSE_VERIFY_PER_MINUTE="100000000",
    )
    subprocess.run(
        [sys.executable, "-m", "warehouse", "signing", "demo-key", UNIT], env=env, check=True, stdout=subprocess.DEVNULL
    )
    p12 = str(Path(keys) / f"{UNIT}.p12")
    passphrase = (Path(keys) / f"{UNIT}.pass").read_bytes().strip()
    print(f"generating {args.files} result scans (2 pages, colour, 200 dpi) ...", flush=True)
    files = [scanned_pdf(pages=2, dpi=200, seed=500 + s) for s in range(args.files)]
    concurrency = int(env.get("WAREHOUSE_SIGN_CONCURRENCY", "2"))
    try:
        with serving(env, password) as server:

            async def go() -> tuple[float, list[dict[str, Any]], float, float, list[str]]:
                async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                    admin = await login(http, "admin", password)
                    ids = await accepted_results(http, admin, files, env)
                    signer = await signer_token(http, admin)
                    rate, copies = await api_rate(http, signer, ids, concurrency, args.rounds)
                    checks = [(f"/verify/{c['result_code']}", {"sha256": c["sha256"]}) for c in copies]
                    await p95_in_flight(http, checks, 1, 200, "verify alone")
                    await p95_in_flight(http, checks, 50, 500, "warm-up")  # 50 connections opened
                    p95 = await p95_in_flight(http, checks, 50, args.checks, "verify")
                    # the floor: the API's cheapest answer (a liveness probe) under the same load
                    floor = await p95_in_flight(http, [("/health/live", {})], 50, args.checks, "liveness probe")
                    return rate, copies, p95, floor, ids

            ours, copies, p95, floor, ids = asyncio.run(go())
        bare, bare_sizes = bare_rate(p12, passphrase, files, concurrency, args.rounds)
    finally:
        clear_bucket(env)
    size_of = {c["file_id"]: c["size"] for c in copies}
    overheads = [
        (size_of[file_id] - bare_size) / len(data) * 100
        for file_id, bare_size, data in zip(ids, bare_sizes, files, strict=True)
    ]
    overhead = sum(overheads) / len(overheads)
    print(
        f"  signing: {ours:.1f} copies/s through the API, {bare:.1f}/s bare pyHanko ({concurrency} at once); "
        f"QR adds {overhead:.2f}% of the original; verify p95 {p95:.1f} ms with 50 in flight",
        flush=True,
    )
    print(f"sign_copies_per_s={ours:.1f}")
    print(f"sign_bare_per_s={bare:.1f}")
    print(f"sign_ratio={ours / bare:.2f}")
    print(f"qr_overhead_pct={overhead:.2f}")
    print(f"verify_p95_ms={p95:.1f}")
    print(f"verify_floor_p95_ms={floor:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
