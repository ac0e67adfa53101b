"""Housekeeping jobs of the inspection worker (arq cron): nothing abandoned lingers, nothing rots unseen.

- ``expire_uploads`` (hourly): upload sessions with no new part for ``upload_session_ttl_seconds`` are
  aborted, and their multipart uploads with them.
- ``sweep_orphans`` (hourly): objects under ``originals/`` of this month and the last that no blob, file
  or open session knows, older than ``orphan_grace_seconds`` (an API process died between storing
  the bytes and recording them), are removed; so are staged direct uploads (``incoming/``) older than
  that, and idempotency answers past their time.
- ``check_fixity`` (nightly): re-reads the blobs verified longest ago, up to ``fixity_budget_mb``, and
  records when each was verified and any mismatch of size or SHA-256.
- ``lock_originals`` (every minute, with ``WAREHOUSE_S3_OBJECT_LOCK``): accepted bytes get the store's
  object lock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from storage import Blobs, ObjectNotFound, ObjectStoreUnavailable, Settings, UploadSessions, incoming_key
from storage.idempotency import IdempotencyKeys
from storage.objects import ObjectStore

log = logging.getLogger(__name__)


async def expire_uploads(ctx: dict[str, Any]) -> int:
    sessions = UploadSessions(ctx["db"].pool)
    objects: ObjectStore = ctx["objects"]
    expired = await sessions.expired()
    for session in expired:
        try:
            if session.s3_upload_id:
                await objects.abort_multipart(session.object_key, session.s3_upload_id)
            else:
                await objects.delete(incoming_key(session.id))
        except ObjectNotFound:
            pass
        except ObjectStoreUnavailable as exc:
            log.warning("could not abort upload %s now (%s); trying again next hour", session.id, exc)
            continue
        await sessions.finish(session.id, "expired", failure="no part arrived for too long")
    if expired:
        log.info("expired %d abandoned upload sessions", len(expired))
    return len(expired)


async def sweep_orphans(ctx: dict[str, Any]) -> int:
    settings: Settings = ctx["settings"]
    objects: ObjectStore = ctx["objects"]
    blobs = Blobs(ctx["db"].pool)
    now = datetime.now(UTC)
    before = now - timedelta(seconds=settings.orphan_grace_seconds)
    last_month = now.replace(day=1) - timedelta(days=1)
    removed = 0
    for month in sorted({f"{now:%Y/%m}", f"{last_month:%Y/%m}", f"{before:%Y/%m}"}):
        keys = await objects.older_than(f"originals/{month}/", before)
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            known = await blobs.known_keys(batch)
            for key in batch:
                if key not in known:
                    await objects.delete(key)
                    removed += 1
    # Staged direct uploads are copied to their own key at completion and removed; what is left is
    # an abandoned or re-sent staging object.
    for key in await objects.older_than("incoming/", before):
        await objects.delete(key)
        removed += 1
    forgotten = await IdempotencyKeys(ctx["db"].pool).forget_older_than(settings.idempotency_ttl_seconds)
    if removed or forgotten:
        log.info("removed %d orphan objects and %d expired idempotency answers", removed, forgotten)
    return removed


async def check_fixity(ctx: dict[str, Any]) -> dict[str, int]:
    settings: Settings = ctx["settings"]
    objects: ObjectStore = ctx["objects"]
    blobs = Blobs(ctx["db"].pool)
    checked = failed = 0
    for blob in await blobs.due_for_fixity(budget_bytes=settings.fixity_budget_mb * 1024 * 1024):
        try:
            size, digest, _ = await objects.digest(blob.object_key)
        except ObjectNotFound:
            await blobs.record_fixity(blob.sha256, ok=False, detail="the object is missing from the store")
            failed += 1
            continue
        except ObjectStoreUnavailable as exc:
            log.warning("fixity check stopped: the object store is unavailable (%s)", exc)
            break
        ok = size == blob.size and digest == blob.sha256
        detail = None if ok else f"read {size} bytes with SHA-256 {digest}"
        await blobs.record_fixity(blob.sha256, ok=ok, detail=detail)
        checked += 1
        failed += not ok
    if failed:
        log.error("fixity: %d of %d blobs did not match their record", failed, checked + failed)
    return {"checked": checked, "failed": failed}


async def lock_originals(ctx: dict[str, Any]) -> int:
    """Lock in the store the bytes of every accepted file not locked yet (``WAREHOUSE_S3_OBJECT_LOCK``):
    until ``WAREHOUSE_S3_OBJECT_LOCK_YEARS`` from now, a date no administrator can shorten in compliance
    mode. Runs every minute; a store that refuses (a bucket made without object lock) is logged each
    time, and the bytes are tried again."""
    settings: Settings = ctx["settings"]
    if settings.s3_object_lock == "off":
        return 0
    objects: ObjectStore = ctx["objects"]
    blobs = Blobs(ctx["db"].pool)
    until = datetime.now(UTC) + timedelta(days=365 * settings.s3_object_lock_years + 2)
    locked = 0
    for sha256, key in await blobs.to_lock():
        try:
            await objects.lock(key, mode=settings.s3_object_lock, until=until)
        except ObjectStoreUnavailable as exc:
            log.warning("object lock: the object store is unavailable (%s)", exc)
            break
        except Exception as exc:  # the store refuses: say so, try again next round
            log.error("object lock: %s could not be locked: %s (was the bucket made with object lock?)", key, exc)
            continue
        await blobs.record_lock(sha256, until)
        locked += 1
    return locked
