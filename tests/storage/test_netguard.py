"""Where a push delivery may go: the addresses the SSRF guard lets through, and the URLs it takes."""

from __future__ import annotations

import pytest

from storage.netguard import ReceiverRefused, _public, check_url, resolve_receiver


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.20.30.40", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # the cloud metadata service
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4 inside IPv6, judged as itself
        ("2002:7f00:1::", False),
        ("64:ff9b::a00:1", False),
        ("64:ff9b::808:808", True),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert _public(address) is public


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "https://u:p@example.org/x", "https://example.org/x#frag", "https:///x", "http://[::1"],
)
def test_urls_a_receiver_may_not_have(url: str) -> None:
    with pytest.raises(ReceiverRefused):
        check_url(url, require_https=False)


def test_https_is_required_unless_the_setting_says_otherwise() -> None:
    with pytest.raises(ReceiverRefused, match="https://"):
        check_url("http://example.org/hook", require_https=True)
    assert check_url("http://example.org:8080/hook", require_https=False) == ("http", "example.org", 8080)


@pytest.mark.asyncio
async def test_a_name_that_resolves_to_loopback_is_refused_unless_private_receivers_are_allowed() -> None:
    with pytest.raises(ReceiverRefused, match="loopback, private or reserved"):
        await resolve_receiver("localhost", 443, allow_private=False)
    assert await resolve_receiver("localhost", 443, allow_private=True) in ("127.0.0.1", "::1")
