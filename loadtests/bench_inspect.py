"""Inspection and OCR benchmark: pages per second through the worker against bare pypdf.

Run with ``make bench``. Uploads generated scans over HTTP with no worker running (each twice, as
distinct bytes), then starts one inspection worker process and reads, from each file's pipeline times,
when its inspection began and ended. Figures, one ``name=value`` line each:

- ``inspect_ratio``: pages per second through the inspection job (a limited child fetching the file from
  the object store and reading it: page facts, text, signatures, active content; the verdict; recording
  it) divided by bare pypdf opening the same files and extracting each page's text, in as many processes as
  the worker reads files at once (``WAREHOUSE_INSPECT_CHILDREN``), in the same run. Each process is
  handed the file's bytes, as the job's child is handed them by the store; the detail line also prints
  bare pypdf on the files already on local disk, which no job that keeps files in a store can match. Timed in steady
  state: from the first file begun after the first batch (which starts the worker's children) to the
  last one finished.
- ``inspect_ratio_fetched``: the same, divided by a raw S3 GET of the same bytes followed by bare pypdf
  (the floor for a job that must fetch the file from the store, as the upload ratio's floor is a raw PUT).
- ``inspect_real_ratio``: the same as ``inspect_ratio`` for text-heavy documents as office software
  exports them (20 pages of running text each, no images), against bare pypdf on the same files in the
  same run: the scans' figure says little about documents whose cost is the text.
- ``ocr_pages_per_s``: pages of a generated Vietnamese scan OCR'd per second by one OCR worker process
  (Tesseract ``vie`` through OCRmyPDF, one file at a time), measured inside the job.
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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

from loadtests.harness import (
    NO_LIMITS,
    MachineCpu,
    Warehouse,
    auth,
    bench_dossier,
    clear_bucket,
    free_port,
    machine_busy_seconds,
    prepare,
    s3_client,
    serving,
)
from loadtests.pdfgen import VIETNAMESE_LINES, scanned_pdf, text_document_pdf, vietnamese_scan_pdf
from loadtests.profile import sampling
from warehouse.client.transport import warehouse_http


def bare_pypdf(data: bytes) -> int:
    reader = PdfReader(io.BytesIO(data))
    for page in reader.pages:
        page.extract_text()
    return len(reader.pages)


def disk_pypdf(path: str) -> int:
    """Bare pypdf on a file in the page cache: what pypdf alone costs, with no bytes handed over."""
    with open(path, "rb") as fh:
        return bare_pypdf(fh.read())


def fetched_pypdf(env: dict[str, str], key: str) -> int:
    """A raw S3 GET of the file, then bare pypdf on the bytes: the least any inspection must do."""
    response = s3_client(env).get_object(bucket_name=env["WAREHOUSE_S3_BUCKET"], object_name=key)
    try:
        data = response.read()
    finally:
        response.close()
        response.release_conn()
    return bare_pypdf(data)


def pages_per_second(fn: Callable[..., int], args: list[Any], processes: int, rounds: int = 3) -> float:
    """Best of ``rounds``: pages per second of ``fn`` over ``args`` in ``processes`` processes."""
    return measured(fn, args, processes, rounds)[0]


def measured(fn: Callable[..., int], args: list[Any], processes: int, rounds: int = 3) -> tuple[float, float]:
    """Best of ``rounds``: pages per second of ``fn`` over ``args`` in ``processes`` processes, and the
    machine's CPU milliseconds per page in that round (every process: the store serving a GET too)."""
    best, cpu = 0.0, 0.0
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(fn, *zip(*args[:processes], strict=True)))  # warm the processes
        for _ in range(rounds):
            started, busy = time.perf_counter(), machine_busy_seconds()
            pages = sum(pool.map(fn, *zip(*args, strict=True)))
            rate = pages / (time.perf_counter() - started)
            if rate > best:
                best, cpu = rate, (machine_busy_seconds() - busy) * 1000 / pages
    return best, cpu


def raw_keys(env: dict[str, str], files: list[bytes]) -> list[str]:
    """The same bytes stored under keys of their own, for the raw GET baseline."""
    s3 = s3_client(env)
    keys = [f"raw/inspect/{i}" for i in range(len(files))]
    for key, data in zip(keys, files, strict=True):
        s3.put_object(bucket_name=env["WAREHOUSE_S3_BUCKET"], object_name=key, data=io.BytesIO(data), length=len(data))
    return keys


