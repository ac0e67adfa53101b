"""The console's pages: server-rendered, on the same use cases as the API (scope, rules, audit).

Every page but the sign-in runs behind ``console_auth`` (warehouse/web/session.py), so ``request.user``
is the caller's principal exactly as for the API, and a record outside the caller's units is the same
404. Forms post back with a CSRF token (checked on every write by the console's routers, warehouse/web).
"""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from storage import DossierFilter, InvalidCursor, decode_cursor, encode_cursor
from storage.audit import AuditFilter
from storage.files import File
from warehouse import signin
from warehouse.accounts import (
    change_account,
    create_api_key,
    managed_account,
    provision,
    reset_password,
    revoke_api_key,
    write_credentials,
)
from warehouse.api.schemas import FileOut
from warehouse.api.session import client_address
from warehouse.auth import require_admin, require_writer, visible_subtree
from warehouse.context import Services
from warehouse.dossier_rules import today_local
from warehouse.dossiers import create_dossier, dossier_for_read
from warehouse.errors import Problem
from warehouse.fair_share import LIMIT_KEYS, account_limits
from warehouse.files import reprocess_file
from warehouse.intake import owed_list
from warehouse.messages_vi import DETAILS, TITLES
from warehouse.principal import Principal, readable
from warehouse.refusals import Invalid, NotFound, Refusal
from warehouse.reports import VIETNAM, progress_report, set_target
from warehouse.units import merge_unit
from warehouse.web.i18n import LANG_COOKIE, LANGUAGES, ROLE_NAMES, words
from warehouse.web.session import (
    PASSWORD,
    PREFIX,
    PUBLIC,
    SIGN_IN,
    ended_cookie,
    language,
    local_path,
    session_cookie,
)

Caller = Request[Principal, Any, Any]
PAGE_SIZE = 20
AUDIT_PAGE = 50


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def page(request: Request[Any, Any, Any], name: str, status: int = 200, **context: Any) -> Template:
    lang = language(request)
    user = request.scope.get("user")
    return Template(
        template_name=name,
        context={"t": words(lang), "lang": lang, "user": user, "path": request.url.path, **context},
        status_code=status,
        headers={
            "Content-Language": lang,
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        },
    )


