"""The one settings object of the warehouse, read from ``WAREHOUSE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", env_file=None, extra="ignore")


class ApiSettings(_Group):
    """Where the API listens and how it treats connections."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_workers: int = Field(default=1, ge=1, description="API worker processes")
    access_log: bool = Field(default=False, description="log every request (metrics count them anyway)")
    # granian's backpressure counts open connections, idle keep-alive ones included (its default,
    # backlog / workers, stalled the 1,200th commune operator for 20-30 s).
    api_max_connections: int = Field(default=8192, ge=64, description="open client connections, all workers")
    api_backlog: int = Field(default=4096, ge=128, description="connections waiting to be accepted")
    # An idle kept-alive connection is closed after this long. It must outlast the clients' own reuse
    # (httpx drops idle connections after 5 s, a load-test user thinks up to 35 s between calls) and a
    # proxy's (nginx keeps upstream connections 60 s), or a client sends on a connection being closed.
    api_keep_alive_seconds: int = Field(default=75, ge=1, le=3600, description="idle client connection lifetime")


class ServiceSettings(_Group):
    """Postgres, Redis and the object store, and where local services keep their data."""

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/warehouse",
        description="the owner's connection: migrations, the seed and bulk loads (never the API or workers)",
    )
    database_app_url: str = Field(
        default="",
        description="the API's and workers' connection, as a role that owns nothing and may only add to the "
        "audit trail; empty: database_url with the user warehouse_app and database_app_password",
    )
    database_app_password: str = ""
    db_pool_min: int = 2
    db_pool_max: int = 20
    redis_url: str = "redis://127.0.0.1:6379/0"
    s3_endpoint: str = "127.0.0.1:8333"
    s3_public_endpoint: str = Field(
        default="", description="host:port clients use for presigned URLs; empty means s3_endpoint"
    )
    s3_secure: bool = False
    s3_access_key: str = "warehouse"
    s3_secret_key: str = "warehouse-local-secret"
    s3_bucket: str = "warehouse"
    s3_object_lock: Literal["off", "governance", "compliance"] = Field(
        default="off",
        description="lock each accepted original in the store until a date nobody can shorten (compliance) or "
        "only a bypass permission can (governance); the bucket must be created with object lock",
    )
    s3_object_lock_years: int = Field(default=10, ge=1, le=100, description="how long an accepted original is locked")
    s3_region: str = "us-east-1"
    s3_versioning: bool = Field(
        default=False, description="keep earlier versions of objects (on in production MinIO; see deploy/README.md)"
    )
    s3_abort_incomplete_days: int = Field(
        default=1, ge=0, description="lifecycle rule: abort multipart uploads left incomplete this many days (0: none)"
    )
    s3_noncurrent_days: int = Field(
        default=30, ge=0, description="lifecycle rule with versioning: delete earlier versions after this many days"
    )
    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB, description="multipart part size for uploads")
    s3_max_connections: int = Field(default=64, ge=1)
    s3_request_seconds: float = Field(
        default=15, gt=0, description="how long the object store has to answer a request once it is sent"
    )
    s3_breaker_failures: int = Field(
        default=5, ge=1, description="faults in a row after which the object store is not asked for a while"
    )
    s3_breaker_seconds: float = Field(default=10, gt=0, description="how long a failing object store is not asked")
    s3_threads: int = Field(default=64, ge=1, description="threads that drive the blocking S3 SDK")

    # Where local services and secrets live when the warehouse starts them itself.
    data_dir: Path = Path(".data")


class SecuritySettings(_Group):
    """Tokens, passwords and sign-in limits."""

    secret_key: str = Field(default="", description="JWT signing key; generated under data_dir when empty")
    token_ttl_seconds: int = 3600
    console_cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="the console's sign-in cookie is Secure: auto (when the request came over HTTPS), always, never",
    )
    admin_password: str = ""
    # argon2id cost: the OWASP Password Storage Cheat Sheet's first option (19 MiB, 2 passes, 1 lane),
    # about 37 ms a login here; the library default (64 MiB, 3 passes, 4 lanes) costs 150 ms, and a
    # morning's logins of every commune's operators then take minutes of CPU.
    password_time_cost: int = Field(default=2, ge=1)
    password_memory_kib: int = Field(default=19456, ge=8192)
    password_parallelism: int = Field(default=1, ge=1)
    login_free_attempts: int = Field(
        default=5, ge=1, description="wrong passwords from one address before that address is locked out of the login"
    )
    login_lock_seconds: int = Field(default=60, ge=1, description="first lock; each further failure doubles it")
    login_lock_max_seconds: int = Field(default=3600, ge=1)
    login_address_per_minute: int = Field(default=60, ge=1, description="sign-in attempts per client address a minute")
    login_concurrency: int = Field(
        default=2, ge=1, description="passwords checked at once per API process (each argon2 check holds its memory)"
    )
    login_queue: int = Field(
        default=64, ge=0, description="sign-ins waiting for a password check per API process before 503"
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For names the client "
        "(the per-address limits of sign-in and the public check)",
    )


