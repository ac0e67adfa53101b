"""Test harness: a fresh database, a test bucket and a test Redis database on the real services."""

from __future__ import annotations

import os

# The suite owns its own database, bucket and Redis database; never the ones `make run` uses.
os.environ.setdefault("WAREHOUSE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/warehouse_test")
os.environ.setdefault("WAREHOUSE_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("WAREHOUSE_S3_BUCKET", "warehouse-test")
os.environ.setdefault("WAREHOUSE_SECRET_KEY", "test-signing-key-that-is-long-enough-for-hs256")

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage import Database, Settings, app_database_url, drop_database, migrate, object_store
from tests.factories import ADMIN_PASSWORD, Api, Subtree, new_subtree
from warehouse.app import create_app
from warehouse.security import Passwords
from warehouse.seed import seed

assert Settings().database_url.rsplit("/", 1)[-1].endswith("_test"), "tests must run on a *_test database"


@pytest.fixture(scope="session")
def settings() -> Settings:
    # Tests fire requests far faster than people do; the fair-share tests set their own limits.
    return Settings(
        admin_password=ADMIN_PASSWORD,
        rate_account_rps=100_000,
        rate_unit_rps=100_000,
        rate_account_uploads=1000,
        rate_unit_uploads=1000,
        login_address_per_minute=100_000,  # every test signs in from the test client's one address
        upload_part_bytes=5 * 1024 * 1024,  # resumable uploads in parts of the smallest size S3 allows
    )


@pytest.fixture(scope="session")
async def prepared(settings: Settings) -> AsyncIterator[Settings]:
    """A migrated, seeded, empty warehouse: database, bucket and queue."""
    await drop_database(settings.database_url)
    await migrate(settings.database_url, app_url=app_database_url(settings))
    store = object_store(settings)
    await store.ensure_bucket()
    await store.aclose()
    r = aioredis.from_url(settings.redis_url)
    await r.flushdb()
    await r.aclose()
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    await seed(
        db,
        suffix=settings.province_org_suffix,
        admin_password=ADMIN_PASSWORD,
        passwords=Passwords.from_settings(settings),
    )
    await db.close()
    yield settings


@pytest.fixture(scope="session")
async def db(prepared: Settings) -> AsyncIterator[Database]:
    database = await Database.connect(prepared.database_url, min_size=1, max_size=4)
    yield database
    await database.close()


def make_client(settings: Settings) -> AsyncTestClient[Litestar]:
    return AsyncTestClient(app=create_app(settings), timeout=60)


@pytest.fixture
async def tree(db: Database) -> Subtree:
    """A district and three communes of this test's own (see tests/factories.py: Subtree)."""
    return await new_subtree(db)


@pytest.fixture
async def tree2(db: Database) -> Subtree:
    """Another district of this test's own, for what one district must not see of another."""
    return await new_subtree(db)


@pytest.fixture(scope="session")
async def client(prepared: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with make_client(prepared) as c:
        yield c


@pytest.fixture(scope="session")
async def api(client: AsyncTestClient[Litestar], db: Database, prepared: Settings) -> Api:
    return Api(client, db, prepared)
