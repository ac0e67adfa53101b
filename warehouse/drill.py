"""The restore drill as one command (``warehouse drill``): back up, restore into an empty place, prove it.

1. Back up: ``pg_dump`` of the warehouse's database (a consistent snapshot, custom format) and every
   object of its bucket, copied to a second location (a folder: another disk, a mounted share).
2. Restore into an empty database and an empty bucket beside the warehouse's own (``<name>_drill``,
   ``<bucket>-drill``): a drill never touches the warehouse it proves, and refuses a target that holds
   anything.
3. Prove: every stored original (each blob) and every signed copy the restored database records is read
   back from the restored bucket and its SHA-256 compared with the record's.

It prints what it checked (records, bytes, minutes) and exits 1 when anything is missing or differs.
The drill's database and bucket are removed afterwards unless kept (``--keep``), the backup folder
stays unless it was a temporary one.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from storage import Database, ObjectNotFound, Settings, drop_database, ensure_database, object_store
from storage.blobs import Blobs
from storage.db import holds_records


class DrillRefused(Exception):
    """The drill cannot run as asked; the message says why."""


@dataclass
class DrillReport:
    records: int = 0
    bytes: int = 0
    objects_backed_up: int = 0
    missing: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.differing

    def lines(self) -> list[str]:
        total = sum(self.seconds.values())
        out = [
            f"drill: {self.records} stored records checked, {self.bytes:,} bytes, "
            f"{self.objects_backed_up} objects backed up, {total / 60:.1f} minutes "
            f"(backup {self.seconds.get('backup', 0):.0f} s, restore {self.seconds.get('restore', 0):.0f} s, "
            f"check {self.seconds.get('check', 0):.0f} s)"
        ]
        for key in self.missing[:20]:
            out.append(f"drill: MISSING after restore: {key}")
        for key in self.differing[:20]:
            out.append(f"drill: DIFFERS from its record's SHA-256: {key}")
        out.append("drill: PASS, every record's bytes match" if self.ok else "drill: FAIL")
        return out


def _database_named(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _name_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _run(settings: Settings, args: list[str]) -> None:
    program = str(Path(settings.pg_bin_dir) / args[0]) if settings.pg_bin_dir else args[0]
    try:
        done = subprocess.run([program, *args[1:]], capture_output=True, text=True)
    except FileNotFoundError:
        raise DrillRefused(
            f"{args[0]} is not installed here: install the PostgreSQL client tools of the server's version "
            "(or set WAREHOUSE_PG_BIN_DIR to where they are)."
        ) from None
    if done.returncode != 0:
        raise DrillRefused(f"{args[0]} failed: {done.stderr.strip()[-500:]}")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a drill restores: an empty database and an empty bucket beside the warehouse's own."""

    url: str
    name: str
    bucket: str

    @classmethod
    def beside(cls, settings: Settings) -> Target:
        name = _name_of(settings.database_url) + "_drill"
        return cls(_database_named(settings.database_url, name), name, settings.s3_bucket + "-drill")


async def backup(settings: Settings, folder: Path, report: DrillReport) -> None:
    """The database (pg_dump, one consistent snapshot) and every object of the bucket, into ``folder``."""
    started = time.monotonic()
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    _run(settings, ["pg_dump", "--format=custom", "--no-owner", "--file", str(folder / "warehouse.dump"),
          "--dbname", settings.database_url])  # fmt: skip
    source = object_store(settings)
    try:
        for key in await source.older_than("", _far_future()):
            path = folder / "objects" / key
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            await source.download(key, path)
            report.objects_backed_up += 1
    finally:
        await source.aclose()
    report.seconds["backup"] = time.monotonic() - started


async def restore(settings: Settings, folder: Path, target: Target, report: DrillReport) -> None:
    """The backup in ``folder`` into the target, which must hold nothing."""
    if await holds_records(target.url):
        raise DrillRefused(
            f"The drill restores into the database {target.name}, which is not empty (a drill kept with --keep?). "
            "Remove it first (dropdb, or psql's drop database); a restore never goes over existing records."
        )
    store = object_store(settings.model_copy(update={"s3_bucket": target.bucket}))
    try:
        if not await store.ensure_bucket() and await store.older_than("", _far_future()):
            raise DrillRefused(f"The drill's bucket {target.bucket} is not empty; empty or remove it first.")
        started = time.monotonic()
        await ensure_database(target.url)
        _run(
            settings,
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", target.url, str(folder / "warehouse.dump")],
        )
        objects = folder / "objects"
        for path in await asyncio.to_thread(lambda: sorted(p for p in objects.rglob("*") if p.is_file())):
            await store.put_file(path.relative_to(objects).as_posix(), path, content_type="application/octet-stream")
        report.seconds["restore"] = time.monotonic() - started
    finally:
        await store.aclose()


async def check(settings: Settings, target: Target, report: DrillReport) -> None:
    """Read back every object the restored records name and compare its SHA-256 with the record's."""
    started = time.monotonic()
    store = object_store(settings.model_copy(update={"s3_bucket": target.bucket}))
    restored = await Database.connect(target.url, min_size=1, max_size=2)
    try:
        async for key, sha256 in Blobs(restored.pool).stored():
            report.records += 1
            try:
                size, digest, _head = await store.digest(key)
            except ObjectNotFound:
                report.missing.append(key)
                continue
            report.bytes += size
            if digest != sha256:
                report.differing.append(key)
    finally:
        await restored.close()
        await store.aclose()
    report.seconds["check"] = time.monotonic() - started


async def remove(settings: Settings, target: Target) -> None:
    """The drill's database and bucket contents, gone (the warehouse's own are never touched)."""
    store = object_store(settings.model_copy(update={"s3_bucket": target.bucket}))
    try:
        if not await store.ensure_bucket():
            for key in await store.older_than("", _far_future()):
                await store.delete(key)
    finally:
        await store.aclose()
    await drop_database(target.url)


async def drill(settings: Settings, *, backup_dir: Path | None, keep: bool) -> DrillReport:
    report = DrillReport()
    target = Target.beside(settings)
    folder = Path(tempfile.mkdtemp(prefix="warehouse-drill-")) if backup_dir is None else backup_dir
    restored = False
    try:
        await backup(settings, folder, report)
        await restore(settings, folder, target, report)
        restored = True
        await check(settings, target, report)
        return report
    finally:
        if restored and not keep:
            await remove(settings, target)
        if backup_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=3650)


def run_drill(settings: Settings, *, backup_dir: str | None, keep: bool) -> int:
    try:
        report = asyncio.run(drill(settings, backup_dir=Path(backup_dir) if backup_dir else None, keep=keep))
    except DrillRefused as exc:
        print(f"drill: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line, flush=True)
    return 0 if report.ok else 1
