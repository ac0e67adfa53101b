"""The scanning station's client against a running warehouse: a folder of scans and its manifest,
bad rows reported all at once, an interrupted run resumed without duplicates, a slowly written file
taken once complete, 429 and 503 waited out."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import PASSWORD, Api, LiveServer, Subtree, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEADER = [
    "file",
    "kind",
    "dossier",
    "procedure_code",
    "subject_name",
    "subject_id_number",
    "result_number",
    "issued_on",
]


def client(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warehouse", "client", "--config", str(config), *args],
        env={**os.environ, "KHO_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_client(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "warehouse", "client", "--config", str(config), *args],
        env={**os.environ, "KHO_PASSWORD": PASSWORD},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def write_manifest(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        out.writerows(rows)


def scans(folder: Path, names: list[str], seed: int, pages: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).write_bytes(scanned_pdf(pages=pages, dpi=200, seed=seed + i))


async def signed_in(api: Api, server: LiveServer, tmp_path: Path, unit: str) -> tuple[Path, str]:
    login, _ = await api.account("operator", unit)
    config = tmp_path / "client.json"
    done = client(config, "login", "--host", server.url, "--login", login)
    assert done.returncode == 0, done.stdout + done.stderr
    assert login in done.stdout and unit in done.stdout, "login says who and where"
    assert oct(config.stat().st_mode & 0o777) == "0o600", "the sign-in is readable by its owner only"
    return config, login


async def files_of(api: Api, subject_id: str) -> dict[str, list[str]]:
    """{dossier code: [sha256 of each file]} of a subject, straight from the database."""
    rows = await api.db.pool.fetch(
        "SELECT d.code, f.sha256 FROM dossiers d JOIN files f ON f.dossier_id = d.id "
        "WHERE d.subject_id_number = $1 AND f.state <> 'deleted' ORDER BY d.code, f.sha256",
        subject_id,
    )
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["code"], []).append(r["sha256"])
    return out


async def count_files(api: Api, subjects: list[str]) -> int:
    return sum([len(v) for s in subjects for v in (await files_of(api, s)).values()])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_folder_is_sent_with_its_manifest_and_bad_rows_are_reported_first(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    unit = tree.commune(1)
    folder = tmp_path / "scans"
    scans(folder, ["don.pdf", "giay-chung-nhan.pdf", "to-khai.pdf"], seed=300)
    (folder / "ghi-chu.txt").write_text("not a scan")
    manifest = tmp_path / "bang-ke.csv"
    good = [
        ["don.pdf", "component", "HS1", "1.002891", "Lò Thị Hoa", "020190000301", "", ""],
        ["giay-chung-nhan.pdf", "kết quả", "HS1", "1.002891", "Lò Thị Hoa", "020190000301", "45/GCN", "15/03/2024"],
        ["to-khai.pdf", "", "", "1.000001", "Vi Văn Sáng", "020190000302", "", ""],
    ]
    bad = [
        ["mat-tich.pdf", "", "", "1.002891", "Nông Văn A", "020190000303", "", ""],
        ["ghi-chu.txt", "", "", "1.002891", "Nông Văn B", "020190000304", "", ""],
        ["don.pdf", "", "", "12345", "Nông Văn C", "0201900003", "", ""],
        ["to-khai.pdf", "result", "", "1.002891", "Nông Văn D", "020190000305", "", "31/02/2024"],
    ]
    write_manifest(manifest, good + bad)
    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, unit)

        done = client(config, "upload", str(folder), "--manifest", str(manifest))
        assert done.returncode == 2, done.stdout + done.stderr
        out = done.stdout
        for expected in (
            "row 5, file",  # missing file
            "row 6, file",  # not a PDF
            "row 7, file",  # the same file twice
            "row 7, procedure_code",
            "row 7, subject_id_number",
            "row 8, issued_on",  # 31/02 is no date
            "row 8, result_number",  # a result needs its number
        ):
            assert expected in out, (expected, out)
        assert "mat-tich.pdf" in out and "CCCD có 12 chữ số" in out, "every problem in Vietnamese and English"
        assert await files_of(api, "020190000301") == {}, "nothing was sent while the manifest is bad"

        write_manifest(manifest, good)
        results = tmp_path / "ket-qua.csv"
        done = client(config, "upload", str(folder), "--manifest", str(manifest), "--results", str(results))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3/3 files" in done.stdout and "MB/s" in done.stdout, "progress: files, bytes and rate"
        assert "Done: 3 đang kiểm tra/processing" in done.stdout, "the summary: sent, being inspected"
        sent = await files_of(api, "020190000301")
        assert len(sent) == 1 and sorted(next(iter(sent.values()))) == sorted(
            [digest(folder / "don.pdf"), digest(folder / "giay-chung-nhan.pdf")]
        ), "rows with the same dossier reference share one dossier"
        assert len(await files_of(api, "020190000302")) == 1

        await api.run_worker()
        done = client(config, "status", str(folder), "--results", str(results))
        assert done.returncode == 0, done.stdout + done.stderr
        with results.open(encoding="utf-8-sig") as f:
            rows = {r["file"]: r for r in csv.DictReader(f)}
        assert set(rows) == {"don.pdf", "giay-chung-nhan.pdf", "to-khai.pdf"}
        assert {r["state"] for r in rows.values()} == {"ready"}
        assert rows["don.pdf"]["dossier_code"] == next(iter(sent)) and unit in rows["don.pdf"]["dossier_code"]

        # A rerun sends nothing again.
        done = client(config, "upload", str(folder), "--manifest", str(manifest))
        assert done.returncode == 0
        assert await files_of(api, "020190000301") == sent


async def test_an_interrupted_run_resumes_without_duplicates(api: Api, tmp_path: Path, tree: Subtree) -> None:
    unit = tree.commune(1)
    folder = tmp_path / "scans"
    names = [f"ho-so-{i}.pdf" for i in range(6)]
    scans(folder, names, seed=400, pages=2)
    manifest = tmp_path / "bang-ke.csv"
    write_manifest(
        manifest,
        [
            [n, "", f"D{i // 2}", "1.002891", "Hoàng Thị Mai", f"0201900004{i // 2:02d}", "", ""]
            for i, n in enumerate(names)
        ],
    )
    subjects = [f"0201900004{k:02d}" for k in range(3)]
    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, unit)
        # Slow enough (1 MB/s, one at a time, parts of 5 MiB for files above 1 MB) to be killed midway.
        args = ["upload", str(folder), "--manifest", str(manifest), "--concurrency", "1", "--limit-mbps", "8"]
        args += ["--session-above-mb", "1"]
        run = start_client(config, *args)
        journal = folder / ".kho-so-hoa-journal.sqlite"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists():
                with sqlite3.connect(journal) as db:
                    if db.execute("SELECT count(*) FROM files WHERE state = 'sent'").fetchone()[0] >= 2:
                        break
            time.sleep(0.2)
        run.kill()  # as a power cut would
        run.wait(10)
        partial = await count_files(api, subjects)
        assert 2 <= partial < 6, f"killed midway: {partial} files had arrived"

        done = client(config, *args[:-4])  # the rerun: full speed
        assert done.returncode == 0, done.stdout + done.stderr
        for k, subject in enumerate(subjects):
            held = await files_of(api, subject)
            assert len(held) == 1, f"one dossier for {subject}, not {len(held)}"
            expected = sorted(digest(folder / names[2 * k + j]) for j in range(2))
            assert sorted(next(iter(held.values()))) == expected, "each file once"

        # Even with the journal lost, a rerun finds what is there and sends nothing twice.
        for leftover in folder.glob(".kho-so-hoa-journal.sqlite*"):
            leftover.unlink()
        done = client(config, *args[:-4])
        assert done.returncode == 0, done.stdout + done.stderr
        assert await count_files(api, subjects) == 6


async def test_watch_takes_a_file_once_it_stops_growing(api: Api, tmp_path: Path, tree: Subtree) -> None:
    unit = tree.commune(1)
    folder = tmp_path / "scans"
    folder.mkdir()
    manifest = tmp_path / "bang-ke.csv"
    write_manifest(manifest, [["cham.pdf", "", "", "1.002891", "Lương Văn Tú", "020190000501", "", ""]])
    data = scanned_pdf(pages=3, dpi=200, seed=501)
    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, unit)
        watcher = start_client(
            config, "watch", str(folder), "--manifest", str(manifest), "--interval", "0.3", "--settle", "1.5"
        )
        try:
            time.sleep(1.0)
            with (folder / "cham.pdf").open("wb") as f:  # the scanner writes it over three seconds
                for i in range(6):
                    f.write(data[i * len(data) // 6 : (i + 1) * len(data) // 6])
                    f.flush()
                    time.sleep(0.5)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not await files_of(api, "020190000501"):
                await asyncio.sleep(0.3)
        finally:
            watcher.send_signal(signal.SIGINT)
            out, _ = watcher.communicate(timeout=60)
        held = await files_of(api, "020190000501")
        assert list(held.values()) == [[hashlib.sha256(data).hexdigest()]], ("the whole file, once", out)
        assert watcher.returncode == 0, out
        assert "Watching" in out and "sent" in out


async def direct_sessions(api: Api, subjects: list[str]) -> int:
    """How many of the subjects' files arrived through a direct upload (straight to the store)."""
    count: int = await api.db.pool.fetchval(
        "SELECT count(*) FROM upload_sessions s JOIN dossiers d ON d.id = s.dossier_id "
        "WHERE s.mode = 'direct' AND s.state = 'completed' AND d.subject_id_number = ANY($1::text[])",
        subjects,
    )
    return count


