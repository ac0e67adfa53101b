"""Password hashing (argon2id) and access tokens (JWT)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage import Settings

_ALGORITHM = "HS256"
_ONE_TIME = "sha256$"


def hash_one_time_password(password: str) -> str:
    """A generated one-time password carries ~80 random bits, so, like an API key, a fast hash keeps it
    safe; provisioning a district's 600 accounts then takes a moment, not minutes of argon2. The
    password the user chooses next is stored with argon2id."""
    return _ONE_TIME + hashlib.sha256(password.encode()).hexdigest()


class PasswordChecksBusy(Exception):
    """More sign-ins are waiting for a password check than the process takes on."""


class Passwords:
    """argon2id with the configured cost. Hashes made with other parameters still verify, and are
    replaced at the next successful login (``needs_rehash``).

    Checks run on a pool of ``concurrency`` threads (each argon2 check holds ``memory_kib``), with at
    most ``queue`` more waiting; past that ``PasswordChecksBusy``. Every check costs the same whether
    the login exists, has a one-time password or a chosen one, so timing tells nothing about accounts.
    """

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int = 2, queue: int = 64
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Checked in place of a missing account's hash: the same parameters, so the same cost (made up,
        # not computed: computing one at start would cost its memory before anyone signs in).
        salt, digest = (base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=") for n in (16, 32))
        self._dummy = f"$argon2id$v=19$m={memory_kib},t={time_cost},p={parallelism}${salt}${digest}"
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        self._limit = concurrency + queue
        self._in_use = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
            concurrency=settings.login_concurrency,
            queue=settings.login_queue,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _argon2(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; None stands for an account that does not exist."""
        if password_hash is None:
            self._argon2(self._dummy, password)
            return False
        if password_hash.startswith(_ONE_TIME):
            self._argon2(self._dummy, password)
            return hmac.compare_digest(hash_one_time_password(password), password_hash)
        return self._argon2(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(_ONE_TIME) and self._hasher.check_needs_rehash(password_hash)

    async def _bounded(self, fn: Any, *args: Any) -> Any:
        if self._in_use >= self._limit:
            raise PasswordChecksBusy
        self._in_use += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
        finally:
            self._in_use -= 1

    async def hash_async(self, password: str) -> str:
        """Argon2 is deliberately slow: keep it off the event loop, on the bounded pool."""
        result: str = await self._bounded(self.hash, password)
        return result

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        result: bool = await self._bounded(self.verify, password_hash, password)
        return result


def generate_password(length: int = 14) -> str:
    """A one-time password that reads unambiguously over the phone (no 0/O, 1/l/I)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    account_id: int
    issued_at: int
    expires_at: int
    credentials_version: int


class InvalidToken(Exception):
    pass


def issue_token(secret: str, account_id: int, ttl_seconds: int, *, credentials_version: int) -> str:
    """An access token; it stops working when the account's credentials version moves on."""
    now = int(time.time())
    payload = {
        "sub": str(account_id),
        "iat": now,
        "exp": now + ttl_seconds,
        "typ": "access",
        "ver": credentials_version,
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def read_token(secret: str, token: str) -> TokenClaims:
    """The claims of a valid, unexpired access token. A token is verified once and its claims kept
    (a bounded cache: every request of a sign-in carries the same token); its expiry is checked each time."""
    claims = _verified(secret, token)
    if claims.expires_at <= time.time():
        raise InvalidToken("Signature has expired")
    return claims


@functools.lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "exp", "iat", "ver"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload.get("typ") != "access":
        raise InvalidToken("not an access token")
    try:
        return TokenClaims(int(payload["sub"]), int(payload["iat"]), int(payload["exp"]), int(payload["ver"]))
    except (TypeError, ValueError) as exc:
        raise InvalidToken("malformed subject") from exc