async def upload_all(server: Warehouse, files: list[bytes]) -> tuple[str, list[str]]:
    async with warehouse_http(base_url=server.url, timeout=60) as http:
        token, dossier_id = await bench_dossier(http, server.admin_password)
        ids = []
        for data in files:
            up = await http.post(
                f"/api/v1/dossiers/{dossier_id}/files",
                content=data,
                headers=auth(token, **{"Content-Type": "application/pdf", "X-File-Kind": "component"}),
            )
            up.raise_for_status()
            ids.append(up.json()["id"])
        return token, ids


async def wait_for(
    server: Warehouse,
    token: str,
    ids: list[str],
    within: float,
    waiting: tuple[str, ...] = ("queued", "inspecting", "ocr"),
) -> list[Any]:
    """Wait until no file is at a ``waiting`` stage (one cheap status call a second), then read them."""
    deadline = time.monotonic() + within
    async with warehouse_http(base_url=server.url, timeout=60) as http:
        while True:
            stages = (await http.get("/api/v1/pipeline", headers=auth(token))).json()["stages"]
            if not any(stages.get(s) for s in waiting):
                return [(await http.get(f"/api/v1/files/{i}", headers=auth(token))).json() for i in ids]
            if time.monotonic() > deadline:
                raise RuntimeError(f"files still in the pipeline after {within:.0f}s: {stages}")
            await asyncio.sleep(1)


