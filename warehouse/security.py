"""Password hashing (argon2id) and access tokens (JWT)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

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


class Passwords:
    """argon2id with the configured cost. Hashes made with other parameters still verify, and are
    replaced at the next successful login (``needs_rehash``)."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        if password_hash.startswith(_ONE_TIME):
            return hmac.compare_digest(hash_one_time_password(password), password_hash)
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(_ONE_TIME) and self._hasher.check_needs_rehash(password_hash)

    async def hash_async(self, password: str) -> str:
        """Argon2 is deliberately slow: keep it off the event loop."""
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify, password_hash, password)


def generate_password(length: int = 14) -> str:
    """A one-time password that reads unambiguously over the phone (no 0/O, 1/l/I)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    account_id: int
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    pass


def issue_token(secret: str, account_id: int, ttl_seconds: int) -> str:
    now = int(time.time())
    payload = {"sub": str(account_id), "iat": now, "exp": now + ttl_seconds, "typ": "access"}
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def read_token(secret: str, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "exp", "iat"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload.get("typ") != "access":
        raise InvalidToken("not an access token")
    try:
        return TokenClaims(int(payload["sub"]), int(payload["iat"]), int(payload["exp"]))
    except (TypeError, ValueError) as exc:
        raise InvalidToken("malformed subject") from exc
