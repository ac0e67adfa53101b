"""The ground floor of the warehouse: Postgres, the object store and the job queue.

Callers see these names, not SQL strings or SDK objects. This package imports nothing else of ours.
"""

from storage.accounts import ROLES, Account, Accounts
from storage.api_keys import ApiKey, ApiKeys
from storage.audit import Audit, AuditEvent, AuditFilter
from storage.blobs import Blob, Blobs
from storage.config import Settings, app_database_url, get_settings
from storage.db import Database, Transaction, drop_database, ensure_database, migrate
from storage.dossiers import Dossier, DossierFilter, Dossiers, InvalidCursor, decode_cursor, encode_cursor
from storage.files import File, Files, Inspection, NewFile, Verdict
from storage.keys import incoming_key, original_key
from storage.limits import Budget, BudgetState, Counters, SignIns, Window, WindowState
from storage.objects import (
    BodyLengthMismatch,
    Breaker,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    ObjectTooLarge,
    StorageError,
    StoredObject,
    fetch_signed,
)
from storage.outbox import drain_safely, requeue_lost
from storage.queue import INSPECT_FILE, OCR_FILE, OCR_QUEUE_NAME, QUEUE_NAME, Queue, inspection_job_id, redis_settings
from storage.sessions import Part, UploadSession, UploadSessions
from storage.text import fold, nfc
from storage.units import LEVELS, Unit, Units

__all__ = [
    "INSPECT_FILE",
    "LEVELS",
    "OCR_FILE",
    "OCR_QUEUE_NAME",
    "QUEUE_NAME",
    "ROLES",
    "Account",
    "Accounts",
    "ApiKey",
    "ApiKeys",
    "Audit",
    "AuditEvent",
    "AuditFilter",
    "Blob",
    "Blobs",
    "BodyLengthMismatch",
    "Breaker",
    "Budget",
    "BudgetState",
    "Counters",
    "Database",
    "Dossier",
    "DossierFilter",
    "Dossiers",
    "File",
    "Files",
    "Inspection",
    "InvalidCursor",
    "NewFile",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "ObjectTooLarge",
    "Part",
    "Queue",
    "Settings",
    "SignIns",
    "StorageError",
    "StoredObject",
    "Transaction",
    "Unit",
    "Units",
    "UploadSession",
    "UploadSessions",
    "Verdict",
    "Window",
    "WindowState",
    "app_database_url",
    "decode_cursor",
    "drain_safely",
    "drop_database",
    "encode_cursor",
    "ensure_database",
    "fetch_signed",
    "fold",
    "get_settings",
    "incoming_key",
    "inspection_job_id",
    "migrate",
    "nfc",
    "original_key",
    "redis_settings",
    "requeue_lost",
]


def object_store(settings: Settings) -> ObjectStore:
    """The process's object-store client, built from the settings."""
    return ObjectStore(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
        public_endpoint=settings.s3_public_endpoint,
        part_size=settings.s3_part_size,
        max_connections=settings.s3_max_connections,
        threads=settings.s3_threads,
        request_seconds=settings.s3_request_seconds,
        breaker=Breaker(failures=settings.s3_breaker_failures, seconds=settings.s3_breaker_seconds),
    )