class FairShareSettings(_Group):
    """Fair share: per account (overridable in the account's limits) and per unit."""

    rate_account_rps: int = Field(default=20, ge=1, description="requests per second per account")
    rate_unit_rps: int = Field(default=60, ge=1, description="requests per second per unit")
    rate_account_uploads: int = Field(default=2, ge=1, description="concurrent uploads per account")
    rate_unit_uploads: int = Field(default=6, ge=1, description="concurrent uploads per unit")
    # A commune's link rarely carries more than a few MB/s; these leave room for a campaign's bursts.
    rate_account_upload_mb_per_minute: int = Field(default=300, ge=1)
    rate_unit_upload_mb_per_minute: int = Field(default=600, ge=1)


class UnitSettings(_Group):
    """Units and codes."""

    province_org_suffix: str = Field(
        default="HXX",
        description="the province's group in organisation identifiers (000.00.00.Hxx, Decision 20/2020)",
        pattern=r"^[0-9A-Z]{1,5}$",
    )


class UploadSettings(_Group):
    """Uploads, their sessions, and what the warehouse keeps and checks afterwards."""

    max_file_bytes: int = Field(default=200 * MiB, ge=1)
    upload_drain_bytes: int = Field(
        default=64 * MiB, ge=0, description="how much of a refused body is read so the client sees the 413"
    )
    upload_idle_seconds: float = Field(
        default=30, gt=0, description="an upload body that stops this long is refused (408)"
    )
    upload_min_bytes_per_second: int = Field(
        default=1024, ge=0, description="an upload body slower than this (after the grace period) is refused (408)"
    )
    upload_rate_grace_seconds: float = Field(
        default=20, ge=0, description="how long an upload may start slowly before its pace is judged"
    )
    presign_ttl_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    upload_part_bytes: int = Field(
        default=8 * MiB, ge=5 * MiB, description="part size of resumable uploads (S3 needs 5 MiB but for the last)"
    )
    direct_upload_ttl_seconds: int = Field(
        default=900,
        ge=60,
        le=24 * 3600,
        description="lifetime of a direct upload's presigned POST policy (a new one comes with the session's status)",
    )
    direct_upload_pinned: bool = Field(
        default=True,
        description="where the store checks a POST's SHA-256 (probed), a direct upload's policy names the file's own "
        "key and pins its SHA-256, and completing reads nothing back; off: stage, copy and read back",
    )
    upload_session_ttl_seconds: int = Field(
        default=48 * 3600, ge=60, description="an upload session with no new part for this long is aborted"
    )
    orphan_grace_seconds: int = Field(
        default=24 * 3600, ge=60, description="stored objects with no record are removed after this long"
    )
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60, description="how long first answers are kept")
    idempotency_claim_seconds: int = Field(
        default=60,
        ge=5,
        description="a key whose first request never answered (its API process died) is taken over after this",
    )
    fixity_budget_mb: int = Field(default=10_240, ge=1, description="bytes the nightly fixity job re-reads")
    fixity_hour: int = Field(default=1, ge=0, le=23, description="hour (UTC) the fixity job runs")
    page_size_default: int = 50
    page_size_max: int = 200


class IntakeSettings(_Group):
    """Returns pushed by the one-stop system, and the procedure catalogue's spreadsheets."""

    intake_max_items: int = Field(default=500, ge=1, description="returns in one pushed batch (more: 413)")
    intake_max_body_bytes: int = Field(default=2 * MiB, ge=1024, description="size of one pushed batch (more: 413)")
    catalogue_max_bytes: int = Field(default=5 * MiB, ge=1024, description="size of an imported catalogue file")
    catalogue_max_rows: int = Field(default=20_000, ge=1, description="rows of an imported catalogue")
    catalogue_max_unpacked_bytes: int = Field(
        default=25 * MiB, ge=1024, description="what an imported XLSX may unpack to (a zip bomb is refused)"
    )