def start_worker(env: dict[str, str], *, ocr: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *(["--ocr"] if ocr else [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()


def time_inspection(
    server: Warehouse, env: dict[str, str], files: list[bytes], jobs: int, profile: Path | None = None
) -> tuple[int, float, float, str, list[str]]:
    """Upload ``files`` with no worker running, then let one worker inspect them: the pages timed, the
    job's pages per second in steady state (from the first file begun after the first batch to the
    last one finished), the machine's CPU milliseconds per page in that stretch (the worker, its
    children, Postgres, Redis, the store, the API), and the token and ids for what follows. With
    ``profile`` (a path without suffix) the worker and its children are sampled meanwhile."""
    token, ids = asyncio.run(upload_all(server, files))
    worker = start_worker(env, ocr=False)
    try:
        with sampling(worker.pid, profile), MachineCpu() as cpu:
            done = asyncio.run(wait_for(server, token, ids, 600, waiting=("queued", "inspecting")))
    finally:
        stop(worker)
    bad = [f["state"] for f in done if f["state"] != "ready"]
    if bad:
        raise RuntimeError(f"{len(bad)} generated files were not ready")
    timed = sorted(done, key=lambda f: f["pipeline"]["times"]["inspecting"])
    warm = max(datetime.fromisoformat(f["inspected_at"]) for f in timed[:jobs])
    # (a run too short to have files begun after the first batch is timed whole)
    timed = [f for f in timed if datetime.fromisoformat(f["pipeline"]["times"]["inspecting"]) >= warm] or timed
    begun = min(datetime.fromisoformat(f["pipeline"]["times"]["inspecting"]) for f in timed)
    ended = max(datetime.fromisoformat(f["inspected_at"]) for f in timed)
    pages = sum(f["pages"] or 0 for f in timed)
    busy = cpu.busy_between(begun.timestamp(), ended.timestamp())
    return pages, pages / (ended - begun).total_seconds(), busy * 1000 / pages, token, ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=160, help="scans (5 pages each) generated")
    parser.add_argument(
        "--copies", type=int, default=4, help="times each scan is uploaded (a comment after %%%%EOF makes it new bytes)"
    )
    parser.add_argument("--ocr-files", type=int, default=3, help="one-page Vietnamese scans OCR'd")
    parser.add_argument("--documents", type=int, default=60, help="text documents (20 pages each) generated")
    parser.add_argument("--profile", type=Path, help="record a flame graph of the worker (scans) into this folder")
    args = parser.parse_args()

    # OCR on, as in production: inspection leaves the pixels (blank pages) to the OCR stage, whose
    # worker is not running while inspection is timed.
    env, password = prepare("bench_inspect", **NO_LIMITS, WAREHOUSE_OCR_ENABLED="true")
    jobs = int(env.get("WAREHOUSE_INSPECT_CHILDREN", "4"))  # the worker's default
    print("generating scans (5 pages, colour, 200 dpi) ...", flush=True)
    scans = [scanned_pdf(pages=5, dpi=200, seed=s) for s in range(args.files)]
    # Generating a scan takes longer than inspecting it: copies made distinct by a trailing comment
    # (new bytes, so a new object the job must fetch) give a longer, steadier timed stretch.
    files = [scan + f"\n% copy {c}\n".encode() for c in range(args.copies) for scan in scans]
    try:
        with serving(env, password) as server:
            pages, job_rate, job_cpu, token, ids = time_inspection(
                server, env, files, jobs, args.profile / "inspect" if args.profile else None
            )
            bare_rate = pages_per_second(bare_pypdf, [(f,) for f in files], jobs)
            with tempfile.TemporaryDirectory(prefix="bench-inspect-") as tmp:
                paths = [os.path.join(tmp, f"{i}.pdf") for i in range(len(files))]
                for path, data in zip(paths, files, strict=True):
                    with open(path, "wb") as fh:
                        fh.write(data)
                disk_rate = pages_per_second(disk_pypdf, [(p,) for p in paths], jobs)
            keys = raw_keys(env, files)
            fetched_rate, fetched_cpu = measured(fetched_pypdf, [(env, k) for k in keys], jobs)
            print(
                f"  inspection job: {pages} pages at {job_rate:.0f} pages/s "
                f"({jobs} at once); bare pypdf: {bare_rate:.0f} pages/s, raw S3 GET + bare pypdf: "
                f"{fetched_rate:.0f} pages/s, in {jobs} processes (bare pypdf on files already on local disk: "
                f"{disk_rate:.0f} pages/s)",
                flush=True,
            )
            print(
                f"  machine CPU per page: {job_cpu:.2f} ms through the job (worker, children, Postgres, Redis, "
                f"store, API), {fetched_cpu:.2f} ms for a raw S3 GET + bare pypdf",
                flush=True,
            )
            documents = [text_document_pdf(20, seed=s) for s in range(args.documents)]
            doc_pages, doc_rate, _, _, doc_ids = time_inspection(server, env, documents, jobs)
            doc_bare = pages_per_second(bare_pypdf, [(d,) for d in documents], jobs)
            print(
                f"  text documents: {doc_pages} pages at {doc_rate:.0f} pages/s through the job; bare pypdf "
                f"{doc_bare:.0f} pages/s in {jobs} processes",
                flush=True,
            )
            ids += doc_ids
            ocr_env = env
            with httpx.Client(base_url=server.url, timeout=60) as http:  # the scans' OCR is not timed here
                for file_id in ids:
                    http.delete(f"/api/v1/files/{file_id}", headers=auth(token))
            scans = [vietnamese_scan_pdf(VIETNAMESE_LINES) for _ in range(args.ocr_files)]
            with serving(ocr_env, password, WAREHOUSE_PORT=str(free_port())) as ocr_server:
                token, ocr_ids = asyncio.run(upload_all(ocr_server, scans))
                workers = [start_worker(ocr_env, ocr=False), start_worker(ocr_env, ocr=True)]
                try:
                    ocred = asyncio.run(wait_for(ocr_server, token, ocr_ids, 900))
                finally:
                    for w in workers:
                        stop(w)
            seconds = sum(f["inspection"]["ocr"]["seconds"] for f in ocred)
            ocr_pages = sum(len(f["inspection"]["ocr"]["pages"]) for f in ocred)
            print(f"  OCR: {ocr_pages} pages in {seconds:.1f}s of one OCR worker", flush=True)
    finally:
        clear_bucket(env)
    print(f"inspect_ratio={job_rate / bare_rate:.2f}")
    print(f"inspect_ratio_fetched={job_rate / fetched_rate:.2f}")
    print(f"inspect_cpu_ms_per_page={job_cpu:.2f}")
    print(f"inspect_cpu_ratio_fetched={fetched_cpu / job_cpu:.2f}")
    print(f"inspect_real_ratio={doc_rate / doc_bare:.2f}")
    print(f"ocr_pages_per_s={ocr_pages / seconds:.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