async def test_files_go_straight_to_the_store_when_it_answers_and_through_the_warehouse_when_not(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    unit = tree.commune(1)

    def folder_of(tag: str, subject: str) -> tuple[Path, Path]:
        folder = tmp_path / tag
        names = [f"{tag}-{i}.pdf" for i in range(2)]
        scans(folder, names, seed=700 + len(tag))
        manifest = tmp_path / f"{tag}.csv"
        write_manifest(manifest, [[n, "", "D1", "1.002891", "Hà Văn Lâm", subject, "", ""] for n in names])
        return folder, manifest

    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, unit)
        folder, manifest = folder_of("thang", "020190000701")
        done = client(config, "upload", str(folder), "--manifest", str(manifest))
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(next(iter((await files_of(api, "020190000701")).values()))) == sorted(
            digest(p) for p in folder.glob("*.pdf")
        )
        assert await direct_sessions(api, ["020190000701"]) == 2, "both went straight to the store"

    # A store the station cannot reach (the warehouse gives an address only it can use): through the
    # warehouse, said once, nothing lost and no session left open.
    with LiveServer(WAREHOUSE_S3_PUBLIC_ENDPOINT=f"127.0.0.1:{free_port()}") as server:
        config, _ = await signed_in(api, server, tmp_path, unit)
        folder, manifest = folder_of("vong", "020190000702")
        done = client(config, "upload", str(folder), "--manifest", str(manifest))
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(next(iter((await files_of(api, "020190000702")).values()))) == 2
        assert await direct_sessions(api, ["020190000702"]) == 0
        assert (
            done.stdout.count("cannot be reached from this station")
            + done.stderr.count("cannot be reached from this station")
            == 1
        ), done.stdout + done.stderr
        left_open = await api.db.pool.fetchval(
            "SELECT count(*) FROM upload_sessions s JOIN dossiers d ON d.id = s.dossier_id "
            "WHERE d.subject_id_number = '020190000702' AND s.state = 'open'"
        )
        assert left_open == 0

        # Only straight to the store, when it cannot be reached: the files fail and say why.
        folder, manifest = folder_of("chi", "020190000703")
        done = client(config, "upload", str(folder), "--manifest", str(manifest), "--direct", "always")
        assert done.returncode != 0
        assert "object store cannot be reached" in done.stdout + done.stderr
        assert not await files_of(api, "020190000703")


