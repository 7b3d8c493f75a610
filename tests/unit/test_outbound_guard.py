"""The SSRF guard without a network: URL checks, the address rule and the resolver filter."""

from __future__ import annotations

import pickle
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from orderbridge.outbound.addresses import is_public_address, parse_ip_literal
from orderbridge.outbound.guard import (
    GuardedResolver,
    OutboundPolicy,
    Refusal,
    UnsafeTarget,
    check_url,
)

STRICT = OutboundPolicy()
STRICT_HTTP = OutboundPolicy(https_only=False)
DEVELOPMENT = OutboundPolicy(allow_private=True)

# Every way a URL can spell a non-public address. The id says what the spelling is.
NON_PUBLIC_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback-top"),
    ("2130706433", "loopback-decimal"),
    ("0x7f000001", "loopback-hex"),
    ("0X7F000001", "loopback-hex-upper"),
    ("0177.0.0.1", "loopback-octal"),
    ("017700000001", "loopback-octal-whole"),
    ("0x7f.0.0.1", "loopback-hex-octet"),
    ("0x7f.1", "loopback-hex-short"),
    ("127.1", "loopback-short"),
    ("127.0.1", "loopback-short-3"),
    ("127.0.0.1.", "loopback-trailing-dot"),
    ("①②⑦.0.0.1", "loopback-unicode-digits"),
    ("0", "zero-short"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("10.0.0.1", "rfc1918-10"),
    ("10.1", "rfc1918-10-short"),
    ("167772161", "rfc1918-10-decimal"),
    ("172.16.0.1", "rfc1918-172-low"),
    ("172.31.255.255", "rfc1918-172-high"),
    ("192.168.1.1", "rfc1918-192"),
    ("0xc0.0xa8.0x1.0x1", "rfc1918-192-hex-octets"),
    ("169.254.169.254", "metadata"),
    ("2852039166", "metadata-decimal"),
    ("0xa9fea9fe", "metadata-hex"),
    ("100.64.0.1", "cgnat-low"),
    ("100.127.255.254", "cgnat-high"),
    ("100.100.100.200", "metadata-alibaba"),
    ("192.0.0.192", "metadata-oracle"),
    ("168.63.129.16", "azure-wireserver"),
    ("192.0.0.9", "ietf-protocol"),
    ("192.0.2.1", "documentation-1"),
    ("198.51.100.1", "documentation-2"),
    ("203.0.113.1", "documentation-3"),
    ("198.18.0.1", "benchmark"),
    ("192.88.99.1", "6to4-relay"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast-ssdp"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("[::1]", "v6-loopback"),
    ("[0:0:0:0:0:0:0:1]", "v6-loopback-long"),
    ("[::]", "v6-unspecified"),
    ("[::ffff:127.0.0.1]", "v4-mapped-dotted"),
    ("[::ffff:7f00:1]", "v4-mapped-hex"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", "v4-mapped-long"),
    ("[::ffff:169.254.169.254]", "v4-mapped-metadata"),
    ("[::ffff:10.0.0.1]", "v4-mapped-private"),
    ("[::127.0.0.1]", "v4-compatible"),
    ("[::8.8.8.8]", "v4-compatible-public-still-reserved"),
    ("[::ffff:0:127.0.0.1]", "v4-translated"),
    ("[64:ff9b::127.0.0.1]", "nat64-loopback"),
    ("[64:ff9b::a00:1]", "nat64-private"),
    ("[64:ff9b::a9fe:a9fe]", "nat64-metadata"),
    ("[64:ff9b:1::808:808]", "nat64-local-use"),
    ("[2002:7f00:1::]", "6to4-loopback"),
    ("[2002:c0a8:101::1]", "6to4-private"),
    ("[2002:a9fe:a9fe::]", "6to4-metadata"),
    ("[fe80::1]", "v6-link-local"),
    ("[fe80::1%25eth0]", "v6-link-local-zone"),
    ("[fe80::1%25lo]", "v6-link-local-zone-lo"),
    ("[fc00::1]", "v6-ula-fc"),
    ("[fd00:ec2::254]", "v6-ula-aws-metadata"),
    ("[fec0::1]", "v6-site-local"),
    ("[ff02::1]", "v6-multicast-link"),
    ("[ff0e::1]", "v6-multicast-global"),
    ("[100::1]", "v6-discard"),
    ("[2001::1]", "v6-teredo"),
    ("[2001:2::1]", "v6-benchmark"),
    ("[2001:db8::1]", "v6-documentation"),
    ("[3fff::1]", "v6-documentation-2024"),
    ("[5f00::1]", "v6-srv6"),
    ("[4000::1]", "v6-unallocated"),
]

PUBLIC_HOSTS = [
    ("8.8.8.8", "dotted"),
    ("134744072", "decimal"),
    ("0x08080808", "hex"),
    ("010.010.010.010", "octal"),
    ("1.1.1.1", "cloudflare"),
    ("93.184.216.34", "example"),
    ("9.255.255.255", "below-10"),
    ("11.0.0.0", "above-10"),
    ("100.63.255.255", "below-cgnat"),
    ("100.128.0.0", "above-cgnat"),
    ("172.15.255.255", "below-172"),
    ("172.32.0.0", "above-172"),
    ("192.167.255.255", "below-192"),
    ("223.255.255.255", "below-multicast"),
    ("[2606:4700:4700::1111]", "v6"),
    ("[2a00:1450:4001::1]", "v6-2"),
    ("[::ffff:8.8.8.8]", "v4-mapped"),
    ("[64:ff9b::8.8.8.8]", "nat64"),
    ("[2002:808:808::1]", "6to4"),
]

INVALID_URLS = [
    ("", "empty"),
    ("not a url", "no-scheme"),
    ("/relative/path", "relative"),
    ("https://", "no-host"),
    ("https:///path", "empty-host"),
    ("https://1.2.3.4.5/", "five-parts"),
    ("https://256.0.0.1/", "octet-too-big"),
    ("https://4294967296/", "number-too-big"),
    ("https://08.0.0.1/", "bad-octal"),
    ("https://foo.0x7f/", "numeric-last-label"),
    ("https://a..b/", "empty-label"),
    ("https://-a.example/", "label-starts-with-dash"),
    ("https://%31%32%37.0.0.1/", "percent-encoded-host"),
    ("https://example.com:0/", "port-zero"),
    ("https://example.com:65536/", "port-too-big"),
    ("https://[::1/", "unclosed-bracket"),
    ("https://[::g]/", "bad-v6"),
    ("https://" + "a" * 64 + ".example/", "label-too-long"),
]


@pytest.mark.parametrize(("host", "what"), NON_PUBLIC_HOSTS, ids=[w for _, w in NON_PUBLIC_HOSTS])
def test_non_public_literal_is_refused(host: str, what: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(f"https://{host}/hook", STRICT)
    assert caught.value.code == Refusal.TARGET_NOT_PUBLIC


@pytest.mark.parametrize(("host", "what"), NON_PUBLIC_HOSTS, ids=[w for _, w in NON_PUBLIC_HOSTS])
def test_non_public_literal_is_allowed_in_development(host: str, what: str) -> None:
    target = check_url(f"http://{host}:8080/hook", DEVELOPMENT)
    assert target.ip is not None
    assert target.port == 8080


@pytest.mark.parametrize(("host", "what"), PUBLIC_HOSTS, ids=[w for _, w in PUBLIC_HOSTS])
def test_public_literal_is_accepted(host: str, what: str) -> None:
    target = check_url(f"https://{host}/hook", STRICT)
    assert target.ip is not None and is_public_address(target.ip)
    assert target.port == 443


@pytest.mark.parametrize(("url", "what"), INVALID_URLS, ids=[w for _, w in INVALID_URLS])
def test_invalid_url_is_refused(url: str, what: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url, DEVELOPMENT)
    assert caught.value.code == Refusal.INVALID_URL


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "ws://example.com/",
        "javascript:alert(1)",
        "HTTP://example.com/",
    ],
)
def test_scheme_other_than_https_is_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url, STRICT)
    assert caught.value.code == Refusal.SCHEME_NOT_ALLOWED


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@example.com/",
        "https://user@example.com/",
        "https://:pass@example.com/",
        "https://trusted.example@evil.example/",
    ],
)
def test_credentials_in_url_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url, DEVELOPMENT)
    assert caught.value.code == Refusal.CREDENTIALS_IN_URL


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://hooks.example.com/orders?x=1", "hooks.example.com"),
        ("https://HOOKS.Example.COM./", "hooks.example.com."),
        ("https://localhost/", "localhost"),  # a name: the resolver judges it
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("https://under_score.example:8443/", "under_score.example"),
    ],
)
def test_names_pass_without_dns(url: str, host: str) -> None:
    target = check_url(url, STRICT)
    assert target.host == host
    assert target.ip is None


