"""Which IP addresses an outbound call may reach, and which host spellings are IP addresses.

Pure functions, no DNS. ``is_public_address`` is the single rule both the URL check and the
resolver apply, so a literal in a URL and an answer from DNS are judged the same way.

The rule is deliberately stricter than ``ipaddress``'s ``is_global`` alone: that property
changes between Python patch releases (3.11.10 / 3.12.4 reclassified parts of 192.0.0.0/24)
and calls multicast "global", so the refused ranges are also listed here explicitly.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def _networks(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ip_network(cidr) for cidr in cidrs)


# IPv4 ranges an outbound call never reaches (IANA special-purpose registry plus cloud
# platform addresses). Each entry says why it is here.
REFUSED_IPV4: tuple[IPNetwork, ...] = _networks(
    "0.0.0.0/8",  # "this network"; Linux connects 0.0.0.0 to the local host
    "10.0.0.0/8",  # RFC 1918 private
    "100.64.0.0/10",  # CGNAT shared space; also Alibaba Cloud metadata 100.100.100.200
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local; cloud metadata 169.254.169.254 (AWS, GCP, Azure)
    "172.16.0.0/12",  # RFC 1918 private
    "192.0.0.0/24",  # IETF protocol assignments; Oracle Cloud metadata 192.0.0.192
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",  # RFC 1918 private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, includes broadcast 255.255.255.255
    "168.63.129.16/32",  # Azure WireServer: public-looking, but answers the host platform
)

# Only 2000::/3 is allocated for global unicast; everything outside it (::/8 with the
# IPv4-compatible and SIIT forms, 64:ff9b:1::/48, 100::/64, fc00::/7 ULA including AWS
# metadata fd00:ec2::254, fe80::/10, fec0::/10, ff00::/8 multicast, ...) is refused by that
# one rule. These are the non-public ranges inside 2000::/3.
GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
REFUSED_IPV6: tuple[IPNetwork, ...] = _networks(
    "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
)

# Forms that carry an IPv4 address the packet really goes to; judged by that address.
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")  # dual-stack sockets connect to the IPv4 inside
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")  # a NAT64 gateway forwards to the IPv4 inside
_SIX_TO_FOUR = IPv6Network("2002::/16")  # 6to4 tunnels to the IPv4 in bits 16..48


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 address reaches."""
    if ip in _IPV4_MAPPED or ip in _NAT64_WELL_KNOWN:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    return None


def without_scope(ip: IPAddress) -> IPAddress:
    """``fe80::1%eth0`` -> ``fe80::1``: the zone picks an interface, not a different range."""
    if isinstance(ip, IPv6Address) and ip.scope_id is not None:
        return IPv6Address(int(ip))
    return ip


def effective_address(ip: IPAddress) -> IPAddress:
    """The address that decides reachability: the embedded IPv4 for the forms above."""
    ip = without_scope(ip)
    if isinstance(ip, IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner
    return ip


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses outside every refused range."""
    ip = effective_address(ip)
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return False
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return False
    if isinstance(ip, IPv4Address):
        return not any(ip in net for net in REFUSED_IPV4)
    if ip.is_site_local or ip not in GLOBAL_UNICAST_V6:
        return False
    return not any(ip in net for net in REFUSED_IPV6)


class NotAnAddress(ValueError):
    """The host is spelled like an IP address but no address parser accepts it."""


# A host whose last label is a number (decimal, 0x-hex or octal) is an IPv4 spelling to
# every URL parser that follows WHATWG, and to inet_aton; it is never a DNS name.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_IPV4_CHARS = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes if a resolver or connector would take it as an IP.

    ``host`` is the URL's raw host without brackets (``::1``, ``fe80::1%25eth0``). IPv4 is
    parsed with ``socket.inet_aton``, the same routine ``getaddrinfo`` uses for numeric
    hosts, so decimal (``2130706433``), hex (``0x7f000001``), octal (``0177.0.0.1``) and
    short (``127.1``) spellings are all recognised. Returns None for a DNS name; raises
    ``NotAnAddress`` for a numeric host no parser accepts (``1.2.3.4.5``, ``256.0.0.1``).
    """
    if ":" in host:
        # yarl keeps the zone id percent-encoded (%25); it never changes the range.
        bare = host.split("%", 1)[0]
        try:
            return without_scope(IPv6Address(bare))
        except ValueError as exc:
            raise NotAnAddress(f"{host!r} is not a valid IPv6 address") from exc
    name = host[:-1] if host.endswith(".") else host
    # glibc's inet_aton ignores anything after whitespace ("1.2.3.4 x"), so only strings
    # made of address characters are handed to it.
    if _IPV4_CHARS.fullmatch(name):
        try:
            return IPv4Address(socket.inet_aton(name))
        except OSError:
            pass
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        raise NotAnAddress(f"{host!r} looks like an IPv4 address but is not a valid one")
    return None