class WorkerSettings(_Group):
    """The workers: inspection's limits, job handling and metrics."""

    inspect_timeout_seconds: float = Field(
        default=60.0, gt=0, description="reading one file (after fetching it) may take this long, then it is rejected"
    )
    inspect_fetch_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="fetching a file for inspection may take this long, then it is tried again later",
    )
    inspect_memory_mb: int = 512
    inspect_max_pages: int = 2000
    inspect_text_chars: int = 1_000_000
    inspect_max_stream_mb: int = Field(default=512, ge=1, description="largest a compressed stream may inflate to")
    worker_max_jobs: int = Field(
        default=16,
        ge=1,
        description="inspections in flight per worker process (fetching, waiting for a child, recording)",
    )
    inspect_batch_files: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="claims or verdicts of inspections sent to Postgres in one statement, at most",
    )
    inspect_batch_ms: float = Field(
        default=20,
        ge=0,
        le=1000,
        description="how long an inspection's claim or verdict waits for others to go in the same statement",
    )
    inspect_children: int = Field(
        default=4, ge=1, description="limited child processes reading files at once per worker process"
    )
    inspect_child_max_files: int = Field(
        default=100, ge=1, description="files an inspection child reads before it is replaced (returns memory)"
    )
    worker_poll_seconds: float = Field(
        default=0.1, gt=0, description="how often an idle worker looks for jobs (it takes max_jobs per look)"
    )
    worker_job_tries: int = 5
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="port a worker serves Prometheus metrics on (0: none)"
    )
    worker_metrics_host: str = "127.0.0.1"
    metrics_token: str = Field(
        default="",
        description="when set, /metrics answers only 'Authorization: Bearer <token>' (Prometheus' bearer_token)",
    )
    metrics_refresh_seconds: float = Field(
        default=15, gt=0, description="how often the API reads the pipeline's and queues' depth for /metrics"
    )


class StandardSettings(_Group):
    """The national scan standard and which findings reject a file; the rest are warnings."""

    inspect_min_dpi: int = Field(default=200, ge=1, description="lowest scan resolution without a warning")
    inspect_min_pdf_version: str = Field(default="1.4", pattern=r"^\d\.\d$")
    inspect_paper_tolerance_mm: float = Field(default=6.0, ge=0, description="how far a page may be from A4/A3")
    inspect_blank_ink_ratio: float = Field(
        default=0.002, ge=0, le=1, description="a scanned page with less ink than this share of its pixels is blank"
    )
    inspect_reject: list[str] = Field(
        default=["pdf_damaged", "pdf_javascript", "pdf_launch_action", "pdf_embedded_files"],
        description="findings that reject a file (unreadable and encrypted files are always rejected)",
    )


class LegalSettings(_Group):
    """Digitized copies with legal standing: signatures read at inspection, the organisation's signed
    copy, the digitization result code, the QR and the public check."""

    signature_trust_roots: Path | None = Field(
        default=None, description="PEM file of the trusted root certificates signatures are checked against"
    )
    signature_crl: Path | None = Field(
        default=None, description="PEM or DER file of certificate revocation lists (no network is asked)"
    )
    signature_policy_component: Literal["off", "warn", "reject"] = Field(
        default="off", description="what an unsigned or badly signed component file gets, where no unit says"
    )
    signature_policy_result: Literal["off", "warn", "reject"] = Field(
        default="warn", description="what an unsigned or badly signed result file gets, where no unit says"
    )
    signing_keys_dir: Path | None = Field(
        default=None,
        description="folder of each unit's PKCS#12 file, <UNIT CODE>.p12, with its passphrase in <UNIT CODE>.pass "
        "(empty: <data_dir>/signing-keys)",
    )
    sign_max_bytes: int = Field(default=200 * MiB, ge=1024, description="largest file that is signed")
    sign_concurrency: int = Field(default=2, ge=1, le=64, description="files signed at once by each API process")
    sign_queue: int = Field(default=16, ge=0, description="signing requests that wait for a free signer")
    sign_timeout_seconds: float = Field(default=120, gt=0, description="longest one signing may take")
    sign_memory_mb: int = Field(default=1024, ge=256, description="memory one signing child may use")
    sign_max_copies: int = Field(default=10, ge=1, description="signed copies one file may have")
    result_code_format: str = Field(
        default="{holder}-{result_type}-{seq:08d}",
        description="the digitization result code: {holder} {result_type} {unit} {year} {seq}",
    )
    system_name: str = Field(
        default="Kho số hóa hồ sơ, kết quả giải quyết TTHC", max_length=120, description="named in the QR"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="where citizens reach the warehouse: the QR's check link"
    )
    result_scope: str = Field(default="Toàn quốc", max_length=80, description="where a result is valid (the QR)")
    qr_size_mm: float = Field(default=24.0, ge=12, le=60, description="side of the QR on the page")
    verify_per_minute: int = Field(default=30, ge=1, description="public checks per client address per minute")
    verify_max_bytes: int = Field(default=50 * MiB, ge=1024, description="largest copy a citizen may upload to check")
    verify_uploads_at_once: int = Field(
        default=8, ge=1, description="copies being read for a public check at once per API process (then 503)"
    )

    @field_validator("result_code_format")
    @classmethod
    def _code_format(cls, value: str) -> str:
        try:
            value.format(holder="001", result_type="KQ1", unit="X", year=2026, seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"result_code_format cannot be filled: {exc}") from exc
        if "{seq" not in value:
            raise ValueError("result_code_format must contain {seq} so that codes are unique")
        return value


