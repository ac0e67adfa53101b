"""The station's journal: what was sent, kept beside the scans (`.kho-so-hoa-journal.sqlite` in the
folder) so an interrupted run picks up where it stopped and a rerun never sends anything twice.

Every key that makes a request idempotent is written here before the request goes out, so a run killed
between sending and hearing the answer repeats the request with the same key and gets the first answer.
The keys are derived from what is sent (the folder, the dossier's fields, the file's SHA-256), so even a
lost journal does not duplicate a dossier or a file within the warehouse's idempotency window (24 h);
after that, the dedupe probe still finds files already in their dossier.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME = ".kho-so-hoa-journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    ref         TEXT PRIMARY KEY,
    idem_key    TEXT NOT NULL,
    dossier_id  TEXT,
    code        TEXT
);
CREATE TABLE IF NOT EXISTS files (
    name        TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    dossier_ref TEXT NOT NULL,
    kind        TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    upload_id   TEXT,
    file_id     TEXT,
    state       TEXT NOT NULL DEFAULT 'queued',
    verdict     TEXT,
    findings    TEXT,
    error       TEXT
);
"""


@dataclass
class FileRecord:
    name: str
    size: int
    mtime_ns: int
    sha256: str
    dossier_ref: str
    kind: str
    idem_key: str
    upload_id: str | None
    file_id: str | None
    state: str  # queued, sent, processing, ready, rejected, failed
    verdict: str | None
    findings: str | None
    error: str | None


class Journal:
    def __init__(self, folder: Path) -> None:
        self.path = folder / NAME
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each write is durable
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut loses nothing the journal said was sent
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # dossiers
    def dossier(self, ref: str, key: str) -> tuple[str, str | None, str | None]:
        """(idempotency key, dossier id, code); the key given is kept on first sight."""
        row = self._db.execute("SELECT idem_key, dossier_id, code FROM dossiers WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO dossiers (ref, idem_key) VALUES (?, ?)", (ref, key))
            return key, None, None
        return row[0], row[1], row[2]

    def dossier_created(self, ref: str, dossier_id: str, code: str) -> None:
        self._db.execute("UPDATE dossiers SET dossier_id = ?, code = ? WHERE ref = ?", (dossier_id, code, ref))

    def dossier_code(self, ref: str) -> str | None:
        row = self._db.execute("SELECT code FROM dossiers WHERE ref = ?", (ref,)).fetchone()
        return row[0] if row else None

    # files
    def file(self, name: str) -> FileRecord | None:
        row = self._db.execute("SELECT * FROM files WHERE name = ?", (name,)).fetchone()
        return FileRecord(*row) if row else None

    def track(
        self,
        name: str,
        size: int,
        mtime_ns: int,
        sha256: str,
        dossier_ref: str,
        kind: str,
        key: str,
        *,
        replace: bool = False,
    ) -> FileRecord:
        """The file's record. A file whose bytes changed before it was sent starts over with them; one
        changed after it was sent keeps its record (its first version is in the warehouse) unless
        ``replace``: then the new bytes start over as a new file of the same dossier, and the earlier
        one stays in the dossier's history."""
        known = self.file(name)
        if (
            known is not None
            and not (replace and known.sha256 != sha256)
            and (known.sha256 == sha256 or known.state not in ("queued", "failed"))
        ):
            if (known.size, known.mtime_ns) != (size, mtime_ns) and known.sha256 == sha256:
                self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE name = ?", (size, mtime_ns, name))
            return self.file(name) or known
        self._db.execute(
            "INSERT OR REPLACE INTO files (name, size, mtime_ns, sha256, dossier_ref, kind, idem_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, size, mtime_ns, sha256, dossier_ref, kind, key),
        )
        record = self.file(name)
        assert record is not None
        return record

    def known_digest(self, name: str, size: int, mtime_ns: int) -> str | None:
        """The SHA-256 computed earlier for the same file (same size and modification time)."""
        row = self._db.execute(
            "SELECT sha256 FROM files WHERE name = ? AND size = ? AND mtime_ns = ?", (name, size, mtime_ns)
        ).fetchone()
        return row[0] if row else None

    def update(self, name: str, **values: Any) -> None:
        columns = ", ".join(f"{k} = ?" for k in values)
        self._db.execute(f"UPDATE files SET {columns} WHERE name = ?", (*values.values(), name))

    def files(self) -> list[FileRecord]:
        return [FileRecord(*r) for r in self._db.execute("SELECT * FROM files ORDER BY name")]
