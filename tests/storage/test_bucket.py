"""`warehouse migrate` sets the bucket up as production needs it: versioning and lifecycle rules."""

from __future__ import annotations

import subprocess
import sys

from storage import Settings
from tests.factories import raw_s3


def test_migrate_turns_on_versioning_and_lifecycle_rules(settings: Settings, prepared: object) -> None:
    bucket = "warehouse-test-versioned"
    env = {
        "WAREHOUSE_DATABASE_URL": settings.database_url,
        "WAREHOUSE_REDIS_URL": settings.redis_url,
        "WAREHOUSE_S3_BUCKET": bucket,
        "WAREHOUSE_S3_VERSIONING": "true",
        "WAREHOUSE_S3_ABORT_INCOMPLETE_DAYS": "2",
        "WAREHOUSE_S3_NONCURRENT_DAYS": "45",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-m", "warehouse", "migrate"], env=env, capture_output=True, text=True, check=True
    )
    assert f"bucket: {bucket} on " in out.stdout and "versioning on" in out.stdout
    s3 = raw_s3(settings)
    assert s3.get_bucket_versioning(bucket_name=bucket).status == "Enabled"
    lifecycle = s3.get_bucket_lifecycle(bucket_name=bucket)
    assert lifecycle is not None
    rules = {r.rule_id: r for r in lifecycle.rules}
    abort = rules["abort-incomplete-multipart-uploads"].abort_incomplete_multipart_upload
    noncurrent = rules["expire-noncurrent-versions"].noncurrent_version_expiration
    assert abort is not None and abort.days_after_initiation == 2
    assert noncurrent is not None and noncurrent.noncurrent_days == 45
