"""What a request handler works with: the settings and one client per backing service."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from storage import (
    Account,
    Accounts,
    ApiKeys,
    Audit,
    Blobs,
    Counters,
    Database,
    Dossiers,
    Files,
    ObjectStore,
    Queue,
    Settings,
    SignIns,
    Units,
    UploadSessions,
    app_database_url,
)
from storage.api_keys import KeyHolder, key_hash
from storage.catalogue import Catalogue
from storage.feed import Feed, Subscriptions
from storage.idempotency import IdempotencyKeys
from storage.legal import Legal
from storage.progress import Progress
from storage.retention import Retention
from storage.watch import ChangeWatch
from warehouse.security import Passwords
from warehouse.signing import SigningPool


@dataclass
class Services:
    settings: Settings
    db: Database
    objects: ObjectStore
    queue: Queue
    units: Units = field(init=False)
    accounts: Accounts = field(init=False)
    dossiers: Dossiers = field(init=False)
    files: Files = field(init=False)
    blobs: Blobs = field(init=False)
    sessions: UploadSessions = field(init=False)
    idempotency: IdempotencyKeys = field(init=False)
    progress: Progress = field(init=False)
    catalogue: Catalogue = field(init=False)
    legal: Legal = field(init=False)
    feed: Feed = field(init=False)
    subscriptions: Subscriptions = field(init=False)
    retention: Retention = field(init=False)
    signing: SigningPool = field(init=False)
    verify_reading: asyncio.Semaphore = field(init=False)  # public checks reading a copy, at once
    api_keys: ApiKeys = field(init=False)
    audit: Audit = field(init=False)
    counters: Counters = field(init=False)
    logins: SignIns = field(init=False)
    passwords: Passwords = field(init=False)
    _subtrees: dict[int, tuple[float, list[int]]] = field(default_factory=dict, init=False)
    _own: dict[int, tuple[float, list[int]]] = field(default_factory=dict, init=False)
    _accounts: dict[int, Account] = field(default_factory=dict, init=False)
    _keys: dict[str, KeyHolder] = field(default_factory=dict, init=False)
    _key_used: dict[str, float] = field(default_factory=dict, init=False)
    _background: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    watch: ChangeWatch | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        pool = self.db.pool
        self.units = Units(pool)
        self.accounts = Accounts(pool)
        self.dossiers = Dossiers(pool)
        self.files = Files(pool)
        self.blobs = Blobs(pool)
        self.sessions = UploadSessions(pool)
        self.idempotency = IdempotencyKeys(pool)
        self.progress = Progress(pool)
        self.catalogue = Catalogue(pool)
        self.legal = Legal(pool)
        self.feed = Feed(pool)
        self.subscriptions = Subscriptions(pool)
        self.retention = Retention(pool, self.settings.retention_default)
        self.signing = SigningPool(self.settings)
        self.verify_reading = asyncio.Semaphore(self.settings.verify_uploads_at_once)
        self.api_keys = ApiKeys(pool)
        self.audit = Audit(pool)
        self.counters = Counters(self.queue.redis)
        self.logins = SignIns(self.queue.redis)
        self.passwords = Passwords.from_settings(self.settings)

    async def subtree(self, unit_id: int, max_age: float = 10.0) -> list[int]:
        """A unit and the units below it, cached briefly: the tree changes rarely, requests often."""
        now = time.monotonic()
        hit = self._subtrees.get(unit_id)
        if hit and now - hit[0] < max_age:
            return hit[1]
        ids = await self.units.subtree_ids(unit_id)
        self._subtrees[unit_id] = (now, ids)
        return ids

    async def own_units(self, unit_id: int, max_age: float = 10.0) -> list[int]:
        """A unit and the units merged into it (an operator's reach), cached like subtree()."""
        now = time.monotonic()
        hit = self._own.get(unit_id)
        if hit and now - hit[0] < max_age:
            return hit[1]
        ids = await self.units.with_predecessors(unit_id)
        self._own[unit_id] = (now, ids)
        return ids

    async def account(self, account_id: int) -> Account | None:
        """The account, from memory while change notifications flow, else from Postgres."""
        if self.watch is not None and self.watch.live and account_id in self._accounts:
            return self._accounts[account_id]
        account = await self.accounts.get(account_id)
        if account is not None and self.watch is not None and self.watch.live:
            self._accounts[account_id] = account
        return account

    async def api_key_account(self, key: str) -> KeyHolder | None:
        digest = key_hash(key)
        if self.watch is not None and self.watch.live and digest in self._keys:
            now = time.monotonic()
            if now - self._key_used.get(digest, 0.0) > 60:  # keep "last used" true to the minute
                self._key_used[digest] = now
                task = asyncio.create_task(self.api_keys.account_for(key))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return self._keys[digest]
        holder = await self.api_keys.account_for(key)
        if holder is not None and self.watch is not None and self.watch.live:
            self._keys[digest] = holder
        return holder

    def forget_account(self, account_id: int) -> None:
        """Drop a cached account now (its notification reaches the other processes)."""
        self._accounts.pop(account_id, None)

    def start_watching(self) -> None:
        def account_changed(payload: str) -> None:
            self._accounts.pop(int(payload), None)

        def key_changed(payload: str) -> None:
            self._keys.pop(payload, None)

        def lost() -> None:
            self._accounts.clear()
            self._keys.clear()

        self.watch = ChangeWatch(
            app_database_url(self.settings), {"account_changed": account_changed, "api_key_changed": key_changed}, lost
        )
        self.watch.start()

    def forget_subtrees(self) -> None:
        self._own.clear()
        self._subtrees.clear()
