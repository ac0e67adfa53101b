"""Where the warehouse may send a delivery: the receiver's address checked before every connection.

A receiver's URL is an administrator's input, and the warehouse runs inside the province's network:
without a check, a subscription could make the workers call the metadata service, the database's
host or an intranet page (server-side request forgery). ``resolve_receiver`` resolves the host and
refuses it when any of its addresses is loopback, private, link-local or otherwise not public
(unless private receivers are allowed); the caller then connects to the address it checked, so a
second lookup cannot answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

RESOLVE_SECONDS = 5.0


class ReceiverRefused(ValueError):
    """The URL may not be delivered to; the message says why, for the administrator."""


def check_url(url: str, *, require_https: bool) -> tuple[str, str, int]:
    """The scheme, host and port of a receiver's URL, or ReceiverRefused."""
    if len(url) > 2000:
        raise ReceiverRefused("The address is longer than 2,000 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ReceiverRefused("The address is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise ReceiverRefused("The address must start with https:// (or http://).")
    if require_https and parts.scheme != "https":
        raise ReceiverRefused("The address must start with https://: deliveries carry citizens' records.")
    if not parts.hostname:
        raise ReceiverRefused("The address has no host name.")
    if parts.username is not None or parts.password is not None:
        raise ReceiverRefused("The address may not carry a user name or password; use the signing secret.")
    if parts.fragment:
        raise ReceiverRefused("The address may not have a #fragment.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # an IPv4 address carried inside an IPv6 one is judged as itself
        if ip.teredo is not None:
            return False
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return _public(str(inner))
    return ip.is_global and not ip.is_multicast


async def resolve_receiver(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to for ``host``: every address it resolves to must be public unless
    ``allow_private``. Raises ReceiverRefused."""
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=RESOLVE_SECONDS
        )
    except TimeoutError:
        raise ReceiverRefused(f"The host name {host!r} did not resolve within {RESOLVE_SECONDS:g} s.") from None
    except (socket.gaierror, UnicodeError) as exc:
        raise ReceiverRefused(f"The host name {host!r} does not resolve ({exc}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ReceiverRefused(f"The host name {host!r} does not resolve.")
    if not allow_private:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise ReceiverRefused(
                f"{host} resolves to {', '.join(private)}, a loopback, private or reserved address; this "
                "warehouse delivers only to public addresses (WAREHOUSE_WEBHOOK_ALLOW_PRIVATE)."
            )
    return addresses[0]
