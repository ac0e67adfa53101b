"""`warehouse client ...`: the scanning station's commands.

    warehouse client login --host https://kho.example.vn --login 000.03.22.hxx-op01    # asks for the password
    warehouse client login --host https://kho.example.vn --api-key <key>      # or keeps an API key
    warehouse client key                                                      # this station's own API key
    warehouse client whoami
    warehouse client sample bang-ke.xlsx                                      # a sample manifest to fill in
    warehouse client upload FOLDER --manifest bang-ke.xlsx [--results ket-qua.csv]
    warehouse client watch FOLDER --manifest bang-ke.csv       # sends new scans as the scanner drops them
    warehouse client status FOLDER [--results ket-qua.csv]     # queued, sent, ready or rejected, and why
    warehouse client owed [--unit CODE] [--csv no.csv]         # results returned by the desks, still owed
    warehouse client owed --fill FOLDER     # sends each owed result scanned as <dossier code>.pdf

Exit codes: 0 all sent (or nothing to do), 1 some files failed, 2 the manifest has bad rows (nothing
was sent), 3 not signed in or the warehouse cannot be reached, 130 stopped with Ctrl-C (run the same
command again to go on).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import getpass
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from warehouse.client import config as cfg
from warehouse.client.journal import NAME as JOURNAL_NAME
from warehouse.client.journal import Journal
from warehouse.client.manifest import Entry, validate, write_sample
from warehouse.client.transport import Bandwidth, Refused, Transport, Unreachable
from warehouse.client.uploader import (
    Options,
    Progress,
    Uploader,
    changed_after_sending,
    summary,
    verdict_line,
    write_results,
)

MiB = 1024 * 1024
VERDICT_EVERY = 5.0  # seconds between asking the warehouse about files sent, while watching


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warehouse client", description="Kho số hóa: the scanning station's client")
    parser.add_argument("--config", help="the config file (default ~/.config/kho-so-hoa/client.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", help="sign in to a warehouse and keep the sign-in in the config file")
    login.add_argument("--host", required=True, help="the warehouse's address, e.g. https://kho.langson.gov.vn")
    login.add_argument("--login", help="your login (the password is asked for, or read from KHO_PASSWORD)")
    login.add_argument("--api-key", help="keep this API key instead of signing in (for unattended stations)")
    key = sub.add_parser("key", help="create this station's API key and keep it instead of the sign-in")
    key.add_argument("--label", help="how the key is listed (default: station <this computer's name>)")
    sub.add_parser("whoami", help="who the config file signs in as")
    sample = sub.add_parser("sample", help="write a sample manifest (Vietnamese headers) to fill in")
    sample.add_argument("file", type=Path, help="bang-ke.csv or bang-ke.xlsx")

    def sending(p: argparse.ArgumentParser) -> None:
        p.add_argument("folder", type=Path)
        p.add_argument("--manifest", type=Path, required=True, help="CSV or XLSX: one row per file")
        p.add_argument("--concurrency", type=int, default=2, help="files sent at once (default 2)")
        p.add_argument("--limit-mbps", type=float, default=0, help="bandwidth limit in megabits per second")
        p.add_argument("--results", type=Path, help="write the results CSV here (default FOLDER/ket-qua.csv)")
        p.add_argument(
            "--session-above-mb", type=float, default=16, help="files larger than this go in resumable parts"
        )
        p.add_argument(
            "--direct",
            choices=("auto", "always", "never"),
            default="auto",
            help="send files straight to the object store when it answers from here (auto, the default), "
            "only so (always), or always through the warehouse (never)",
        )
        p.add_argument(
            "--replace",
            action="store_true",
            help="send files changed since they were sent (a corrected scan after a rejection) as new files",
        )
        p.add_argument(
            "--patience-minutes",
            type=float,
            default=60,
            help="how long to keep waiting out a busy warehouse or a dropped link before a file fails",
        )

    sending(sub.add_parser("upload", help="send every file of the manifest (again: only what is missing)"))
    watch = sub.add_parser("watch", help="send new files as the scanner writes them, until stopped")
    sending(watch)
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the folder")
    watch.add_argument("--settle", type=float, default=5.0, help="a file is taken once unchanged this long")
    owed = sub.add_parser(
        "owed", help="results the one-stop desks returned that are still owed; --fill sends the scans of them"
    )
    owed.add_argument("--unit", help="a unit code (default: every unit this account sees)")
    owed.add_argument("--csv", type=Path, help="write the work list to this CSV as well")
    owed.add_argument(
        "--fill", type=Path, help="a folder of scans named <dossier code>.pdf: each owed result found is sent"
    )
    owed.add_argument("--concurrency", type=int, default=2, help="files sent at once (default 2)")
    owed.add_argument("--limit-mbps", type=float, default=0, help="bandwidth limit in megabits per second")
    owed.add_argument("--patience-minutes", type=float, default=60, help="how long to wait out a busy warehouse")
    status = sub.add_parser("status", help="what is queued, sent, ready or rejected, with the reasons")
    status.add_argument("folder", type=Path)
    status.add_argument("--results", type=Path, help="write the results CSV here (default FOLDER/ket-qua.csv)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = cfg.config_path(args.config)
    try:
        if args.command == "login":
            return _login(path, args)
        if args.command == "sample":
            if args.file.exists():
                print(f"{args.file} đã có, không ghi đè / {args.file} exists; not overwritten")
                return 2
            write_sample(args.file)
            print(f"Đã ghi bảng kê mẫu / Sample manifest written: {args.file}")
            return 0
        config = cfg.load(path)
        if not config.host or not config.headers():
            print("Chưa đăng nhập: chạy `warehouse client login` / Not signed in: run `warehouse client login`.")
            return 3
        if args.command == "whoami":
            return asyncio.run(_whoami(config))
        if args.command == "key":
            return _key(path, config, args)
        if args.command == "status":
            return asyncio.run(_status(config, args))
        if args.command == "owed":
            return asyncio.run(_owed(config, args))
        if not args.folder.is_dir():
            print(f"Không có thư mục {args.folder} / No folder {args.folder}")
            return 2
        return asyncio.run(_send(config, args, watch=args.command == "watch"))
    except KeyboardInterrupt:
        print(
            "\nĐã dừng. Chạy lại đúng lệnh này để gửi tiếp phần còn lại / "
            "Stopped. Run the same command again to send the rest."
        )
        return 130
    except Unreachable as exc:
        print(f"Không kết nối được kho / The warehouse cannot be reached: {exc}")
        return 3
    except Refused as exc:
        if exc.status == 401:
            print(
                "Phiên đăng nhập hết hạn: chạy lại `warehouse client login` / Sign in again: `warehouse client login`."
            )
            return 3
        print(f"Kho từ chối / The warehouse refused: {exc}")
        return 1


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail") or r.text[:300])
    except ValueError:
        return r.text[:300]


def _first_contact(host: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request to a warehouse not reached before: a wrong address or a stopped server fails at once,
    with what to check, instead of being waited out."""
    try:
        return httpx.request(method, f"{host}{path}", timeout=30, **kwargs)
    except httpx.TransportError as exc:
        raise Unreachable(f"{host}: {exc}. Kiểm tra địa chỉ --host / Check the --host address.") from exc