def sentence(request: Request[Any, Any, Any], refusal: Refusal) -> tuple[int, str, str]:
    """A refusal's status, stable code and sentence, in Vietnamese unless the person chose English."""
    problem = Problem.of(refusal)
    detail = problem.detail
    if language(request) == "vi" and problem.code in DETAILS:
        detail = DETAILS[problem.code]
    return problem.status, problem.code, detail


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A refusal as a page, with the right status."""
    if isinstance(exc, Refusal):
        status, code, detail = sentence(request, exc)
    elif isinstance(exc, HTTPException):
        status, code, detail = exc.status_code, "http_error", str(exc.detail)
        if language(request) == "vi":
            detail = TITLES.get(status, detail)
    else:  # pragma: no cover - only the two above are routed here
        raise exc
    t = words(language(request))
    heading = {404: t["not_found"], 403: t["forbidden"], 429: t["too_many"]}.get(status, t["error"])
    answer: Response[Any] = page(request, "error.html", status=status, heading=heading, detail=detail, code=code)
    return answer


def _files_out(files: list[File]) -> list[FileOut]:
    """Rejected files first (what the operator must act on), then those still being inspected."""
    order = {"rejected": 0, "processing": 1, "ready_with_warnings": 2}
    outs = [FileOut.of(f) for f in files if f.state != "deleted"]
    return sorted(outs, key=lambda f: (order.get(f.verdict or "processing", 3), -f.created_at.timestamp()))


def _date(value: Any) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("invalid_date", f"'{text[:20]}' is not a date (YYYY-MM-DD).") from None


async def _accounts_page(request: Caller, unit: str, credentials: Any = None) -> Template:
    """The accounts of the units the administrator manages (under ``unit`` when given), with a new
    one-time password shown once after a reset."""
    require_admin(request.user)
    services = _services(request)
    unit_ids = await visible_subtree(services, request.user, unit or None)
    listed = await services.accounts.list(unit_ids=unit_ids or request.user.read_scope)
    return page(
        request,
        "accounts.html",
        accounts=listed[:500],
        more=len(listed) > 500,
        unit=unit,
        roles=ROLE_NAMES,
        problem=None,
        credentials=credentials,
    )


async def _failed_page(request: Caller, *, sent: str | None) -> Template:
    """The files whose inspection gave up, with the name of the one just sent back."""
    require_admin(request.user)
    files = await _services(request).files.failed(limit=200, scope=request.user.read_scope)
    return page(request, "failed.html", files=[FileOut.of(f) for f in files], sent=sent)


class ConsolePages(Controller):
    """Writes carry the API's operation ids, so the audit trail names a console action as the API's."""

    path = PREFIX
    include_in_schema = False
    exception_handlers = {Refusal: _refused, HTTPException: _refused}

    # -- signing in ---------------------------------------------------------------------------------

    @get("/", name="console_home")
    async def home(self, request: Caller) -> Redirect:
        role = request.user.role
        if role in ("province_admin", "unit_admin"):
            return Redirect(f"{PREFIX}/accounts", status_code=303)
        if role == "viewer":
            return Redirect(f"{PREFIX}/dashboard", status_code=303)
        return Redirect(f"{PREFIX}/dossiers", status_code=303)

    @get("/sign-in", opt={PUBLIC: True})
    async def sign_in_page(self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
        return page(request, "sign_in.html", next=local_path(next), problem=None)

    @post("/sign-in", opt={PUBLIC: True}, status_code=200, operation_id="login")
    async def sign_in(self, request: Request[Any, Any, Any]) -> Response[Any]:
        services = _services(request)
        form = await request.form()
        login, password = str(form.get("login", ""))[:64], str(form.get("password", ""))[:256]
        target = local_path(str(form.get("next", "")) or None)

        def seen(account: Any) -> None:
            request.state.audit_account = account.id
            request.state.audit_unit = account.unit_id

        try:
            if not login or not password:
                raise Invalid("sign_in_fields_missing", "Give your login and password.")
            address = client_address(request, services.settings.trusted_proxies)
            signed = await signin.sign_in(services, login, password, address, seen=seen)
        except Refusal as refusal:
            status, _, detail = sentence(request, refusal)
            return page(request, "sign_in.html", status=status, next=target, problem=detail, login=login)
        where = PASSWORD if signed.account.password_change_required else target
        redirect = Redirect(where, status_code=303)
        redirect.set_cookie(session_cookie(services, request, signed.token, signed.expires_in))
        return redirect

    @post("/sign-out", operation_id="sign_out")
    async def sign_out(self, request: Caller) -> Redirect:
        redirect = Redirect(SIGN_IN, status_code=303)
        redirect.set_cookie(ended_cookie(_services(request), request))
        return redirect

    @get("/password")
    async def password_page(self, request: Caller) -> Template:
        return page(request, "password.html", problem=None, done=False)

    @post("/password", status_code=200, operation_id="change_password")
    async def change_password(self, request: Caller) -> Response[Any]:
        services = _services(request)
        form = await request.form()
        current, new = str(form.get("current_password", ""))[:256], str(form.get("new_password", ""))[:256]
        try:
            if len(new) < 10:
                raise Invalid("password_too_short", "The new password needs at least 10 characters.")
            signed = await signin.change_password(services, request.user.account, current, new)
        except Refusal as refusal:
            status, _, detail = sentence(request, refusal)
            return page(request, "password.html", status=status, problem=detail, done=False)
        redirect = Redirect(PREFIX, status_code=303)
        redirect.set_cookie(session_cookie(services, request, signed.token, signed.expires_in))
        return redirect

    @get("/language", opt={PUBLIC: True})
    async def switch_language(
        self, request: Request[Any, Any, Any], to: FromQuery[str] = "vi", next: FromQuery[str | None] = None
    ) -> Redirect:
        redirect = Redirect(local_path(next), status_code=303)
        redirect.set_cookie(
            LANG_COOKIE, to if to in LANGUAGES else "vi", path=PREFIX, max_age=365 * 86400, samesite="lax"
        )
        return redirect

    # -- dossiers -----------------------------------------------------------------------------------

    @get("/dossiers")
    async def dossiers(
        self,
        request: Caller,
        q: FromQuery[str | None] = None,
        subject_id: FromQuery[str | None] = None,
        valid: FromQuery[str | None] = None,
        procedure: FromQuery[str | None] = None,
        complete: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """A form sends every field, empty ones too: an empty filter is no filter."""
        services = _services(request)
        only_valid = valid == "true"
        completeness = {"true": True, "false": False}.get(complete or "")
        q = (q or "").strip()[:200] or None
        subject_id = (subject_id or "").strip()[:40] or None
        procedure = (procedure or "").strip()[:40] or None
        after = None
        if cursor:
            try:
                after = decode_cursor(cursor)
            except InvalidCursor:
                after = None
        flt = DossierFilter(
            q=q,
            unit_ids=await visible_subtree(services, request.user, None),
            procedure_code=procedure,
            subject_id_number=subject_id,
            valid=True if subject_id and only_valid else None,
            complete=completeness,
        )
        try:
            rows = await services.dossiers.list(flt, scope=request.user.read_scope, limit=PAGE_SIZE + 1, after=after)
        except InvalidCursor:
            rows = await services.dossiers.list(flt, scope=request.user.read_scope, limit=PAGE_SIZE + 1, after=None)
        last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
        next_cursor = encode_cursor(last.created_at, last.id, last.rank, bool(last.fuzzy)) if last else None
        return page(
            request,
            "dossiers.html",
            dossiers=rows[:PAGE_SIZE],
            next_cursor=next_cursor,
            q=q or "",
            subject_id=subject_id or "",
            valid=only_valid,
            procedure=procedure or "",
            complete=completeness,
            can_write=request.user.writes_anything,
        )

    @get("/dossiers/new")
    async def new_dossier_page(self, request: Caller) -> Template:
        require_writer(request.user)
        procedures = await _services(request).catalogue.latest(q=None, limit=500, after=None)
        return page(request, "dossier_new.html", procedures=procedures, problem=None, values={})

    @post("/dossiers/new", status_code=200, operation_id="create_dossier")
    async def create(self, request: Caller) -> Response[Any]:
        require_writer(request.user)
        services = _services(request)
        form = await request.form()
        values_in = {k: str(v)[:500] for k, v in form.items() if isinstance(v, str)}
        try:
            values: dict[str, Any] = {
                "procedure_code": values_in.get("procedure_code", "").strip(),
                "title": values_in.get("title", "").strip() or None,
                "received_on": _date(values_in.get("received_on")) or today_local(),
                "subject_name": values_in.get("subject_name", "").strip(),
                "subject_id_kind": values_in.get("subject_id_kind", "cccd").strip(),
                "subject_id_number": values_in.get("subject_id_number", "").strip(),
            }
            if not values["procedure_code"] or not values["subject_name"] or not values["subject_id_number"]:
                raise Invalid(
                    "dossier_fields_missing", "Choose the procedure and give the applicant's name and ID number."
                )
            number = values_in.get("result_number", "").strip()
            if number:
                values.update(
                    result_number=number,
                    result_issued_on=_date(values_in.get("result_issued_on")),
                    result_issuer=values_in.get("result_issuer", "").strip() or None,
                )
            dossier = await create_dossier(services, request.user, None, None, values)
        except Refusal as refusal:
            status, _, detail = sentence(request, refusal)
            procedures = await services.catalogue.latest(q=None, limit=500, after=None)
            return page(
                request, "dossier_new.html", status=status, procedures=procedures, problem=detail, values=values_in
            )
        return Redirect(f"{PREFIX}/dossiers/{dossier.id}", status_code=303)

    @get("/dossiers/{dossier_id:uuid}")
    async def dossier(self, dossier_id: FromPath[UUID], request: Caller) -> Template:
        services = _services(request)
        dossier = await dossier_for_read(services, request.user, dossier_id)
        files = _files_out(await services.files.for_dossier(dossier.id))
        return page(
            request,
            "dossier.html",
            dossier=dossier,
            files=files,
            can_write=request.user.can_write(dossier.unit_id),
            max_file_bytes=services.settings.max_file_bytes,
        )

    @get("/dossiers/{dossier_id:uuid}/files")
    async def dossier_files(self, dossier_id: FromPath[UUID], request: Caller) -> Template:
        services = _services(request)
        dossier = await dossier_for_read(services, request.user, dossier_id)
        files = _files_out(await services.files.for_dossier(dossier.id))
        return page(request, "_files.html", dossier=dossier, files=files)

    # -- leaders ------------------------------------------------------------------------------------

    @get("/dashboard")
    async def dashboard(
        self, request: Caller, year: FromQuery[str | None] = None, level: FromQuery[str | None] = None
    ) -> Template:
        level = level or None
        if level not in (None, "department", "district", "commune"):
            raise NotFound("not_found", "There is no such level.")
        chosen = int(year) if year and year.isdigit() and len(year) == 4 else None
        report = await progress_report(_services(request), request.user, year=chosen, level=level, parent=None)
        shown = sorted(report.rows, key=lambda r: (r.rate is None, r.rate or 0))
        return page(request, "dashboard.html", report=report, rows=shown, level=level or "")

    # -- administrators -----------------------------------------------------------------------------

    @get("/accounts")
    async def accounts(self, request: Caller, unit: FromQuery[str | None] = None) -> Template:
        return await _accounts_page(request, (unit or "").strip()[:40])

    @post("/accounts/provision", status_code=200, operation_id="provision_accounts")
    async def provision(self, request: Caller) -> Response[Any]:
        require_admin(request.user)
        services = _services(request)
        form = await request.form()
        try:
            per_unit = int(str(form.get("per_unit", "1")) or "1")
        except ValueError:
            per_unit = 0
        parent = str(form.get("parent_unit_code", "")).strip()[:40]
        level = str(form.get("level", "commune"))[:20]
        role = str(form.get("role", "operator"))[:20]
        created = await provision(services, request.user, parent_code=parent, level=level, per_unit=per_unit, role=role)
        request.state.audit_details = {"created": len(created), "parent": parent, "level": level}
        out = io.StringIO()
        write_credentials(out, [(c.login, c.password, c.unit_code, c.unit_name, c.role) for c in created])
        return Response(
            out.getvalue().encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="tai-khoan-{parent.lower()}.csv"',
                "Cache-Control": "no-store",
            },
        )

    @post("/accounts/{account_id:int}/reset", status_code=200, operation_id="reset_password")
    async def reset(self, account_id: FromPath[int], request: Caller) -> Template:
        credentials = await reset_password(_services(request), request.user, account_id)
        return await _accounts_page(request, "", credentials=credentials)

    @post("/accounts/{account_id:int}/state", operation_id="update_account")
    async def set_state(self, account_id: FromPath[int], request: Caller) -> Redirect:
        require_admin(request.user)
        form = await request.form()
        state = "disabled" if str(form.get("state", "")) == "disabled" else "active"
        await change_account(_services(request), request.user, account_id, state=state, role=None, limits=None)
        return Redirect(f"{PREFIX}/accounts", status_code=303)

    # -- operators' work list -----------------------------------------------------------------------

    @get("/owed")
    async def owed(self, request: Caller) -> Template:
        services = _services(request)
        scope = readable(request.user, await visible_subtree(services, request.user, None))
        items = await owed_list(services, request.user, scope, limit=200, after=None)
        return page(request, "owed.html", items=items, today=today_local())

    # -- administrators: the pipeline's failures, the audit trail, targets ---------------------------

    @get("/failed")
    async def failed(self, request: Caller) -> Template:
        return await _failed_page(request, sent=None)

    @post("/failed/{file_id:uuid}/reprocess", status_code=200, operation_id="reprocess_file")
    async def reprocess(self, file_id: FromPath[UUID], request: Caller) -> Template:
        again = await reprocess_file(_services(request), request.user, file_id)
        return await _failed_page(request, sent=again.name)

    @get("/audit")
    async def audit(
        self,
        request: Caller,
        record: FromQuery[str | None] = None,
        login: FromQuery[str | None] = None,
        unit: FromQuery[str | None] = None,
        day: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        require_admin(request.user)
        services = _services(request)
        account_id = None
        if login and login.strip():
            found = await services.accounts.get_by_login(login.strip().lower()[:64])
            account_id = found.id if found is not None else -1
        chosen = _date(day)
        since = datetime.combine(chosen, time.min, tzinfo=VIETNAM) if chosen else None
        until = since + timedelta(days=1) if since else None
        unit_ids = await visible_subtree(services, request.user, (unit or "").strip()[:40] or None)
        cursor = int(before) if before and before.isdigit() else None
        rows = await services.audit.list(
            AuditFilter(
                record_id=(record or "").strip()[:100] or None,
                account_id=account_id,
                unit_ids=unit_ids,
                since=since,
                until=until,
            ),
            scope=request.user.read_scope,
            limit=AUDIT_PAGE + 1,
            before_id=cursor,
        )
        return page(
            request,
            "audit.html",
            events=rows[:AUDIT_PAGE],
            vn=VIETNAM,
            more=rows[AUDIT_PAGE - 1].id if len(rows) > AUDIT_PAGE else None,
            record=record or "",
            login=login or "",
            unit=unit or "",
            day=day or "",
        )

    @get("/targets")
    async def targets(self, request: Caller) -> Template:
        require_admin(request.user)
        report = await progress_report(_services(request), request.user, year=None, level=None, parent=None)
        return page(request, "targets.html", report=report, saved=None)

    @post("/targets", status_code=200, operation_id="set_target")
    async def save_target(self, request: Caller) -> Template:
        services = _services(request)
        form = await request.form()
        try:
            year = int(str(form.get("year", "")))
            total = int(str(form.get("declared_total", "")))
            rate_text = str(form.get("target_percent", "")).strip()
            rate = float(rate_text) / 100 if rate_text else None
        except ValueError:
            raise Invalid("invalid_fields", "Give the year and the declared total as whole numbers.") from None
        saved = await set_target(services, request.user, str(form.get("unit_code", ""))[:40], year, total, rate)
        report = await progress_report(services, request.user, year=year, level=None, parent=None)
        return page(request, "targets.html", report=report, saved=saved)

    # -- API keys and the unit tree -------------------------------------------------------------------

    @get("/api-keys")
    async def api_keys(self, request: Caller) -> Template:
        keys = await _services(request).api_keys.list(request.user.account.id)
        return page(request, "api_keys.html", keys=keys, made=None, problem=None)

    @post("/api-keys", status_code=200, operation_id="create_api_key")
    async def make_api_key(self, request: Caller) -> Template:
        services = _services(request)
        form = await request.form()
        codes = [c.strip() for c in str(form.get("units", "")).replace(";", ",").split(",") if c.strip()][:300]
        status, problem, made = 200, None, None
        try:
            key, secret = await create_api_key(services, request.user, str(form.get("label", ""))[:200], codes or None)
            made = (key.label, secret)
        except Refusal as refusal:
            status, _, problem = sentence(request, refusal)
        keys = await services.api_keys.list(request.user.account.id)
        return page(request, "api_keys.html", status=status, keys=keys, made=made, problem=problem)

    @post("/api-keys/{key_id:int}/revoke", operation_id="revoke_api_key")
    async def revoke_key(self, key_id: FromPath[int], request: Caller) -> Redirect:
        await revoke_api_key(_services(request), request.user, key_id)
        return Redirect(f"{PREFIX}/api-keys", status_code=303)

    @get("/units")
    async def units(self, request: Caller) -> Template:
        units = await _services(request).units.find(
            level=None, parent_id=None, scope=request.user.read_scope, include_retired=True
        )
        order = {"province": 0, "district": 1, "commune": 2}
        by_parent: dict[str | None, list[Any]] = {}
        for u in sorted(units, key=lambda u: (order.get(u.level, 3), u.code)):
            by_parent.setdefault(u.parent_code, []).append(u)
        codes = {u.code for u in units}
        roots = [u for u in units if u.parent_code not in codes]
        return page(
            request,
            "units.html",
            roots=sorted(roots, key=lambda u: u.code),
            children=by_parent,
            can_merge=request.user.role == "province_admin",
            problem=None,
            merged=None,
        )

    @post("/units/merge", status_code=200, operation_id="merge_unit")
    async def merge(self, request: Caller) -> Redirect:
        services = _services(request)
        form = await request.form()
        code, into = str(form.get("code", "")).strip()[:40], str(form.get("into", "")).strip()[:40]
        effective = _date(form.get("effective_on")) or today_local()
        merged = await merge_unit(services, request.user, code, into=into, effective_on=effective)
        request.state.audit_record_type, request.state.audit_record_id = "unit", merged.code
        return Redirect(f"{PREFIX}/units", status_code=303)

    @get("/accounts/{account_id:int}")
    async def account(self, account_id: FromPath[int], request: Caller) -> Template:
        require_admin(request.user)
        services = _services(request)
        managed = await managed_account(services, request.user, account_id)
        return page(
            request,
            "account.html",
            account=managed,
            limits=account_limits(services.settings, managed),
            keys=LIMIT_KEYS,
        )

    @post("/accounts/{account_id:int}/limits", operation_id="update_account")
    async def set_limits(self, account_id: FromPath[int], request: Caller) -> Redirect:
        require_admin(request.user)
        form = await request.form()
        limits: dict[str, Any] = {}
        for key in LIMIT_KEYS:
            text = str(form.get(key, "")).strip()
            if text:
                if not text.isdigit() or len(text) > 7:
                    raise Invalid("invalid_limits", f"limits take whole numbers from 1 to 1000000 ({key}).")
                limits[key] = int(text)
        await change_account(_services(request), request.user, account_id, state=None, role=None, limits=limits)
        return Redirect(f"{PREFIX}/accounts/{account_id}", status_code=303)
