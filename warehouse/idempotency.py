"""Idempotency-Key on every POST that creates something: the same key from the same account gets the
first answer again; the same key with a different request is a 422.

A commune's link drops after the request reached the warehouse but before the answer came back; the
client sends it again with the same key and must not make a second dossier (or a second batch of
accounts). File uploads and upload sessions keep their own rules (the body is a stream); this
middleware serves every other JSON POST under /api/v1. Answers of 5xx are not kept, so a retry after
a fault on our side runs again. Kept answers expire after ``idempotency_ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from warehouse.errors import Problem

_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
# POSTs that create nothing (sign-in, password change) or keep their own idempotency (streamed bodies).
_EXEMPT = re.compile(r"^/api/v1/(auth/login|me/password|dossiers/[^/]+/files|uploads/[^/]+/complete)$")
_MAX_BODY = 1024 * 1024


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        key = MutableScopeHeaders(scope).get("idempotency-key")
        path: str = scope["path"]
        principal = scope.get("user")
        if not key or _EXEMPT.match(path) or principal is None:
            await app(scope, receive, send)
            return
        if not _KEY.fullmatch(key):
            raise Problem(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 visible ASCII characters.")
        # The body is small JSON (the app refuses more than 1 MiB): read it, then hand it on.
        chunks: list[bytes] = []
        more = True
        while more:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.disconnect":
                # The link dropped before the whole request arrived: nothing is claimed under the key
                # (a partial body would otherwise make the client's retry 'a different request').
                return
            chunks.append(bytes(message.get("body", b"")))
            more = bool(message.get("more_body", False))
            if sum(map(len, chunks)) > _MAX_BODY:
                raise Problem(
                    413,
                    "body_too_large",
                    f"The request body is larger than the {_MAX_BODY // 1024} KiB this endpoint takes. "
                    "Send a smaller request.",
                )
        body = b"".join(chunks)
        sent = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        services = scope["app"].state.services
        account_id: int = principal.account.id
        digest = hashlib.sha256(path.encode() + b"\0" + body).hexdigest()
        earlier = await services.idempotency.claim(
            account_id, key, f"POST {path}", digest, abandoned_after=services.settings.idempotency_claim_seconds
        )
        if earlier is not None:
            if earlier.endpoint != f"POST {path}" or earlier.request_sha256 != digest:
                raise Problem(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used for a different request. Use a new key for each "
                    "new thing you create.",
                )
            if earlier.status is None:
                raise Problem(
                    409,
                    "idempotency_in_progress",
                    "The first request with this Idempotency-Key is still being answered. Try again shortly.",
                    headers={"Retry-After": "1"},
                )
            headers = [(k.encode(), v.encode()) for k, v in (earlier.headers or {}).items()]
            headers.append((b"idempotent-replayed", b"true"))
            await send({"type": "http.response.start", "status": earlier.status, "headers": headers})
            await send({"type": "http.response.body", "body": earlier.body or b"", "more_body": False})
            return

        status = 500
        kept_headers: dict[str, str] = {}
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    lowered = name.decode("latin-1").lower()
                    if lowered in ("content-type", "location"):
                        kept_headers[lowered] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_receive, capture)
        except BaseException:
            await services.idempotency.release(account_id, key)
            raise
        if status >= 500:
            await services.idempotency.release(account_id, key)
        else:
            await services.idempotency.remember(account_id, key, status, kept_headers, b"".join(parts))

    return middleware
