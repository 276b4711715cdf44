"""The address of the client: one home for everything that counts clients (API
throttling, failed authentications, login lockout) so they all count the same one.

X-Forwarded-For is a list that every proxy appends its own peer's address to,
so each entry is only as trustworthy as whoever wrote it. The peer of this
process (REMOTE_ADDR) is the client, unless it is one of our proxies, named by
FORWARDED_ALLOW_IPS (the variable gunicorn reads for X-Forwarded-Proto too, one
list for both). From a trusted peer the last entry is that proxy's own peer;
walking right to left, an entry is taken while the address reached so far is a
trusted proxy, at most API_NUM_PROXIES entries deep. Whatever lies further left
was written by the client and proves nothing: a caller that reaches the port
directly, or sends its own X-Forwarded-For through the ingress, is counted by
the address the last trusted hop saw.

An IPv6 client is its /64 (one subscriber's share), not one address of it.

The header is cut from the right only API_NUM_PROXIES times (str.rsplit with a
limit): linear in its length, and no list of every entry, however long it is.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The part of an IPv6 address one client controls (what a subscriber is assigned).
CLIENT_IPV6_PREFIX = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose X-Forwarded-For entries count: networks, or every peer ("*")."""

    networks: tuple[Network, ...] = ()
    everyone: bool = False

    def trusts(self, address: Address) -> bool:
        return self.everyone or any(address in network for network in self.networks)

    def beyond_loopback(self) -> bool:
        """Whether any proxy outside this host is trusted (what only API_NUM_PROXIES > 0 makes use of)."""
        return self.everyone or any(
            not (network.network_address.is_loopback and network.broadcast_address.is_loopback)
            for network in self.networks
        )


def trusted_proxies_configure(*, forwarded_allow_ips: str, num_proxies: int) -> TrustedProxies:
    """FORWARDED_ALLOW_IPS read as gunicorn reads it, checked against API_NUM_PROXIES at start.

    Entries are addresses or networks ("10.0.0.0/8", host bits clear, as gunicorn
    demands) separated by commas, or "*". Refused, naming the variable: a malformed
    entry; proxies counted (API_NUM_PROXIES > 0) but none named, so X-Forwarded-For
    would never be read and every client would share the proxy's address; proxies
    named but none counted, which is the same outcome from the other side.
    """
    entries = [entry.strip() for entry in forwarded_allow_ips.split(",") if entry.strip()]
    networks: list[Network] = []
    for entry in entries:
        if entry == "*":
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"Environment variable FORWARDED_ALLOW_IPS must list IP addresses or networks (CIDR) separated "
                f"by commas, or '*'; {entry!r} is not one ({exc})."
            ) from None
    trusted = TrustedProxies(networks=tuple(networks), everyone="*" in entries)
    if num_proxies > 0 and not entries:
        raise ImproperlyConfigured(
            f"Environment variable API_NUM_PROXIES is {num_proxies}, but FORWARDED_ALLOW_IPS names no proxy: "
            "X-Forwarded-For is read only from the proxies it names (the ingress controller's addresses), "
            "so every client would be counted as the proxy. Set FORWARDED_ALLOW_IPS, or API_NUM_PROXIES=0."
        )
    if num_proxies == 0 and trusted.beyond_loopback():
        raise ImproperlyConfigured(
            f"Environment variable FORWARDED_ALLOW_IPS trusts proxies ({forwarded_allow_ips}), but API_NUM_PROXIES "
            "is 0: every client behind them would be counted as the proxy (one login lockout and one rate for "
            "all). Set API_NUM_PROXIES to the number of proxies that append to X-Forwarded-For."
        )
    return trusted


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # One client, one spelling: "::ffff:192.0.2.1" is 192.0.2.1 (a counter keyed on the
    # text would otherwise give each spelling a budget of its own).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(request: Any) -> str:
    """The client's address; also AXES_CLIENT_IP_CALLABLE (which passes the request only)."""
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR", ""))
    address = _address(remote)
    if address is None:
        return remote  # not an IP peer (a UNIX socket): nothing to walk from
    hops = settings.API_NUM_PROXIES
    trusted: TrustedProxies = settings.API_TRUSTED_PROXIES
    if hops > 0 and trusted.trusts(address):
        entries = str(meta.get("HTTP_X_FORWARDED_FOR", "")).rsplit(",", hops)[-hops:]
        for entry in reversed(entries):
            forwarded = _address(entry)
            if forwarded is None:
                break  # a trusted proxy passed on something that is no address: it is the client
            address = forwarded
            if not trusted.trusts(address):
                break
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 subscriber holds a whole /64 (RFC 6177): counted per address, it could take
        # a fresh one for every guess. Its /64 is the client ("2001:db8:1:2::").
        return str(ipaddress.IPv6Network((address, CLIENT_IPV6_PREFIX), strict=False).network_address)
    return str(address)
