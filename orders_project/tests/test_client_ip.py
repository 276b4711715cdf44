"""The client's address: X-Forwarded-For counts only from trusted proxies (FORWARDED_ALLOW_IPS),
walked right to left at most API_NUM_PROXIES deep; contradictory settings stop the start."""

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from orders_project import client_ip as client_ip_module
from orders_project.client_ip import client_ip, trusted_proxies_configure


@pytest.fixture
def proxies(settings: Any):
    """Configure the trusted proxies as the environment would: (FORWARDED_ALLOW_IPS, API_NUM_PROXIES)."""

    def configure(forwarded_allow_ips: str, num_proxies: int) -> None:
        settings.API_NUM_PROXIES = num_proxies
        settings.API_TRUSTED_PROXIES = trusted_proxies_configure(
            forwarded_allow_ips=forwarded_allow_ips, num_proxies=num_proxies
        )

    return configure


def _address(remote: str, forwarded: str | None = None) -> str:
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(request)


def test_a_caller_that_is_not_a_trusted_proxy_is_its_own_address_whatever_it_forwards(proxies):
    proxies("10.0.0.0/8", 1)

    assert _address("203.0.113.9", "198.51.100.7") == "203.0.113.9"
    assert _address("203.0.113.9", "10.0.0.5") == "203.0.113.9"


def test_behind_a_trusted_proxy_the_client_is_the_entry_that_proxy_wrote(proxies):
    proxies("10.0.0.0/8", 1)

    # the ingress (10.0.0.2) appended the address it saw; what the client wrote is further left
    assert _address("10.0.0.2", "198.51.100.7") == "198.51.100.7"
    assert _address("10.0.0.2", "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    # a trusted proxy that forwards nothing usable is itself the client
    assert _address("10.0.0.2") == "10.0.0.2"
    assert _address("10.0.0.2", "not-an-address") == "10.0.0.2"
    assert _address("10.0.0.2", "198.51.100.7, ") == "10.0.0.2"


def test_the_walk_stops_at_the_first_address_that_is_not_a_trusted_proxy(proxies):
    # a load balancer (192.0.2.0/24) in front of the ingress (10.0.0.0/8): two hops at most
    proxies("10.0.0.0/8, 192.0.2.0/24", 2)

    # client -> load balancer -> ingress -> app
    assert _address("10.0.0.2", "6.6.6.6, 198.51.100.7, 192.0.2.10") == "198.51.100.7"
    # client -> ingress -> app (bypassing the load balancer): its own entry, not the one it wrote
    assert _address("10.0.0.2", "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    # never deeper than two hops, even through addresses that look like proxies
    assert _address("10.0.0.2", "6.6.6.6, 10.9.9.9, 192.0.2.10") == "10.9.9.9"


def test_ipv6_and_ipv4_mapped_spellings_are_one_client(proxies):
    proxies("10.0.0.0/8, 2001:db8:ffff::/48", 1)

    assert _address("::ffff:10.0.0.2", "::ffff:198.51.100.7") == "198.51.100.7"
    assert _address("2001:db8:ffff::2", "2001:0DB8:0000::0001") == "2001:db8::"
    assert _address("2001:db8:1::2", "198.51.100.7") == "2001:db8:1::"


def test_an_ipv6_client_is_its_64_network_not_one_address_of_it(proxies):
    proxies("10.0.0.0/8", 1)

    # every address of one /64 is the same client; the next /64 is another
    addresses = {_address("10.0.0.2", f"2001:db8:1:2:{n:x}::{n:x}") for n in range(1, 200, 7)}
    assert addresses == {"2001:db8:1:2::"}
    assert _address("10.0.0.2", "2001:db8:1:3::1") == "2001:db8:1:3::"


def test_without_proxies_the_peer_is_the_client(proxies):
    proxies("", 0)

    assert _address("10.0.0.2", "198.51.100.7") == "10.0.0.2"


def test_a_huge_header_is_cut_from_the_right_only_as_deep_as_the_proxies(proxies, monkeypatch):
    # given a 2 MB X-Forwarded-For of a million entries, behind one trusted proxy
    proxies("10.0.0.0/8", 1)
    parsed: list[str] = []
    parse = client_ip_module._address

    def counted(text: str) -> Any:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(client_ip_module, "_address", counted)
    header = "1.1.1.1," * 250_000 + "a," * 750_000 + "198.51.100.7"

    # when the client is looked up
    address = _address("10.0.0.2", header)

    # then only the peer and the one entry the proxy wrote were parsed
    assert address == "198.51.100.7"
    assert parsed == ["10.0.0.2", "198.51.100.7"]


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "num_proxies", "message"),
    [
        ("10.0.0.1/8", 1, "FORWARDED_ALLOW_IPS must list IP addresses or networks .* '10.0.0.1/8' is not one"),
        ("10.0.0.0/8, ingress", 1, "FORWARDED_ALLOW_IPS must list .* 'ingress' is not one"),
        ("", 1, "API_NUM_PROXIES is 1, but FORWARDED_ALLOW_IPS names no proxy"),
        (" , ", 2, "API_NUM_PROXIES is 2, but FORWARDED_ALLOW_IPS names no proxy"),
        ("10.0.0.0/8", 0, r"FORWARDED_ALLOW_IPS trusts proxies \(10.0.0.0/8\), but API_NUM_PROXIES is 0"),
        ("*", 0, r"FORWARDED_ALLOW_IPS trusts proxies \(\*\), but API_NUM_PROXIES is 0"),
    ],
)
def test_contradictory_or_malformed_proxy_settings_are_refused(forwarded_allow_ips, num_proxies, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        trusted_proxies_configure(forwarded_allow_ips=forwarded_allow_ips, num_proxies=num_proxies)


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "num_proxies"),
    [("", 0), ("127.0.0.1,::1", 0), ("127.0.0.1", 1), ("10.0.0.0/8,2001:db8::/32", 1), ("*", 2)],
)
def test_consistent_proxy_settings_are_accepted(forwarded_allow_ips, num_proxies):
    trusted_proxies_configure(forwarded_allow_ips=forwarded_allow_ips, num_proxies=num_proxies)