class FeedSettings(_Group):
    """The change feed and the push deliveries to other systems (the national portal, the desks)."""

    feed_page_max: int = Field(default=1000, ge=1, le=10_000, description="changes one feed page may hold")
    feed_scan_window: int = Field(
        default=100_000, ge=1000, description="feed positions one page looks at (a narrow scope gets a short page)"
    )
    feed_poll_ms: int = Field(default=100, ge=10, le=10_000, description="how often workers look for new changes")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="longest wait for a receiver")
    webhook_retry_hours: float = Field(
        default=72.0, gt=0, description="how long a delivery is retried before it is parked as dead"
    )
    webhook_backoff_max_seconds: float = Field(
        default=600.0, ge=1, description="longest wait between tries of a failing receiver"
    )
    webhook_in_flight: int = Field(default=4, ge=1, le=64, description="deliveries sent at once to one receiver")
    webhook_concurrency: int = Field(default=32, ge=1, description="deliveries sent at once by one worker")
    webhook_allow_private: bool = Field(
        default=False, description="deliver to loopback and private addresses (off: the SSRF guard)"
    )
    webhook_require_https: bool = Field(default=True, description="receivers must be https:// addresses")
    webhook_max_subscriptions: int = Field(default=20, ge=1, description="subscriptions one unit's admins may have")
    webhook_secret_overlap_hours: float = Field(
        default=24.0, ge=0, description="how long the old secret still signs after a rotation"
    )
    webhook_keep_delivered_days: float = Field(default=30.0, gt=0, description="how long delivered deliveries are kept")
    webhook_link_ttl_seconds: int = Field(
        default=24 * 3600, ge=60, le=7 * 24 * 3600, description="lifetime of the file link in a portal delivery"
    )


class KeepingSettings(_Group):
    """How long records are kept, undoing a delete, and purges."""

    retention_default: str = Field(
        default="permanent",
        pattern=r"^(permanent|[1-9][0-9]{0,2}y)$",
        description="the class of a dossier when neither the catalogue nor its units set one",
    )
    delete_undo_days: float = Field(default=30.0, ge=0, description="how long an administrator can undo a delete")
    purge_max_dossiers: int = Field(default=1000, ge=1, le=100_000, description="dossiers one purge may take")
    pg_bin_dir: str = Field(
        default="", description="where pg_dump and pg_restore of the server's version are (empty: the PATH)"
    )


class OcrSettings(_Group):
    """OCR of image-only pages (its own queue and workers, at a lower CPU priority)."""

    ocr_enabled: bool = True
    ocr_languages: str = "vie"
    ocr_max_jobs: int = Field(default=1, ge=1, description="files OCR'd at once per OCR worker process")
    ocr_niceness: int = Field(default=10, ge=0, le=19, description="how much lower the OCR children's priority is")
    ocr_idle: bool = Field(default=True, description="OCR children run only on otherwise idle CPU (SCHED_IDLE)")
    ocr_memory_mb: int = Field(default=1536, ge=256)
    ocr_seconds_per_page: float = Field(default=60.0, gt=0, description="OCR time limit per page of a file")
    ocr_max_pages: int = Field(default=300, ge=1, description="files with more image-only pages are not OCR'd")
    ocr_pdfa: bool = Field(default=True, description="write the OCR'd copy as PDF/A where it validates")
    stuck_after_seconds: int = 300


class Settings(
    ApiSettings,
    ServiceSettings,
    SecuritySettings,
    FairShareSettings,
    UnitSettings,
    UploadSettings,
    IntakeSettings,
    WorkerSettings,
    StandardSettings,
    LegalSettings,
    FeedSettings,
    KeepingSettings,
    OcrSettings,
):
    """Every address, secret and limit the warehouse uses, grouped by concern above; each field is
    ``WAREHOUSE_<NAME>`` whatever its group, and is read as ``settings.<name>``."""

    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", env_file=None, extra="ignore")


APP_ROLE = "warehouse_app"


def app_database_url(settings: Settings) -> str:
    """The connection the API and workers use (see ``database_app_url``)."""
    if settings.database_app_url:
        return settings.database_app_url
    parts = urlsplit(settings.database_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    login = APP_ROLE + (f":{quote(settings.database_app_password, safe='')}" if settings.database_app_password else "")
    netloc = f"{login}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
