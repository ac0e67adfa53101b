"""Sending a folder of scans: dossiers first, then files (whole or in parts), each step recorded in the
journal before and after, so a run can stop anywhere and the next one finishes the work without
duplicating any of it."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import json
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warehouse.client.journal import FileRecord, Journal
from warehouse.client.manifest import Entry, dossier_body
from warehouse.client.transport import Refused, StoreRefused, StoreUnreachable, Transport, Unreachable

MiB = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Options:
    concurrency: int = 2
    session_above: int = 16 * MiB  # larger files go through resumable upload sessions
    replace: bool = False  # send a file whose bytes changed after it was sent, as a new file
    # Direct mode: the file goes straight to the object store with a presigned POST, and the warehouse
    # checks and records it. "auto": when the store answers from this station (else through the
    # warehouse, for the rest of the run); "always": only so; "never": always through the warehouse.
    # Files above session_above go in resumable parts through the warehouse either way (on a flaky link
    # a failed part is sent again alone; a direct upload starts over).
    direct: str = "auto"


@dataclass
class Progress:
    """Files and megabytes: two bars with rate and time left on a terminal, plain lines otherwise. One
    Progress lasts a whole run (``watch`` adds each batch to it), and bytes move as each chunk goes."""

    total_files: int
    total_bytes: int
    quiet: bool = False
    files: int = 0
    sent_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    _bar: Any = None
    _tasks: tuple[Any, Any] | None = None

    def __enter__(self) -> Progress:
        if sys.stderr.isatty() and not self.quiet:
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bars

            self._bar = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                transient=False,
                refresh_per_second=4,
            )
            self._bar.__enter__()
            self._tasks = (
                self._bar.add_task("tệp / files", total=self.total_files, detail=""),
                self._bar.add_task("dữ liệu / data", total=self.total_bytes, detail=""),
            )
            self._show()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._show()
            self._bar.__exit__(None, None, None)

    def add(self, files: int, size: int) -> None:
        """More work for the same bars (the next batch of ``watch``)."""
        self.total_files += files
        self.total_bytes += size
        self._show()

    def rate(self) -> float:
        return self.sent_bytes / max(0.001, time.monotonic() - self.started)

    def _show(self) -> None:
        if self._bar is None or not self._tasks:
            return
        files, data = self._tasks
        self._bar.update(
            files, total=max(1, self.total_files), completed=self.files, detail=f"{self.files}/{self.total_files}"
        )
        self._bar.update(
            data,
            total=max(1, self.total_bytes),
            completed=self.sent_bytes,
            detail=f"{self.sent_bytes / MiB:.1f}/{self.total_bytes / MiB:.1f} MB, {self.rate() / MiB:.2f} MB/s",
        )

    def sent(self, n: int) -> None:
        self.sent_bytes = min(self.total_bytes, self.sent_bytes + n)
        self._show()

    def done(self, name: str, state: str) -> None:
        self.files += 1
        if self._bar is not None:
            self._show()
            return
        if self.quiet:
            return
        rate = self.rate()
        left = (self.total_bytes - self.sent_bytes) / rate if rate > 0 else 0
        print(
            f"{self.files}/{self.total_files} files, {self.sent_bytes / MiB:.1f}/{self.total_bytes / MiB:.1f} MB, "
            f"{rate / MiB:.2f} MB/s, ~{left:.0f} s left: {name} {state}",
            flush=True,
        )

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text)
        elif not self.quiet:
            print(text, flush=True)


class Uploader:
    def __init__(self, transport: Transport, journal: Journal, options: Options) -> None:
        self.t = transport
        self.journal = journal
        self.options = options
        self._dossier_locks: dict[str, asyncio.Lock] = {}
        self._created: set[str] = set()  # dossiers this run created: nothing can be in them yet
        self._digests: dict[str, str] = {}  # each file's bytes now, by name
        self.store_reachable: bool | None = None  # found out by the first direct upload

    async def send_all(
        self, entries: list[Entry], note: Callable[[str], None] = print, progress: Progress | None = None
    ) -> dict[str, str]:
        """Send every entry not yet sent, on ``progress`` (a new one when not given). Returns
        {file name: state}."""
        records = [self.prepare(e) for e in entries]
        for entry, record in zip(entries, records, strict=True):
            if record.sha256 != self._digests.get(entry.name, record.sha256):
                note(changed_after_sending(record))
        todo = [(e, r) for e, r in zip(entries, records, strict=True) if r.state in ("queued", "failed")]
        outcome: dict[str, str] = {r.name: r.state for r in records}
        total = sum(r.size for _, r in todo)
        gate = asyncio.Semaphore(self.options.concurrency)
        with contextlib.ExitStack() as stack:
            if progress is None:
                progress = stack.enter_context(Progress(0, 0))
            progress.add(len(todo), total)
            self.t.on_wait = progress.note
            bar = progress

            async def one(entry: Entry, record: FileRecord) -> None:
                async with gate:
                    outcome[record.name] = await self.send(entry, record, bar)
                    bar.done(record.name, outcome[record.name])

            await asyncio.gather(*(one(e, r) for e, r in todo))
        return outcome

    def dossier_key(self, entry: Entry) -> str:
        """The same dossier of the same folder always gets the same key (see journal)."""
        body = {"existing": entry.existing_id} if entry.existing_id else dossier_body(entry.dossier)
        what = json.dumps([str(entry.path.parent.resolve()), entry.dossier_ref, body])
        return "station-dossier-" + hashlib.sha256(what.encode()).hexdigest()[:40]

    def prepare(self, entry: Entry) -> FileRecord:
        stat = entry.path.stat()
        digest = self.journal.known_digest(entry.name, stat.st_size, stat.st_mtime_ns) or sha256_of(entry.path)
        key = (
            "station-file-"
            + hashlib.sha256(f"{self.dossier_key(entry)}/{digest}/{entry.kind}".encode()).hexdigest()[:40]
        )
        self._digests[entry.name] = digest
        return self.journal.track(
            entry.name,
            stat.st_size,
            stat.st_mtime_ns,
            digest,
            entry.dossier_ref,
            entry.kind,
            key,
            replace=self.options.replace,
        )

    async def dossier_id(self, entry: Entry) -> str:
        lock = self._dossier_locks.setdefault(entry.dossier_ref, asyncio.Lock())
        if entry.existing_id:
            return entry.existing_id
        async with lock:  # files of one dossier wait for it to exist, then share it
            key, dossier_id, _ = self.journal.dossier(entry.dossier_ref, self.dossier_key(entry))
            if dossier_id:
                return dossier_id
            r = await self.t.request(
                "POST", "/api/v1/dossiers", json=dossier_body(entry.dossier), headers={"Idempotency-Key": key}
            )
            body = r.json()
            self.journal.dossier_created(entry.dossier_ref, body["id"], body["code"])
            if r.headers.get("idempotent-replayed") != "true":
                self._created.add(entry.dossier_ref)
            return str(body["id"])

    async def send(self, entry: Entry, record: FileRecord, progress: Progress) -> str:
        try:
            dossier_id = await self.dossier_id(entry)
            held = None if entry.dossier_ref in self._created else await self.already_held(record, dossier_id)
            if held:
                self.journal.update(record.name, file_id=held, state="sent", error=None)
                return "sent"
            file_id = None
            if self.wants_direct(record):  # None when the store cannot be reached: through the warehouse
                file_id = await self.send_direct(record, dossier_id, entry.path, progress, entry.part_code)
            if file_id is None and record.size > self.options.session_above:
                file_id = await self.send_in_parts(record, dossier_id, entry.path, progress, entry.part_code)
            elif file_id is None:
                file_id = await self.send_whole(record, dossier_id, entry.path, progress, entry.part_code)
        except Refused as exc:
            self.journal.update(record.name, state="failed", error=f"{exc.code}: {exc.detail}")
            progress.note(f"{record.name}: {exc.code}: {exc.detail}")
            return "failed"
        except Unreachable as exc:
            self.journal.update(record.name, state="failed", error=str(exc))
            progress.note(f"{record.name}: {exc}")
            return "failed"
        self.journal.update(record.name, file_id=file_id, state="sent", error=None)
        return "sent"

    async def already_held(self, record: FileRecord, dossier_id: str) -> str | None:
        """The dedupe probe: this dossier already has a file with these bytes (a journal lost or reset)."""
        r = await self.t.request("GET", "/api/v1/files", params={"sha256": record.sha256})
        for f in r.json()["items"]:
            if str(f.get("dossier_id")) == dossier_id and f.get("state") != "deleted":
                return str(f["id"])
        return None

    async def send_whole(
        self, record: FileRecord, dossier_id: str, path: Path, progress: Progress, part_code: str | None = None
    ) -> str:
        r = await self.t.request(
            "POST",
            f"/api/v1/dossiers/{dossier_id}/files",
            body=self.t.file_body(path, 0, record.size, on_sent=progress.sent),
            headers={
                "Content-Type": "application/pdf",
                "Content-Length": str(record.size),
                "X-File-Kind": record.kind,
                "X-Filename": urllib.parse.quote(path.name),
                "X-Content-SHA256": record.sha256,
                "Idempotency-Key": record.idem_key,
                **({"X-Part-Code": part_code} if part_code else {}),
            },
        )
        return str(r.json()["id"])

    def wants_direct(self, record: FileRecord) -> bool:
        if self.options.direct == "never" or self.store_reachable is False:
            return False
        return self.options.direct == "always" or record.size <= self.options.session_above

    async def _direct_session(
        self, record: FileRecord, dossier_id: str, path: Path, part_code: str | None
    ) -> dict[str, Any] | None:
        """The file's open direct session: the one the journal names, else a new one. None when the
        journal's session went another way (parts, or it ended) and the file is to go as before."""
        if record.upload_id:
            r = await self.t.request("GET", f"/api/v1/uploads/{record.upload_id}", ok=(404,))
            session: dict[str, Any] = r.json() if r.status_code == 200 else {}
            if session.get("mode") == "direct" and (session.get("file_id") or session.get("state") == "open"):
                return session
            if session.get("mode") == "parts" and session.get("state") == "open":
                return None  # an earlier run started it in parts: finish it so
        return await self._new_session(record, dossier_id, path, part_code, mode="direct")

    async def _new_session(
        self, record: FileRecord, dossier_id: str, path: Path, part_code: str | None, *, mode: str
    ) -> dict[str, Any]:
        """Open an upload session (``parts`` or ``direct``) for the file, named in the journal; its key
        makes a repeat after a lost answer the same session."""
        r = await self.t.request(
            "POST",
            "/api/v1/uploads",
            json={
                "dossier_id": dossier_id,
                "filename": path.name,
                "kind": record.kind,
                "size": record.size,
                "sha256": record.sha256,
                # (parts is the default, left out so a run before direct mode existed is repeated alike)
                **({"mode": mode} if mode != "parts" else {}),
                **({"part_code": part_code} if part_code else {}),
            },
            headers={
                "Idempotency-Key": f"{record.idem_key}-{'session' if mode == 'parts' else mode}-{record.upload_id or 0}"
            },
        )
        session: dict[str, Any] = r.json()
        self.journal.update(record.name, upload_id=session["id"])
        return session

    async def send_direct(
        self, record: FileRecord, dossier_id: str, path: Path, progress: Progress, part_code: str | None = None
    ) -> str | None:
        """Send the file straight to the object store, then ask the warehouse to check and record it.
        None when the store cannot be reached from here (the file, and every later one, then goes
        through the warehouse; the session is given up)."""
        session = await self._direct_session(record, dossier_id, path, part_code)
        if session is None:
            return None
        for attempt in (1, 2):
            if session.get("file_id"):
                return str(session["file_id"])
            direct = session["direct"]
            try:
                await self.t.post_to_store(
                    direct["url"],
                    direct["fields"],
                    path.name,
                    record.size,
                    self.t.file_body(path, 0, record.size, on_sent=progress.sent),
                )
            except StoreUnreachable as exc:
                if self.options.direct == "always":
                    raise Unreachable(f"the object store cannot be reached from this station: {exc}") from exc
                if self.store_reachable is None:
                    progress.note(
                        "Kho lưu trữ tệp không truy cập được từ máy này, gửi qua kho số hóa / the object store "
                        f"cannot be reached from this station ({exc}); sending through the warehouse"
                    )
                self.store_reachable = False
                await self.t.request("DELETE", f"/api/v1/uploads/{session['id']}", ok=(404, 409))
                self.journal.update(record.name, upload_id=None)
                return None
            except StoreRefused as exc:
                if attempt == 2 or exc.status != 403:
                    raise Unreachable(f"the object store refused the file: {exc}") from exc
                # the policy ran out (a long wait on a slow link): the session's status gives a fresh one
                session = (await self.t.request("GET", f"/api/v1/uploads/{session['id']}")).json()
                continue
            self.store_reachable = True
            break
        r = await self.t.request("POST", f"/api/v1/uploads/{session['id']}/complete")
        body = r.json()
        return str(body.get("file_id") or body["id"])

    async def send_in_parts(
        self, record: FileRecord, dossier_id: str, path: Path, progress: Progress, part_code: str | None = None
    ) -> str:
        session = None
        if record.upload_id:
            r = await self.t.request("GET", f"/api/v1/uploads/{record.upload_id}", ok=(404,))
            earlier = r.json() if r.status_code == 200 else {}
            if earlier.get("file_id") or (
                earlier.get("mode") == "parts" and earlier.get("state") not in ("failed", "expired", "aborted")
            ):
                session = earlier
        if session is None:
            session = await self._new_session(record, dossier_id, path, part_code, mode="parts")
        if session.get("file_id"):
            return str(session["file_id"])
        part = int(session["part_size"])
        done = record.size - sum(min(part, record.size - (n - 1) * part) for n in session["missing"])
        progress.sent(done)
        for n in session["missing"]:
            offset = (n - 1) * part
            length = min(part, record.size - offset)
            await self.t.request(
                "PUT",
                f"/api/v1/uploads/{session['id']}/parts/{n}",
                body=self.t.file_body(path, offset, length, on_sent=progress.sent),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            )
        r = await self.t.request("POST", f"/api/v1/uploads/{session['id']}/complete")
        body = r.json()
        return str(body.get("file_id") or body["id"])

    async def refresh(self) -> list[FileRecord]:
        """Ask the warehouse what became of each sent file: processing, ready or rejected, and why.
        Returns the records that reached ready or rejected in this call."""
        settled: list[FileRecord] = []
        for record in self.journal.files():
            if not record.file_id or record.state in ("ready", "rejected"):
                continue
            r = await self.t.request("GET", f"/api/v1/files/{record.file_id}", ok=(404,))
            if r.status_code == 404:
                self.journal.update(record.name, state="failed", error="the warehouse no longer has this file")
                continue
            f = r.json()
            state = f["state"] if f["state"] in ("ready", "rejected") else "processing"
            findings = "; ".join(f"{x['code']}: {x.get('vi') or x.get('en')}" for x in f.get("findings", []))
            self.journal.update(record.name, state=state, verdict=f.get("verdict"), findings=findings or None)
            if state in ("ready", "rejected"):
                settled.append(self.journal.file(record.name) or record)
        return settled