def _ask_new_password(host: str, token: str, current: str) -> str | None:
    """The first sign-in with a one-time password: ask for the new one here and set it. The new token,
    or None when the operator gave up."""
    print(
        "Mật khẩu này chỉ dùng một lần: hãy đặt mật khẩu mới (ít nhất 10 ký tự) / "
        "This password was for one use: choose a new one (at least 10 characters)."
    )
    for _ in range(3):
        new = os.environ.get("KHO_NEW_PASSWORD") or getpass.getpass("Mật khẩu mới / New password: ")
        if not os.environ.get("KHO_NEW_PASSWORD"):
            again = getpass.getpass("Nhập lại / Repeat it: ")
            if again != new:
                print("Hai lần nhập không khớp / The two do not match.")
                continue
        r = _first_contact(
            host,
            "POST",
            "/api/v1/me/password",
            json={"current_password": current, "new_password": new},
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code == 200:
            print("Đã đổi mật khẩu / Password changed.")
            return str(r.json()["access_token"])
        print(f"Chưa đổi được / Not changed: {_detail(r)}")
        if os.environ.get("KHO_NEW_PASSWORD"):
            break
    return None


def _login(path: Path, args: argparse.Namespace) -> int:
    config = cfg.load(path)
    config.host = args.host.rstrip("/")
    if args.api_key:
        config.api_key, config.token, config.login = args.api_key, "", ""
    else:
        if not args.login:
            print("Cho biết --login hoặc --api-key / Give --login or --api-key.")
            return 2
        password = os.environ.get("KHO_PASSWORD") or getpass.getpass("Mật khẩu / Password: ")
        r = _first_contact(config.host, "POST", "/api/v1/auth/login", json={"login": args.login, "password": password})
        if r.status_code != 200:
            print(f"Đăng nhập không được / Sign-in failed: {_detail(r)}")
            return 3
        token = str(r.json()["access_token"])
        if r.json().get("password_change_required"):
            changed = _ask_new_password(config.host, token, password)
            if changed is None:
                print("Chưa đổi mật khẩu, chưa lưu đăng nhập / The password was not changed; nothing was kept.")
                return 3
            token = changed
        config.token, config.login, config.api_key = token, args.login, ""
    cfg.save(path, config)
    return asyncio.run(_whoami(config))


def _key(path: Path, config: cfg.ClientConfig, args: argparse.Namespace) -> int:
    """Create an API key for this station with the signed-in account and keep it instead of the token
    (a key does not expire as a sign-in does; an administrator can revoke it)."""
    if config.api_key and not config.token:
        print("Máy này đã dùng khóa API / This station already uses an API key.")
        return 0
    label = args.label or f"station {socket.gethostname()}"[:100]
    r = _first_contact(config.host, "POST", "/api/v1/api-keys", json={"label": label}, headers=config.headers())
    if r.status_code != 201:
        print(f"Không tạo được khóa / No key was created: {_detail(r)}")
        return 3
    config.api_key, config.token = str(r.json()["key"]), ""
    cfg.save(path, config)
    print(f"Đã tạo và lưu khóa API '{label}' / API key '{label}' created and kept in {path}")
    return asyncio.run(_whoami(config))


async def _whoami(config: cfg.ClientConfig) -> int:
    t = Transport(config.host, config.headers(), bandwidth=Bandwidth(0), patience=30)
    try:
        me = (await t.request("GET", "/api/v1/me")).json()
    finally:
        await t.aclose()
    unit = me.get("unit") or {}
    print(f"{me.get('login')} ({me.get('role')}) — {unit.get('code')} {unit.get('name')} — {config.host}")
    return 0


def _transport(config: cfg.ClientConfig, args: argparse.Namespace) -> Transport:
    return Transport(
        config.host,
        config.headers(),
        bandwidth=Bandwidth(args.limit_mbps * 1_000_000 / 8),
        patience=args.patience_minutes * 60,
    )


async def _send(config: cfg.ClientConfig, args: argparse.Namespace, *, watch: bool) -> int:
    folder: Path = args.folder
    entries: list[Entry] = []
    if not watch:  # watch checks the manifest on each look at the folder
        entries, problems = validate(folder, args.manifest)
        if problems:
            print(f"Bảng kê có {len(problems)} lỗi, chưa gửi gì / The manifest has {len(problems)} problems;", end=" ")
            print("nothing was sent:")
            for p in problems:
                print("  " + p.line())
            return 2
    journal = Journal(folder)
    transport = _transport(config, args)
    options = Options(
        concurrency=max(1, args.concurrency),
        session_above=int(args.session_above_mb * MiB),
        replace=args.replace,
        direct=args.direct,
    )
    uploader = Uploader(transport, journal, options)
    results = args.results or folder / "ket-qua.csv"
    failed = False
    waiting: list[str] = []
    try:
        if watch:
            with Progress(0, 0) as progress:
                waiting = await _watch(uploader, folder, args, progress)
        else:
            outcome = await uploader.send_all(entries)
            failed = any(s == "failed" for s in outcome.values())
        await uploader.refresh()
        write_results(journal, results, waiting)
        ended = "Dừng / Stopped" if watch else "Xong / Done"
        print(f"{ended}: {summary(journal)}. Kết quả / Results: {results}")
    finally:
        await transport.aclose()
        journal.close()
    return 1 if failed else 0


OWED_PAGES = 40  # 20,000 owed results at most in one listing


async def owed_items(transport: Transport, unit: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(OWED_PAGES):
        params = {"limit": "500", **({"unit": unit} if unit else {}), **({"cursor": cursor} if cursor else {})}
        page = (await transport.request("GET", "/api/v1/owed", params=params)).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items


def _missing_text(item: dict[str, Any]) -> str:
    return "; ".join(f"{m['code']} {m.get('name') or ''}".strip() for m in item["missing"])


async def _owed(config: cfg.ClientConfig, args: argparse.Namespace) -> int:
    """The unit's work list of owed results; with --fill, the scans named by dossier code are sent as
    those results (kind result, the result type's part code), resumably, like any upload."""
    transport = _transport(config, args)
    try:
        items = await owed_items(transport, args.unit)
        print(f"Kết quả còn nợ / Results owed: {len(items)}")
        for item in items[:50]:
            print(f"  {item['code']}  trả/returned {item.get('returned_on')}  {item['subject']['name']}  "
                  f"thiếu/missing: {_missing_text(item)}")  # fmt: skip
        if len(items) > 50:
            print(f"  ... {len(items) - 50} nữa / more" + (f" (xem / see {args.csv})" if args.csv else ""))
        if args.csv:
            with args.csv.open("w", newline="", encoding="utf-8-sig") as f:
                out = csv.writer(f)
                out.writerow(["Mã hồ sơ", "Ngày trả", "Chủ hồ sơ", "Mã thủ tục", "Còn thiếu", "Tệp cần quét"])
                for item in items:
                    out.writerow([item["code"], item.get("returned_on") or "", item["subject"]["name"],
                                  item["procedure_code"], _missing_text(item), f"{item['code']}.pdf"])  # fmt: skip
        if args.fill is None:
            return 0
        if not args.fill.is_dir():
            print(f"Không có thư mục {args.fill} / No folder {args.fill}")
            return 2
        entries = []
        for item in items:
            path = args.fill / f"{item['code']}.pdf"
            if not path.is_file():
                continue
            result = next((m for m in item["missing"] if m["kind"] == "result"), None)
            entries.append(
                Entry(
                    row=0,
                    path=path,
                    name=path.name,
                    kind="result",
                    dossier_ref=f"owed:{item['code']}",
                    part_code=(result or {}).get("code") or None,
                    existing_id=str(item["dossier_id"]),
                )
            )
        journal = Journal(args.fill)
        try:
            uploader = Uploader(transport, journal, Options(concurrency=max(1, args.concurrency)))
            outcome = await uploader.send_all(entries)
            await uploader.refresh()
            write_results(journal, args.fill / "ket-qua.csv")
        finally:
            journal.close()
        sent = sum(1 for s in outcome.values() if s != "failed")
        print(
            f"Đã gửi {sent} kết quả, còn {len(items) - sent} chưa có bản quét / Sent {sent} results; "
            f"{len(items) - sent} have no scan in {args.fill} yet (name them <dossier code>.pdf)."
        )
        return 1 if any(s == "failed" for s in outcome.values()) else 0
    finally:
        await transport.aclose()


async def _watch(uploader: Uploader, folder: Path, args: argparse.Namespace, progress: Progress) -> list[str]:
    """Look at the folder every interval; a PDF is sent once it has not changed for ``settle`` seconds
    and the manifest has its row; each verdict is printed when the warehouse gives it. Stops on Ctrl-C
    or SIGTERM after the files in flight. Returns the files still waiting for their manifest row."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, unchanged since)
    told: set[object] = set()
    print(f"Đang theo dõi {folder} / Watching {folder} (Ctrl-C to stop)", flush=True)
    waiting: set[str] = set()
    asked = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if now - asked >= VERDICT_EVERY:  # what the warehouse said of the files sent, as it says it
            asked = now
            for judged in await uploader.refresh():
                progress.note(verdict_line(judged))
        settled: list[str] = []
        for name, size, mtime_ns in await asyncio.to_thread(_pdfs, folder):
            before = seen.get(name)
            if before is None or before[:2] != (size, mtime_ns):
                seen[name] = (size, mtime_ns, now)
            elif now - before[2] >= args.settle and size > 0:
                settled.append(name)
        if settled:
            entries, problems = validate(folder, args.manifest)
            by_name: dict[str, Entry] = {e.name: e for e in entries}
            if problems:
                # While the operator is still filling the manifest in, the rows without problems can go.
                rows = {p.row for p in problems}
                for p in problems:
                    key = p.line()
                    if key not in told:
                        told.add(key)
                        progress.note("  bảng kê / manifest: " + key)
                by_name = {e.name: e for e in entries if e.row not in rows}
            ready = []
            for name in settled:
                record = uploader.journal.file(name)
                if record is not None and record.state not in ("queued", "failed"):
                    if (record.size, record.mtime_ns) == seen[name][:2]:
                        continue
                    if not args.replace:  # changed after it was sent: say so once per version
                        if (name, *seen[name][:2]) not in told:
                            told.add((name, *seen[name][:2]))
                            progress.note(changed_after_sending(record))
                        continue
                if record is not None and record.state == "failed" and record.size == seen[name][0]:
                    continue  # failed with these bytes: `upload` retries it, watch does not loop on it
                if name in by_name:
                    ready.append(by_name[name])
                    waiting.discard(name)
                else:
                    waiting.add(name)
                    if name not in told:
                        told.add(name)
                        progress.note(f"  {name}: chờ dòng trong bảng kê / waiting for its manifest row")
            if ready:
                await uploader.send_all(ready, note=progress.note, progress=progress)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.interval)
    return sorted(waiting)


def _pdfs(folder: Path) -> list[tuple[str, int, int]]:
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == ".pdf" and path.is_file():
            st = path.stat()
            found.append((path.name, st.st_size, st.st_mtime_ns))
    return found


async def _status(config: cfg.ClientConfig, args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not (folder / JOURNAL_NAME).exists():
        print(f"Chưa gửi gì từ {folder} / Nothing was sent from {folder}")
        return 0
    journal = Journal(folder)
    t = Transport(config.host, config.headers(), bandwidth=Bandwidth(0))
    try:
        await Uploader(t, journal, Options()).refresh()
        for r in journal.files():
            line: list[Any] = [r.state.ljust(10), r.name, journal.dossier_code(r.dossier_ref) or "-"]
            if r.findings:
                line.append(r.findings)
            if r.error:
                line.append(r.error)
            print("  ".join(str(x) for x in line))
        print(summary(journal))
        results = args.results or folder / "ket-qua.csv"
        write_results(journal, results)
        print(f"Kết quả / Results: {results}")
    finally:
        await t.aclose()
        journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