def test_https_only_follows_allow_private_unless_set() -> None:
    assert STRICT.requires_https
    assert not DEVELOPMENT.requires_https
    assert OutboundPolicy(allow_private=True, https_only=True).requires_https
    assert not OutboundPolicy(https_only=False).requires_https


def test_http_is_refused_when_https_only_even_for_allowed_private_targets() -> None:
    policy = OutboundPolicy(allow_private=True, https_only=True)
    assert check_url("https://127.0.0.1/", policy).ip == IPv4Address("127.0.0.1")
    with pytest.raises(UnsafeTarget) as caught:
        check_url("http://127.0.0.1/", policy)
    assert caught.value.code == Refusal.SCHEME_NOT_ALLOWED


def test_http_to_public_host_when_https_not_required() -> None:
    assert check_url("http://example.com/", STRICT_HTTP).port == 80
    with pytest.raises(UnsafeTarget) as caught:
        check_url("http://127.0.0.1/", STRICT_HTTP)
    assert caught.value.code == Refusal.TARGET_NOT_PUBLIC


def test_allowed_networks_are_exceptions_in_any_spelling() -> None:
    policy = OutboundPolicy(allowed_networks=(ip_network("10.0.0.0/8"),))
    for host in ("10.1.2.3", "167838211", "[::ffff:10.1.2.3]", "[64:ff9b::a01:203]"):
        assert check_url(f"https://{host}/", policy).ip is not None
    for host in ("127.0.0.1", "192.168.1.1", "[::1]"):
        with pytest.raises(UnsafeTarget):
            check_url(f"https://{host}/", policy)
    assert check_url("https://8.8.8.8/", policy).ip == IPv4Address("8.8.8.8")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("example.com", None),
        ("1.2.3.4 x", None),  # inet_aton would say 1.2.3.4; not a host, refused elsewhere
    ],
)
def test_ip_literal_spellings_parse_to_the_address_a_resolver_would_use(
    host: str, expected: str | None
) -> None:
    parsed = parse_ip_literal(host)
    assert parsed == (None if expected is None else ip_address(expected))
    if expected is not None and ":" not in host and not host.endswith("."):
        # The same answer getaddrinfo gives, so the guard judges what would be connected to.
        infos = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        assert {info[4][0] for info in infos} == {expected}


