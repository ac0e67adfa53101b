"""The accounts a load run needs, provisioned through the warehouse's own API before the run.

Works against any deployment given its address and an administrator's credentials: accounts are
provisioned per level (only the missing ones), each one-time password is replaced by a generated
password, and what was made is kept in a local cache so later runs reuse the accounts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from warehouse.client.transport import warehouse_http

CACHE_DIR = Path(__file__).resolve().parent / ".accounts"

# Who takes part, per role of the load suite: (unit level, accounts per unit, role in the warehouse).
POPULATION = {
    "commune_operator": ("commune", 3, "operator"),
    "district_operator": ("district", 2, "operator"),
    "department_operator": ("department", 2, "operator"),
    "official": ("district", 1, "viewer"),
}
# A smoke run needs a handful: one account per unit, communes of the first district only.
SMALL = {
    "commune_operator": ("commune", 1, "operator"),
    "district_operator": ("district", 1, "operator"),
    "department_operator": ("department", 1, "operator"),
    "official": ("district", 1, "viewer"),
}


@dataclass(frozen=True, slots=True)
class Credential:
    login: str
    password: str
    unit_code: str
    key: str = ""  # an API key, for the machine clients (the one-stop system)


ONE_STOP_LOGIN = "load-mot-cua"


async def _one_stop(
    http: httpx.AsyncClient, admin: dict[str, str], province: str, ids: dict[str, int], cache: dict[str, dict[str, str]]
) -> Credential:
    """The one-stop system's account (role one_stop, the whole province) and its API key."""
    known = cache.get(ONE_STOP_LOGIN, {})
    if known.get("key"):
        me = await http.get("/api/v1/me", headers={"X-API-Key": known["key"]})
        if me.status_code == 200:
            return Credential(ONE_STOP_LOGIN, known["password"], province, known["key"])
    if ONE_STOP_LOGIN in ids:
        made = await _polite(http, "POST", f"/api/v1/accounts/{ids[ONE_STOP_LOGIN]}/reset-password", headers=admin)
    else:
        made = await _polite(
            http,
            "POST",
            "/api/v1/accounts",
            json={"login": ONE_STOP_LOGIN, "unit_code": province, "role": "one_stop"},
            headers=admin,
        )
    password = await _settle(http, ONE_STOP_LOGIN, made.json()["password"])
    token = await _polite(http, "POST", "/api/v1/auth/login", json={"login": ONE_STOP_LOGIN, "password": password})
    key = await _polite(
        http,
        "POST",
        "/api/v1/api-keys",
        json={"label": "load suite: one-stop system"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    cache[ONE_STOP_LOGIN] = {"password": password, "unit": province, "key": key.json()["key"]}
    return Credential(ONE_STOP_LOGIN, password, province, key.json()["key"])


def _cache_path(host: str) -> Path:
    return CACHE_DIR / (hashlib.sha256(host.encode()).hexdigest()[:16] + ".json")


def _load_cache(host: str) -> dict[str, dict[str, str]]:
    path = _cache_path(host)
    return json.loads(path.read_text()) if path.exists() else {}


def forget_cached_accounts(host: str) -> None:
    _cache_path(host).unlink(missing_ok=True)


def _save_cache(host: str, cache: dict[str, dict[str, str]]) -> None:
    CACHE_DIR.mkdir(exist_ok=True)
    path = _cache_path(host)
    path.write_text(json.dumps(cache, indent=1, ensure_ascii=False))
    path.chmod(0o600)


async def _polite(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request that waits out 429s as the warehouse asks (setup runs under the same limits)."""
    for _ in range(30):
        r = await http.request(method, path, **kwargs)
        if r.status_code != 429:
            r.raise_for_status()
            return r
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    r.raise_for_status()
    return r


async def _settle(http: httpx.AsyncClient, login: str, one_time: str) -> str:
    """Replace a one-time password by a generated one (the warehouse requires it before any work)."""
    r = await _polite(http, "POST", "/api/v1/auth/login", json={"login": login, "password": one_time})
    new = "tai-" + secrets.token_urlsafe(18)
    changed = await _polite(
        http,
        "POST",
        "/api/v1/me/password",
        json={"current_password": one_time, "new_password": new},
        headers={"Authorization": f"Bearer {r.json()['access_token']}"},
    )
    assert changed.status_code == 200
    return new


async def prepare_accounts(
    host: str,
    admin_login: str,
    admin_password: str,
    *,
    cache_key: str | None = None,
    concurrency: int = 8,
    small: bool = False,
) -> dict[str, list[Credential]]:
    """Provision (or reuse) every account of POPULATION (or SMALL); returns the credentials per suite role."""
    population = SMALL if small else POPULATION
    cache_key = cache_key or host
    cache = _load_cache(cache_key)
    async with warehouse_http(base_url=host, timeout=120) as http:
        r = await _polite(http, "POST", "/api/v1/auth/login", json={"login": admin_login, "password": admin_password})
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        by_level: dict[str, set[str]] = {}
        for level in ("province", "department", "district", "commune"):
            units = await _polite(http, "GET", "/api/v1/units", params={"level": level}, headers=admin)
            by_level[level] = {u["code"] for u in units.json()}
        province = next(iter(by_level["province"]))
        districts = sorted(by_level["district"])

        pending: list[tuple[str, str, str]] = []  # (login, one-time password, unit code)
        members: dict[str, list[tuple[str, str]]] = {role: [] for role in population}
        for level, per_unit, role in population.values():
            parents = (districts[:1] if small else districts) if level == "commune" else [province]
            for parent in parents:
                made = await _polite(
                    http,
                    "POST",
                    "/api/v1/accounts/provision",
                    json={"parent_unit_code": parent, "level": level, "per_unit": per_unit, "role": role},
                    headers=admin,
                )
                pending += [(a["login"], a["password"], a["unit_code"]) for a in made.json()["accounts"]]
        listed = await _polite(http, "GET", "/api/v1/accounts", headers=admin)
        ids = {a["login"]: a["id"] for a in listed.json()}
        commune_scope = set(by_level["commune"])
        if small:
            first = await _polite(http, "GET", "/api/v1/units", params={"parent": districts[0]}, headers=admin)
            commune_scope = {u["code"] for u in first.json()}
        for suite_role, (level, per_unit, role) in population.items():
            allowed = commune_scope if level == "commune" else by_level[level]
            suffix = {"operator": "-op", "viewer": "-vw"}[role]
            for a in listed.json():
                if a["role"] != role or a["unit_code"] not in allowed or suffix not in a["login"]:
                    continue
                number = a["login"].rsplit(suffix, 1)[1]
                if number.isdigit() and int(number) <= per_unit:
                    members[suite_role].append((a["login"], a["unit_code"]))

        # Accounts made before whose password this machine does not know get a reset.
        fresh = {login for login, _, _ in pending}
        for suite_role in members:
            for login, unit in members[suite_role]:
                if login not in cache and login not in fresh:
                    reset = await _polite(http, "POST", f"/api/v1/accounts/{ids[login]}/reset-password", headers=admin)
                    pending.append((login, reset.json()["password"], unit))

        limiter = asyncio.Semaphore(concurrency)

        async def settle(login: str, one_time: str, unit: str) -> None:
            async with limiter:
                cache[login] = {"password": await _settle(http, login, one_time), "unit": unit}

        try:
            await asyncio.gather(*(settle(*p) for p in pending))
            system = await _one_stop(http, admin, province, ids, cache)
        finally:
            _save_cache(cache_key, cache)

    out = {
        role: [Credential(login, cache[login]["password"], unit) for login, unit in sorted(members[role])]
        for role in members
    }
    out["one_stop"] = [system]
    return out


def write_accounts(path: Path, accounts: dict[str, list[Credential]], admin: tuple[str, str]) -> None:
    data: dict[str, Any] = {
        role: [{"login": c.login, "password": c.password, "unit_code": c.unit_code, "key": c.key} for c in creds]
        for role, creds in accounts.items()
    }
    data["admin"] = [{"login": admin[0], "password": admin[1], "unit_code": ""}]
    path.write_text(json.dumps(data, ensure_ascii=False))
    path.chmod(0o600)