def verdict_line(record: FileRecord) -> str:
    """One line for a file the warehouse has judged, as ``watch`` prints it when it happens."""
    words = {"ready": "sẵn sàng/ready", "rejected": "bị từ chối/rejected"}
    if record.state == "ready" and record.findings:
        words["ready"] = "sẵn sàng, có cảnh báo/ready with warnings"
    line = f"  {record.name}: {words.get(record.state, record.state)}"
    return f"{line} — {record.findings}" if record.findings else line


def changed_after_sending(record: FileRecord) -> str:
    """What to say of a file whose bytes changed after an earlier version was sent."""
    if record.state == "rejected":
        return (
            f"  {record.name}: bản trước đã bị từ chối và tệp đã thay đổi; chạy lại với --replace để gửi bản "
            f"sửa / the earlier version was rejected and the file has changed: run again with --replace to "
            f"send the corrected scan (the rejected one stays in the dossier's history)"
        )
    return (
        f"  {record.name}: tệp đã thay đổi sau khi gửi ({record.state}); không gửi lại. Dùng --replace để gửi thêm "
        f"bản mới / the file changed after it was sent ({record.state}); not sent again: --replace adds the new "
        f"version to the dossier"
    )


def write_results(journal: Journal, path: Path, waiting: list[str] | None = None) -> None:
    """The CSV an operator hands to the unit's admin: file, dossier code, state, findings; with the
    folder's scans that still wait for their manifest row (state ``waiting``)."""
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        out = csv.writer(f)
        out.writerow(["file", "dossier_code", "state", "verdict", "findings", "error"])
        known = set()
        for r in journal.files():
            known.add(r.name)
            out.writerow(
                [
                    r.name,
                    journal.dossier_code(r.dossier_ref) or "",
                    r.state,
                    r.verdict or "",
                    r.findings or "",
                    r.error or "",
                ]
            )
        for name in sorted(set(waiting or ()) - known):
            out.writerow([name, "", "waiting", "", "", "chờ dòng trong bảng kê / waiting for its manifest row"])


def summary(journal: Journal) -> str:
    records = journal.files()
    counts = Counter("ready_with_warnings" if r.state == "ready" and r.findings else r.state for r in records)
    order = ("ready", "ready_with_warnings", "rejected", "processing", "sent", "queued", "failed")
    words = {
        "ready": "sẵn sàng/ready",
        "ready_with_warnings": "sẵn sàng có cảnh báo/ready with warnings",
        "rejected": "bị từ chối/rejected",
        "processing": "đang kiểm tra/processing",
        "sent": "đã gửi/sent",
        "queued": "chưa gửi/queued",
        "failed": "lỗi/failed",
    }
    return ", ".join(f"{counts[s]} {words[s]}" for s in order if counts[s]) or "không có tệp nào / no files"
