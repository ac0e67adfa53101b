"""Who is using the console: a sign-in kept in an HttpOnly cookie, checked exactly as the API checks a
bearer token (the same token, account state, credentials version, one-time password and fair-share
limits), and the caller's principal attached for the pages and the audit trail.

The cookie holds the same signed token the API issues, so ending sign-ins (a password change or reset)
ends the console's too. It is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` and ``Secure`` when
the request came over HTTPS (or always, by setting). Forms carry a CSRF token besides (see
``warehouse.web``); the API never reads this cookie, so it needs none.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect
from litestar.types import ASGIApp, Receive, Scope, Send

from storage import Account
from warehouse.api.session import trusted
from warehouse.auth import account_for_token
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.fair_share import check_request, rate_headers, reset_seconds
from warehouse.principal import principal_for
from warehouse.web.i18n import LANG_COOKIE, LANGUAGES

SESSION_COOKIE = "kho_session"
PREFIX = "/console"
SIGN_IN = f"{PREFIX}/sign-in"
PASSWORD = f"{PREFIX}/password"
PUBLIC = "console_public"  # route opt: served without a sign-in (the sign-in page, static files)


def language(request: Request[Any, Any, Any]) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else "vi"


def secure_cookies(services: Services, request: Request[Any, Any, Any]) -> bool:
    """Whether the console's cookies carry ``Secure``: by setting, or (auto) when the request came over
    HTTPS, directly or through a trusted proxy that says so in ``X-Forwarded-Proto``."""
    mode = services.settings.console_cookie_secure
    if mode != "auto":
        return mode == "always"
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and trusted(peer, services.settings.trusted_proxies)


def session_cookie(services: Services, request: Request[Any, Any, Any], token: str, max_age: int) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path=PREFIX,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(services, request),
    )


def ended_cookie(services: Services, request: Request[Any, Any, Any]) -> Cookie:
    return session_cookie(services, request, "", 0)


def local_path(target: str | None, default: str = PREFIX) -> str:
    """``target`` when it is a path of the console (never another site, so no open redirect), written
    in visible ASCII only (no line break can reach the Location header)."""
    if not target or any(not 0x21 <= ord(c) <= 0x7E for c in target) or "//" in target or "\\" in target:
        return default
    if target == PREFIX or target.startswith(PREFIX + "/") or target.startswith(PREFIX + "?"):
        return target
    return default


async def signed_in_account(services: Services, request: Request[Any, Any, Any]) -> Account | None:
    """The active account the cookie's token belongs to, checked as the API checks a bearer token."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    try:
        account = await account_for_token(services, token)
    except Problem:
        return None
    return account if account.state == "active" else None


def console_auth(app: ASGIApp) -> ASGIApp:
    """Route middleware of the console: redirect to the sign-in page without a good sign-in, to the
    password page while a one-time password is in use, and count the request against the account's
    fair-share limits as the API does."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get(PUBLIC):
            await app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = Request(scope, receive)
        services: Services = scope["app"].state.services
        account = await signed_in_account(services, request)
        answer: Response[Any] | None = None
        if account is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.url.path.startswith(f"{PREFIX}/api/"):
                answer = Response(
                    {"code": "unauthenticated", "detail": "Your sign-in has ended. Sign in again."},
                    status_code=401,
                    media_type="application/json",
                )
            else:
                answer = Redirect(f"{SIGN_IN}?next={quote(local_path(wanted))}", status_code=303)
            answer.set_cookie(ended_cookie(services, request))
        elif account.password_change_required and request.url.path != PASSWORD:
            answer = Redirect(PASSWORD, status_code=303)
        else:
            rate, over = await check_request(services, account)
            if over is not None and rate is not None:
                answer = Response(
                    "Quá nhiều yêu cầu / Too many requests",
                    status_code=429,
                    media_type="text/plain; charset=utf-8",
                    headers={"Retry-After": str(reset_seconds(rate)), **rate_headers(rate)},
                )
        if answer is not None or account is None:
            assert answer is not None
            await answer.to_asgi_response(None, request)(scope, receive, send)
            return
        scope["user"] = await principal_for(services, account)
        await app(scope, receive, send)

    return middleware
