"""Upload benchmark: files per second through the API against raw S3 PUT of the same bytes.

Run with ``make bench``. It prepares its own database, Redis database and bucket, starts the API as
a separate process (through the ``warehouse`` command, over HTTP only), and ends with one
``name=value`` line per figure:

- ``upload_ratio_c1``, ``upload_ratio_c8``: API uploads per second divided by raw S3 PUTs per second
  of the same generated scans (about 3 MB, 5 pages, colour, 200 dpi) from as many concurrent clients.
- ``upload_ratio_direct_c1``, ``upload_ratio_direct_c8``: uploads per second in direct mode (an upload
  session whose presigned POST sends the file straight to the store, then completed through the API,
  which checks its size and SHA-256 and records it) over raw S3 PUTs per second of the same bytes.
- ``upload_direct_floor_c1``, ``upload_direct_floor_c8``: the store's own presigned POST of the same
  bytes (pinned to their SHA-256, no API) over raw PUT: what direct mode could reach on this store.
- ``upload_ratio_direct_post_c1``, ``upload_ratio_direct_post_c8``: direct mode over that POST floor.
- ``api_peak_rss_mb``: the API process's peak resident memory while one 1 GiB body streams through it.

With ``--profile DIR`` a sampling profiler records the API during the 8-client uploads through it
and in direct mode (``DIR/upload.svg``, ``DIR/direct.svg`` and their ``.txt``; see ``loadtests.profile``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from minio import Minio
from minio.datatypes import PostPolicy

from loadtests.harness import (
    NO_LIMITS,
    MiB,
    Warehouse,
    auth,
    bench_dossier,
    clear_bucket,
    cpu_seconds,
    prepare,
    process_tree,
    s3_client,
    serving,
)
from loadtests.pdfgen import scanned_pdf
from loadtests.profile import sampling
from warehouse.client.transport import warehouse_http

# Uploads go through the fair-share limits like everyone's; the benchmark measures the path, not them.
UNLIMITED = {**NO_LIMITS, "WAREHOUSE_MAX_FILE_BYTES": str(2 * 1024 * MiB)}


@dataclass
class Target:
    api: str
    store: str  # the bucket's URL, where presigned POSTs go
    token: str
    dossier_id: str


def _rss_mb(pid: int, field: str) -> float:
    """The largest value of a /proc status field (VmRSS, VmHWM) among the API's processes, in MiB."""
    best = 0.0
    for p in process_tree(pid):
        with open(f"/proc/{p}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    best = max(best, int(line.split()[1]) / 1024)
    return best


async def _throughput(
    clients: int, count: int, send: Callable[[httpx.AsyncClient, int], Coroutine[Any, Any, None]]
) -> float:
    """Operations per second with ``clients`` concurrent senders doing ``count`` operations in all."""
    counter = iter(range(count))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with warehouse_http(timeout=120, limits=limits) as http:

        async def loop() -> None:
            for i in counter:
                await send(http, i)

        await send(http, -1)  # warm the connection and the server's caches
        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return count / (time.perf_counter() - started)


async def bench_ratio(
    target: Target,
    s3: Minio,
    bucket: str,
    files: list[bytes],
    clients: int,
    count: int,
    *,
    pid: int = 0,
    profile: Path | None = None,
) -> tuple[float, float, float]:
    """(through the API, direct to the store, the store's own POST) over raw PUT, with ``clients``
    concurrent clients."""
    headers = auth(target.token, **{"Content-Type": "application/pdf", "X-File-Kind": "component"})

    # Each upload is a scan of its own (a comment after the end marker makes its bytes unique), as at a
    # station: the same bytes again would be found already held and measure the dedupe instead.
    def body(n: int) -> bytes:
        return files[n % len(files)] + b"\n%% upload %d %d\n" % (clients, n)

    digests = {n: hashlib.sha256(body(n)).hexdigest() for n in range(count, 2 * count + 1)}  # direct's

    async def api_upload(http: httpx.AsyncClient, i: int) -> None:
        r = await http.post(
            f"{target.api}/api/v1/dossiers/{target.dossier_id}/files", content=body(i + 1), headers=headers
        )
        r.raise_for_status()

    # The floor: the same bytes PUT straight to the object store, signed URLs sent by the same HTTP client.
    urls = [
        s3.presigned_put_object(bucket_name=bucket, object_name=f"raw/{clients}/{i}", expires=timedelta(hours=1))
        for i in range(-1, count)
    ]

    async def raw_put(http: httpx.AsyncClient, i: int) -> None:
        r = await http.put(urls[i + 1], content=body(i + 1))
        r.raise_for_status()

    async def direct_upload(http: httpx.AsyncClient, i: int) -> None:
        data = body(count + i + 1)
        r = await http.post(
            f"{target.api}/api/v1/uploads",
            json={
                "dossier_id": target.dossier_id,
                "filename": f"direct-{i}.pdf",
                "kind": "component",
                "size": len(data),
                "sha256": digests[count + i + 1],
                "mode": "direct",
            },
            headers=auth(target.token),
        )
        r.raise_for_status()
        session = r.json()
        sent = await http.post(
            session["direct"]["url"],
            data=session["direct"]["fields"],
            files={"file": ("scan.pdf", data, "application/pdf")},
        )
        sent.raise_for_status()
        r = await http.post(f"{target.api}/api/v1/uploads/{session['id']}/complete", headers=auth(target.token))
        r.raise_for_status()

    # The direct floor: the same bytes POSTed to the store under a policy pinned to their SHA-256, as
    # the warehouse's policies are, by the same HTTP client, without the API.
    def pinned_post(n: int) -> dict[str, str]:
        data = body(n)
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        key = f"raw-post/{clients}/{n}"
        policy = PostPolicy(bucket, datetime.now(UTC) + timedelta(hours=1))
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(len(data), len(data))
        pinned = {"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum}
        for name, value in pinned.items():
            policy.add_equals_condition(name, value)
        return {**s3.presigned_post_policy(policy), **pinned, "key": key}

    posts = {n: pinned_post(n) for n in range(2 * count + 1, 3 * count + 2)}

    async def raw_post(http: httpx.AsyncClient, i: int) -> None:
        n = 2 * count + i + 2
        r = await http.post(target.store, data=posts[n], files={"file": ("scan.pdf", body(n), "application/pdf")})
        r.raise_for_status()

    raw = await _throughput(clients, count, raw_put)
    post = await _throughput(clients, count, raw_post)
    with sampling(pid, profile / "upload" if profile else None):
        before = cpu_seconds(pid)
        api = await _throughput(clients, count, api_upload)
        api_cpu = (cpu_seconds(pid) - before) * 1000 / (count + 1)
    with sampling(pid, profile / "direct" if profile else None):
        before = cpu_seconds(pid)
        direct = await _throughput(clients, count, direct_upload)
        direct_cpu = (cpu_seconds(pid) - before) * 1000 / (count + 1)
    print(
        f"  c={clients}: API CPU per upload {api_cpu:.1f} ms through it, {direct_cpu:.1f} ms for a direct one",
        flush=True,
    )
    print(
        f"  c={clients}: api {api:.1f} files/s, direct {direct:.1f} files/s, raw S3 PUT {raw:.1f} files/s, "
        f"raw S3 POST {post:.1f} files/s",
        flush=True,
    )
    return api / raw, direct / raw, post / raw


async def bench_memory(target: Target, pid: int, gib: float) -> tuple[float, float]:
    total = max(2, round(gib * 1024)) * MiB
    first = b"%PDF-1.4\n" + b"0" * (MiB - 9)
    filler = b"1" * MiB

    async def body() -> AsyncIterator[bytes]:
        yield first
        for _ in range(total // MiB - 1):
            yield filler

    idle = _rss_mb(pid, "VmRSS")
    async with warehouse_http(timeout=600) as http:
        r = await http.post(
            f"{target.api}/api/v1/dossiers/{target.dossier_id}/files",
            content=body(),
            headers=auth(
                target.token,
                **{"Content-Type": "application/pdf", "X-File-Kind": "component", "Content-Length": str(total)},
            ),
        )
        r.raise_for_status()
        assert r.json()["size"] == total
    return idle, _rss_mb(pid, "VmHWM")


async def _target(server: Warehouse, env: dict[str, str]) -> Target:
    async with warehouse_http(base_url=server.url, timeout=30) as http:
        token, dossier_id = await bench_dossier(http, server.admin_password)
    scheme = "https" if env.get("WAREHOUSE_S3_SECURE", "false").lower() == "true" else "http"
    store = f"{scheme}://{env.get('WAREHOUSE_S3_ENDPOINT', '127.0.0.1:8333')}/{env['WAREHOUSE_S3_BUCKET']}"
    return Target(api=server.url, store=store, token=token, dossier_id=dossier_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=48, help="uploads per concurrency level")
    parser.add_argument("--memory-gib", type=float, default=1.0, help="size of the streamed body for RSS")
    parser.add_argument("--profile", type=Path, help="record a flame graph of the API into this folder")
    args = parser.parse_args()

    env, password = prepare("bench", **UNLIMITED)
    bucket = env["WAREHOUSE_S3_BUCKET"]
    s3 = s3_client(env)
    print("generating scans (5 pages, colour, 200 dpi) ...", flush=True)
    files = [scanned_pdf(pages=5, dpi=200, seed=s) for s in range(4)]
    print(f"  {len(files)} files, {sum(map(len, files)) / len(files) / MiB:.2f} MiB on average", flush=True)
    try:
        with serving(env, password) as server:
            target = asyncio.run(_target(server, env))
            ratios = {
                clients: asyncio.run(
                    bench_ratio(
                        target,
                        s3,
                        bucket,
                        files,
                        clients,
                        args.count,
                        pid=server.pid,
                        profile=args.profile if clients == 8 else None,
                    )
                )
                for clients in (1, 8)
            }
            idle, peak = asyncio.run(bench_memory(target, server.pid, args.memory_gib))
            print(
                f"  API resident memory: {idle:.0f} MiB idle, {peak:.0f} MiB peak with a "
                f"{args.memory_gib:g} GiB body streaming through",
                flush=True,
            )
    finally:
        clear_bucket(env)
    print(f"upload_ratio_c1={ratios[1][0]:.2f}")
    print(f"upload_ratio_c8={ratios[8][0]:.2f}")
    print(f"upload_ratio_direct_c1={ratios[1][1]:.2f}")
    print(f"upload_ratio_direct_c8={ratios[8][1]:.2f}")
    for clients in (1, 8):
        print(f"upload_direct_floor_c{clients}={ratios[clients][2]:.2f}")
    for clients in (1, 8):
        print(f"upload_ratio_direct_post_c{clients}={ratios[clients][1] / ratios[clients][2]:.2f}")
    print(f"api_peak_rss_mb={peak:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
