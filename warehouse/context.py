"""What a request handler works with: the settings and one client per backing service."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from storage import (
    Accounts,
    ApiKeys,
    Audit,
    Counters,
    Database,
    Dossiers,
    Files,
    ObjectStore,
    Queue,
    Settings,
    Units,
)
from warehouse.security import Passwords


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
    api_keys: ApiKeys = field(init=False)
    audit: Audit = field(init=False)
    counters: Counters = field(init=False)
    passwords: Passwords = field(init=False)
    _subtrees: dict[int, tuple[float, list[int]]] = field(default_factory=dict, init=False)
    _own: dict[int, tuple[float, list[int]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        pool = self.db.pool
        self.units = Units(pool)
        self.accounts = Accounts(pool)
        self.dossiers = Dossiers(pool)
        self.files = Files(pool)
        self.api_keys = ApiKeys(pool)
        self.audit = Audit(pool)
        self.counters = Counters(self.queue.redis)
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

    def forget_subtrees(self) -> None:
        self._own.clear()
        self._subtrees.clear()
