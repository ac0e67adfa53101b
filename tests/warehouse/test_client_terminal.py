"""The station client as an operator meets it at a terminal (through a pseudo-terminal): the first
sign-in with a one-time password, the station's key, Ctrl-C, and a wrong address."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, LiveServer, Subtree, auth, free_port
from tests.warehouse.test_client import scans, write_manifest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def spawn(config: Path, *args: str, **env: str) -> pexpect.spawn:
    environment = {k: v for k, v in os.environ.items() if k not in ("KHO_PASSWORD", "KHO_NEW_PASSWORD")}
    return pexpect.spawn(
        sys.executable,
        ["-m", "warehouse", "client", "--config", str(config), *args],
        env={**environment, **env},
        encoding="utf-8",
        codec_errors="replace",  # the terminal's own ^C may land inside a character of the bars
        timeout=60,
        dimensions=(40, 120),
    )


def ended(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus if child.exitstatus is not None else -(child.signalstatus or 0), child.before or ""


async def test_an_operator_goes_from_a_one_time_password_to_a_finished_upload_without_leaving_the_client(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    unit = tree.commune(1)
    made = await api.client.post(
        "/api/v1/accounts",
        json={"login": "xa-moi.op1", "unit_code": unit, "role": "operator"},
        headers=auth(await api.admin()),
    )
    assert made.status_code == 201, made.text
    one_time = made.json()["password"]
    config = tmp_path / "client.json"
    with LiveServer() as server:
        child = spawn(config, "login", "--host", server.url, "--login", "xa-moi.op1")
        child.expect("Mật khẩu / Password: ")
        child.sendline(one_time)
        child.expect("choose a new one")
        child.expect("New password: ")
        child.sendline("mật-khẩu-mới-của-xã")
        child.expect("Repeat it: ")
        child.sendline("mat-khau-khac-han")
        child.expect("do not match")
        child.expect("New password: ")
        child.sendline("mật-khẩu-mới-của-xã")
        child.expect("Repeat it: ")
        child.sendline("mật-khẩu-mới-của-xã")
        status, out = ended(child)
        assert status == 0, out
        assert "Password changed" in out and "xa-moi.op1" in out and unit in out

        status, out = ended(spawn(config, "key"))
        assert status == 0 and "API key" in out, out
        kept = json.loads(config.read_text())
        assert kept["api_key"] and not kept["token"], "the station keeps its key, not the sign-in"

        folder = tmp_path / "scans"
        scans(folder, ["a.pdf"], seed=901)
        write_manifest(
            folder / "bang-ke.csv", [["a.pdf", "component", "", "1.002891", "Hà Văn Mới", "020190009901", "", ""]]
        )
        status, out = ended(spawn(config, "upload", str(folder), "--manifest", str(folder / "bang-ke.csv")))
        assert status == 0, out
    await api.login("xa-moi.op1", "mật-khẩu-mới-của-xã")


async def test_ctrl_c_during_an_upload_says_how_to_go_on_without_a_traceback(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    from tests.warehouse.test_client import signed_in

    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, tree.commune(1))
        folder = tmp_path / "scans"
        scans(folder, ["lon.pdf"], seed=902, pages=4)
        write_manifest(
            folder / "bang-ke.csv", [["lon.pdf", "component", "", "1.002891", "Lý Thị Dừng", "020190009902", "", ""]]
        )
        child = spawn(config, "upload", str(folder), "--manifest", str(folder / "bang-ke.csv"), "--limit-mbps", "0.2")
        time.sleep(4)  # well into sending, at 25 kB/s
        child.sendintr()
        status, out = ended(child)
    assert status == 130, out
    assert "Run the same command again" in out
    assert "Traceback" not in out


async def test_a_wrong_address_fails_at_once_with_what_to_check(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "client.json"
    started = time.monotonic()
    status, out = ended(spawn(config, "login", "--host", nobody, "--login", "xa01.op1", KHO_PASSWORD="x" * 12))
    assert status == 3 and "Check the --host address" in out, out
    config.write_text(json.dumps({"host": nobody, "api_key": "kho_not_used"}))
    status, out = ended(spawn(config, "whoami"))
    assert status == 3 and "cannot be reached" in out, out
    assert time.monotonic() - started < 20, "no hour of retries before the first clear error"


async def test_watch_on_a_terminal_keeps_one_pair_of_bars_and_tells_each_verdict_as_it_comes(
    api: Api, tmp_path: Path, tree: Subtree
) -> None:
    from tests.pdfs import javascript_pdf
    from tests.warehouse.test_client import files_of, signed_in

    folder = tmp_path / "scans"
    folder.mkdir()
    manifest = tmp_path / "bang-ke.csv"
    rows = [
        ["mot.pdf", "", "", "1.002891", "Vi Văn Theo", "020190000921", "", ""],
        ["hai.pdf", "", "", "1.002891", "Vi Văn Theo", "020190000921", "", ""],
    ]
    write_manifest(manifest, rows)
    with LiveServer() as server:
        config, _ = await signed_in(api, server, tmp_path, tree.commune(1))
        child = spawn(config, "watch", str(folder), "--manifest", str(manifest), "--interval", "0.3", "--settle", "1")
        child.expect("Watching")
        (folder / "mot.pdf").write_bytes(javascript_pdf())
        child.expect("1/1", timeout=30)
        (folder / "hai.pdf").write_bytes(scanned_pdf(pages=2, dpi=200, seed=921))
        (folder / "chua-co-dong.pdf").write_bytes(scanned_pdf(pages=1, dpi=200, seed=922))
        # The second batch joins the same bars; the file without its row is named (in either order).
        expected = ["2/2", "chua-co-dong.pdf: chờ dòng trong bảng kê"]
        seen: set[int] = set()
        while len(seen) < len(expected):
            seen.add(child.expect(expected, timeout=30))
        deadline = time.monotonic() + 30
        while sum(len(v) for v in (await files_of(api, "020190000921")).values()) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        await api.run_worker()
        child.expect("mot.pdf: bị từ chối/rejected", timeout=30)  # while still watching
        assert child.isalive()
        child.sendintr()
        status, out = ended(child)
    assert status == 0, out
    assert "bytes/s" not in out and "MB/s" in out, "rates in MB, not raw bytes"
    with (folder / "ket-qua.csv").open(encoding="utf-8-sig") as f:
        results = {r["file"]: r["state"] for r in csv.DictReader(f)}
    assert results == {"mot.pdf": "rejected", "hai.pdf": "ready", "chua-co-dong.pdf": "waiting"}
