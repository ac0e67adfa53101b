"""Sharing outward: the change feed read by other systems, and the push subscriptions administrators
register for them (the worker's dispatcher, workers/deliveries.py, sends the deliveries)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from storage.feed import KINDS, Change, Feed, Subscription, SubscriptionStats
from storage.netguard import ReceiverRefused, check_url, resolve_receiver
from warehouse.auth import Principal, require_admin, visible_subtree, visible_unit
from warehouse.context import Services
from warehouse.refusals import Conflict, Invalid, NotFound

PROFILES = {
    # the warehouse's own shape: every kind, each change as the feed shows it
    "warehouse": KINDS,
    # the national public service portal's result store: digitized results issued and withdrawn
    "portal": ("result.issued", "result.withdrawn"),
}
_CURSOR = re.compile(r"^([0-9a-f]{12})\.([0-9]{1,18})$")


def encode_cursor(instance: UUID, pos: int) -> str:
    return f"{instance.hex[:12]}.{pos}"


async def decode_cursor(feed: Feed, cursor: str | None) -> int:
    """The position a cursor stands for; one from another warehouse, or malformed, is refused."""
    if cursor is None or cursor == "":
        return 0
    m = _CURSOR.match(cursor)
    if m is None:
        raise Invalid(
            "invalid_cursor", "The cursor is not one this feed gave out; use the 'next' value of the last page read."
        )
    if m.group(1) != (await feed.instance()).hex[:12]:
        raise Invalid(
            "cursor_from_another_warehouse",
            "The cursor comes from another warehouse (or one restored from elsewhere); read this feed from the "
            "beginning, leaving 'after' out.",
        )
    pos = int(m.group(2))
    if pos > await feed.head():
        raise Conflict(
            "cursor_ahead",
            "The cursor is ahead of this feed: the warehouse was restored from an earlier copy. Read again from "
            "the beginning and keep each record's highest version.",
        )
    return pos


def parse_kinds(kinds: str | list[str] | None, allowed: tuple[str, ...] = KINDS) -> list[str] | None:
    if kinds is None or kinds == "" or kinds == []:
        return None
    wanted = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in wanted if k not in allowed]
    if unknown:
        raise Invalid(
            "unknown_kind",
            f"Unknown kind {unknown[0]!r}; the kinds here are: {', '.join(allowed)}.",
            extra={"kinds": list(allowed)},
        )
    return sorted(set(wanted))


@dataclass(frozen=True, slots=True)
class FeedView:
    changes: list[Change]
    next: str
    more: bool


async def read_feed(
    services: Services, principal: Principal, *, after: str | None, kinds: str | None, unit: str | None, limit: int
) -> FeedView:
    """One page of the changes the caller may see, oldest first, and the cursor to read on from."""
    feed = services.feed
    position = await decode_cursor(feed, after)
    wanted = parse_kinds(kinds)
    units = await visible_subtree(services, principal, unit)
    if units is None:
        units = principal.read_scope
    await feed.sequence()  # a reader sees its own changes without waiting for a worker's round
    page = await feed.read(position, units=units, kinds=wanted, limit=limit, window=services.settings.feed_scan_window)
    return FeedView(page.changes, encode_cursor(await feed.instance(), page.next), page.next < page.head)


async def end_cursor(services: Services) -> str:
    feed = services.feed
    await feed.sequence()
    return encode_cursor(await feed.instance(), await feed.head())


# -- subscriptions ---------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    sub: Subscription
    units: list[str] | None
    stats: SubscriptionStats
    secret: str | None = None  # only when it was just made

    def out(self) -> dict[str, Any]:
        s, st = self.sub, self.stats
        now = datetime.now(UTC)
        return {
            "id": s.id,
            "name": s.name,
            "url": s.url,
            "profile": s.profile,
            "kinds": s.kinds,
            "units": self.units,
            "state": s.state,
            "paused_reason": s.paused_reason,
            "paused_at": s.paused_at,
            "pending": st.pending,
            "dead": st.dead,
            "behind": max(0, st.head - s.cursor),
            "oldest_pending_at": st.oldest_pending_at,
            "lag_seconds": round((now - st.oldest_pending_at).total_seconds(), 3) if st.oldest_pending_at else 0.0,
            "last_delivered_at": s.last_delivered_at,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at,
            "last_status": s.last_status,
            "retry_at": s.retry_at if s.retry_at and s.retry_at > now else None,
            "previous_secret_until": s.previous_until if s.previous_until and s.previous_until > now else None,
            "created_by": s.created_by,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
            "secret": self.secret,
        }


async def view(services: Services, sub: Subscription, secret: str | None = None) -> SubscriptionView:
    codes = None
    if sub.unit_ids is not None:
        codes = [u.code for uid in sub.unit_ids if (u := await services.units.get(uid)) is not None]
    return SubscriptionView(sub, codes, await services.subscriptions.stats(sub.id), secret)


def manages(principal: Principal, sub: Subscription) -> bool:
    if principal.role not in ("province_admin", "unit_admin"):
        return False
    if principal.write_scope is None:
        return True
    return sub.unit_ids is not None and all(principal.can_write(u) for u in sub.unit_ids)


async def subscription_for(services: Services, principal: Principal, sub_id: UUID) -> Subscription:
    """The subscription, if the caller administers every unit it covers; 404 otherwise."""
    sub = await services.subscriptions.get(sub_id)
    if sub is None or not manages(principal, sub):
        raise NotFound("subscription_not_found", "There is no subscription with this id that you manage.")
    return sub


async def _units(services: Services, principal: Principal, codes: list[str] | None) -> list[int] | None:
    if codes is None:
        if principal.write_scope is None:
            return None  # the province administrator: every unit
        if not principal.can_write(principal.account.unit_id):  # an API key bound to some units only
            raise Invalid("units_required", "Name the units the subscription is for: your key is bound to some units.")
        return [principal.account.unit_id]
    if not codes:
        raise Invalid("units_required", "Name at least one unit, or leave 'units' out for your own.")
    ids = set()
    for code in codes:
        unit = await visible_unit(services, principal, code)
        if not principal.can_write(unit.id):
            raise NotFound("unit_not_found", f"There is no unit with code {code!r} that you administer.")
        ids.add(unit.id)
    return sorted(ids)


async def check_receiver(services: Services, url: str) -> str:
    settings = services.settings
    try:
        _scheme, host, port = check_url(url, require_https=settings.webhook_require_https)
        await resolve_receiver(host, port, allow_private=settings.webhook_allow_private)
    except ReceiverRefused as exc:
        raise Invalid("receiver_refused", str(exc)) from None
    return url


def _kinds(profile: str, kinds: list[str] | None) -> list[str]:
    allowed = PROFILES[profile]
    return parse_kinds(kinds, allowed) or list(allowed)


async def create_subscription(
    services: Services,
    principal: Principal,
    *,
    name: str,
    url: str,
    profile: str,
    kinds: list[str] | None,
    units: list[str] | None,
    start: str,
) -> SubscriptionView:
    require_admin(principal)
    unit_ids = await _units(services, principal, units)
    wanted = _kinds(profile, kinds)
    await check_receiver(services, url)
    limit = services.settings.webhook_max_subscriptions
    if await services.subscriptions.count_for_unit(principal.account.unit_id) >= limit:
        raise Conflict(
            "too_many_subscriptions",
            f"Your unit's administrators have {limit} subscriptions, the most allowed; delete one first.",
        )
    secret = new_secret()
    sub = await services.subscriptions.create(
        name=name.strip(),
        url=url,
        profile=profile,
        kinds=wanted,
        unit_ids=unit_ids,
        secret=secret,
        from_beginning=start == "beginning",
        created_by=principal.account.id,
    )
    return await view(services, sub, secret)


async def change_subscription(
    services: Services, principal: Principal, sub: Subscription, changes: dict[str, Any]
) -> SubscriptionView:
    fields: dict[str, Any] = {}
    if changes.get("name") is not None:
        fields["name"] = changes["name"].strip()
    if changes.get("url") is not None:
        fields["url"] = await check_receiver(services, changes["url"])
    profile = changes.get("profile") or sub.profile
    if changes.get("profile") is not None or changes.get("kinds") is not None:
        fields["profile"] = profile
        fields["kinds"] = _kinds(profile, changes.get("kinds") or (sub.kinds if profile == sub.profile else None))
    if changes.get("units") is not None:
        fields["unit_ids"] = await _units(services, principal, changes["units"])
    if fields:
        updated = await services.subscriptions.update(sub.id, **fields)
        if updated is None:
            raise NotFound("subscription_not_found", "There is no subscription with this id that you manage.")
        sub = updated
    return await view(services, sub)


async def rotate_secret(services: Services, sub: Subscription) -> SubscriptionView:
    secret = new_secret()
    updated = await services.subscriptions.rotate_secret(
        sub.id, secret, services.settings.webhook_secret_overlap_hours * 3600
    )
    if updated is None:
        raise NotFound("subscription_not_found", "There is no subscription with this id that you manage.")
    return await view(services, updated, secret)