@contextmanager
def flaky_proxy(target: str, failures: int) -> Iterator[tuple[str, list[int]]]:
    """A proxy that answers the first ``failures`` uploads with 503 and Retry-After: 1 (the warehouse
    in a restart), then passes everything through."""
    from aiohttp import ClientSession, web

    port = free_port()
    answered: list[int] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST" and request.path.endswith("/files") and failures > answered.count(503):
            answered.append(503)
            return web.json_response(
                {"code": "unavailable", "detail": "restarting"}, status=503, headers={"Retry-After": "1"}
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            ClientSession() as http,
            http.request(request.method, target + request.path_qs, data=body, headers=headers) as r,
        ):
            answered.append(r.status)
            out = web.Response(status=r.status, body=await r.read())
            for k in ("Content-Type", "Retry-After"):
                if k in r.headers:
                    out.headers[k] = r.headers[k]
            return out

    async def serve() -> web.AppRunner:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}", answered
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def test_429_and_503_are_waited_out(api: Api, tmp_path: Path, tree: Subtree) -> None:
    unit = tree.commune(1)
    folder = tmp_path / "scans"
    names = [f"t{i}.pdf" for i in range(4)]
    scans(folder, names, seed=600)
    manifest = tmp_path / "bang-ke.csv"
    write_manifest(
        manifest, [[n, "", "", "1.002891", "Nông Thị Vân", f"02019000060{i}", "", ""] for i, n in enumerate(names)]
    )
    # One request a second and one upload at a time per account: four clients' worth of requests get 429s.
    with LiveServer(WAREHOUSE_RATE_ACCOUNT_RPS="1", WAREHOUSE_RATE_ACCOUNT_UPLOADS="1") as server:
        with flaky_proxy(server.url, failures=2) as (url, answered):
            login, _ = await api.account("operator", unit)
            config = tmp_path / "client.json"
            assert client(config, "login", "--host", url, "--login", login).returncode == 0
            args = ["upload", str(folder), "--manifest", str(manifest), "--concurrency", "4", "--direct", "never"]
            done = client(config, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert answered.count(503) == 2 and 429 in answered, answered
        assert "503" in done.stdout and "429" in done.stdout, "the operator sees why it waits"
    for i in range(4):
        assert len(await files_of(api, f"02019000060{i}")) == 1


async def test_a_corrected_scan_after_a_rejection_goes_with_replace_and_status_writes_the_results(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    from tests.pdfs import javascript_pdf

    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, tree.commune(1))
        folder = tmp_path / "scans"
        folder.mkdir()
        (folder / "don.pdf").write_bytes(javascript_pdf())
        (folder / "to-khai.pdf").write_bytes(scanned_pdf(pages=1, dpi=150, seed=911))
        manifest = folder / "bang-ke.csv"
        write_manifest(
            manifest,
            [
                ["don.pdf", "component", "A", "1.002891", "Đinh Văn Sửa", "020190000911", "", ""],
                ["to-khai.pdf", "component", "A", "1.002891", "Đinh Văn Sửa", "020190000911", "", ""],
            ],
        )
        assert client(config, "upload", str(folder), "--manifest", str(manifest)).returncode == 0
        await api.run_worker()

        done = client(config, "status", str(folder))
        assert done.returncode == 0, done.stdout
        assert "1 sẵn sàng có cảnh báo/ready with warnings" in done.stdout, "a warning is not hidden in 'ready'"
        assert "1 bị từ chối/rejected" in done.stdout
        with (folder / "ket-qua.csv").open(encoding="utf-8-sig") as f:
            rows = {r["file"]: r for r in csv.DictReader(f)}
        assert rows["don.pdf"]["state"] == "rejected", "status writes the results CSV without being asked"

        (folder / "don.pdf").write_bytes(scanned_pdf(pages=1, dpi=200, seed=912))  # the corrected scan
        done = client(config, "upload", str(folder), "--manifest", str(manifest))
        assert done.returncode == 0 and "--replace" in done.stdout, "a changed file after a rejection: a hint"
        assert len(next(iter((await files_of(api, "020190000911")).values()))) == 2, "nothing sent without it"

        done = client(config, "upload", str(folder), "--manifest", str(manifest), "--replace")
        assert done.returncode == 0, done.stdout
        held = next(iter((await files_of(api, "020190000911")).values()))
        assert len(held) == 3 and digest(folder / "don.pdf") in held, "the corrected scan joins the dossier"
        await api.run_worker()
        assert client(config, "status", str(folder)).returncode == 0
        with (folder / "ket-qua.csv").open(encoding="utf-8-sig") as f:
            rows = {r["file"]: r for r in csv.DictReader(f)}
        assert rows["don.pdf"]["state"] == "ready"


async def test_owed_results_are_listed_and_filled_from_scans_named_by_dossier_code(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    from datetime import date, timedelta

    from tests.factories import auth

    unit = tree.commune(1)
    _, system = await api.account("one_stop", tree.district)
    key = (await api.client.post("/api/v1/api-keys", json={"label": "mc"}, headers=auth(system))).json()["key"]
    received = date.today() - timedelta(days=5)
    codes = [f"{unit}-{received:%y%m%d}-{n:04d}" for n in (1, 2)]
    returns = [
        {
            "dossier_code": code,
            "procedure_code": "1.001612",
            "unit_code": unit,
            "received_on": received.isoformat(),
            "returned_on": (received + timedelta(days=n)).isoformat(),
            "subject": {"name": f"Lộc Thị {n}", "id_kind": "cccd", "id_number": f"02019000090{n}"},
            "result": {"number": f"{n}/KS", "type_code": "KQ1"},
        }
        for n, code in enumerate(codes, start=1)
    ]
    r = await api.client.post("/api/v1/intake/returns", json=returns, headers={"X-API-Key": key})
    assert r.json()["created"] == 2, r.text
    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, unit)
        listing = tmp_path / "no.csv"
        done = client(config, "owed", "--csv", str(listing))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Results owed: 2" in done.stdout and all(c in done.stdout for c in codes)
        with listing.open(encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        assert [r["Tệp cần quét"] for r in rows] == [f"{c}.pdf" for c in codes], "the oldest first"

        folder = tmp_path / "owed"
        scans(folder, [f"{codes[0]}.pdf"], seed=900)
        done = client(config, "owed", "--fill", str(folder))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Sent 1 results; 1 have no scan" in done.stdout
    await api.run_worker()
    _, operator = await api.account("operator", unit)
    owed = (await api.client.get("/api/v1/owed", params={"unit": unit}, headers=auth(operator))).json()
    assert [i["code"] for i in owed["items"]] == [codes[1]]
    found = (await api.client.get("/api/v1/dossiers", params={"q": codes[0]}, headers=auth(operator))).json()
    dossier = (await api.client.get(f"/api/v1/dossiers/{found['items'][0]['id']}", headers=auth(operator))).json()
    assert [(f["kind"], f["part_code"], f["state"]) for f in dossier["files"]] == [("result", "KQ1", "ready")]


async def test_a_create_still_being_answered_is_sent_again_after_its_retry_after() -> None:
    """409 idempotency_in_progress (the first try cut off with the process answering it) is waited out
    like a 429, then the same request is sent again; another 409 is a refusal."""
    from aiohttp import web

    from warehouse.client.transport import Bandwidth, Refused, Transport

    seen: list[str] = []

    async def create(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Idempotency-Key", ""))
        if len(seen) <= 2:
            return web.json_response(
                {"code": "idempotency_in_progress", "detail": "still being answered"},
                status=409,
                headers={"Retry-After": "0"},
            )
        return web.json_response({"id": "d1"}, status=201)

    async def conflict(request: web.Request) -> web.Response:
        return web.json_response({"code": "dossier_exists", "detail": "exists"}, status=409)

    app = web.Application()
    app.router.add_post("/api/v1/dossiers", create)
    app.router.add_post("/api/v1/other", conflict)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    transport = Transport(f"http://127.0.0.1:{port}", {}, bandwidth=Bandwidth(0))
    try:
        r = await transport.request("POST", "/api/v1/dossiers", json={}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 201 and seen == ["k-1", "k-1", "k-1"]
        with pytest.raises(Refused, match="dossier_exists"):
            await transport.request("POST", "/api/v1/other", json={})
    finally:
        await transport.aclose()
        await runner.cleanup()