def test_scoped_address_is_judged_without_its_zone() -> None:
    assert not is_public_address(IPv6Address("fe80::1%eth0"))
    assert is_public_address(IPv6Address("2606:4700::1%eth0"))


def test_unsafe_target_message_names_the_condition_and_survives_pickling() -> None:
    error = UnsafeTarget(Refusal.TARGET_NOT_PUBLIC, "x is not public", addresses=["10.0.0.1"])
    assert str(error) == "x is not public (target_not_public)"
    assert isinstance(error, OSError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.addresses) == (error.code, error.message, ("10.0.0.1",))


class ScriptedResolver(AbstractResolver):
    """Answers each call with the next list of addresses; the last list repeats."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.calls = 0
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._answers[min(self.calls, len(self._answers) - 1)]
        self.calls += 1
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_drops_non_public_answers() -> None:
    fake = ScriptedResolver(["10.0.0.1", "93.184.216.34", "::1", "2606:4700::1", "fe80::1%eth0"])
    answers = await GuardedResolver(STRICT, fake).resolve("hooks.example", 443, socket.AF_UNSPEC)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:4700::1"]
    assert all(a["port"] == 443 for a in answers)


async def test_resolver_refuses_when_only_non_public_answers() -> None:
    fake = ScriptedResolver(["127.0.0.1", "::1", "169.254.169.254"])
    with pytest.raises(UnsafeTarget) as caught:
        await GuardedResolver(STRICT, fake).resolve("evil.example", 443)
    assert caught.value.code == Refusal.TARGET_NOT_PUBLIC
    assert caught.value.addresses == ("127.0.0.1", "::1", "169.254.169.254")
    # The message may reach the endpoint's owner: it must not reveal internal answers.
    assert "127.0.0.1" not in str(caught.value)
    assert "evil.example" in str(caught.value)


async def test_resolver_judges_every_lookup_so_rebinding_is_refused() -> None:
    fake = ScriptedResolver(["93.184.216.34"], ["127.0.0.1"])
    resolver = GuardedResolver(STRICT, fake)
    first = await resolver.resolve("rebind.example", 443)
    assert [a["host"] for a in first] == ["93.184.216.34"]
    with pytest.raises(UnsafeTarget):
        await resolver.resolve("rebind.example", 443)


async def test_resolver_drops_answers_that_are_not_canonical_addresses() -> None:
    # Anything but a numeric address would be resolved again, unchecked, at connect time.
    fake = ScriptedResolver(["0x7f000001", "127.1", "localhost", "1.2.3.4 x", "8.8.8.8"])
    answers = await GuardedResolver(STRICT, fake).resolve("odd.example", 443)
    assert [a["host"] for a in answers] == ["8.8.8.8"]


async def test_resolver_keeps_everything_in_development() -> None:
    fake = ScriptedResolver(["127.0.0.1", "::1", "10.0.0.1"])
    answers = await GuardedResolver(DEVELOPMENT, fake).resolve("localhost", 80)
    assert len(answers) == 3


async def test_resolver_close_closes_the_underlying_resolver() -> None:
    fake = ScriptedResolver(["8.8.8.8"])
    await GuardedResolver(STRICT, fake).close()
    assert fake.closed
