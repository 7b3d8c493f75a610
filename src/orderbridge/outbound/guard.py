"""The SSRF guard: outbound HTTP only reaches public addresses, and only the ones checked.

Two checks, and a caller needs both (``open_session`` wires them together):

1. ``check_url`` (pure, no DNS) validates the URL and judges a host that is an IP literal in
   any spelling. aiohttp never asks the resolver about IP-literal hosts, so without this
   check ``http://[::ffff:127.0.0.1]/`` would go straight to loopback.
2. ``GuardedResolver`` resolves names and drops every address the policy refuses. aiohttp
   connects to exactly the addresses its resolver returned, so the vetted address is the one
   connected to: a second lookup that answers differently (DNS rebinding) never happens for
   that connection. aiohttp's DNS cache (per connector, ``ttl_dns_cache`` seconds) stores
   what this resolver returned, i.e. only vetted addresses, so a cache hit cannot bypass it.

How a refusal reaches the caller (aiohttp 3.14):

- from the resolver: ``TCPConnector`` wraps any ``OSError`` from ``resolve`` in
  ``aiohttp.ClientConnectorDNSError`` (``.os_error`` and ``__cause__`` are the
  ``UnsafeTarget``); that is why ``UnsafeTarget`` is an ``OSError``. Failures are not cached.
- from the per-request check in ``open_session``: ``ClientSession`` re-raises an ``OSError``
  from a middleware as ``aiohttp.ClientOSError`` with ``__cause__`` the ``UnsafeTarget``.

``find_unsafe_target(exc)`` digs the ``UnsafeTarget`` out of either.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from orderbridge.outbound.addresses import (
    IPAddress,
    IPNetwork,
    NotAnAddress,
    effective_address,
    is_public_address,
    parse_ip_literal,
    without_scope,
)

__all__ = [
    "GuardedResolver",
    "OutboundPolicy",
    "Refusal",
    "TargetUrl",
    "UnsafeTarget",
    "check_url",
    "find_unsafe_target",
    "guarded_connector",
    "is_public_address",
    "open_session",
]


class Refusal(StrEnum):
    INVALID_URL = "invalid_url"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    CREDENTIALS_IN_URL = "credentials_in_url"
    TARGET_NOT_PUBLIC = "target_not_public"
    PROXY_NOT_ALLOWED = "proxy_not_allowed"


class UnsafeTarget(OSError):
    """An outbound call was refused before any byte left the process; ``code`` says why.

    An ``OSError`` so that aiohttp treats a refusal from the resolver like any other
    connection failure (see the module docstring). The errno is EACCES and the strerror
    carries the message, because ``ClientConnectorError`` builds its text from those two.
    """

    def __init__(self, code: Refusal, message: str, *, addresses: Sequence[str] = ()) -> None:
        super().__init__(errno.EACCES, f"{message} ({code})")
        self.code = code
        self.message = message
        # For server logs only: the message never lists resolved addresses, since it may be
        # shown to the endpoint's owner and would turn the guard into an internal-DNS oracle.
        self.addresses = tuple(addresses)

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    def __reduce__(self) -> tuple[type[UnsafeTarget], tuple[Refusal, str], dict[str, object]]:
        # OSError would pickle as UnsafeTarget(errno, strerror), which is not our signature.
        return type(self), (self.code, self.message), {"addresses": self.addresses}


@dataclass(frozen=True)
class OutboundPolicy:
    """Where outbound calls may go. The default is the production policy.

    ``allow_private`` (development and tests only) lets calls reach loopback, private and
    every other non-public address, and allows plain http unless ``https_only`` says
    otherwise. ``https_only``: None follows ``allow_private``; True or False is explicit.
    ``allowed_networks`` are exceptions to the refusal (e.g. a partner's private range over
    a VPN), not a restriction of public addresses.
    """

    allow_private: bool = False
    https_only: bool | None = None
    allowed_networks: tuple[IPNetwork, ...] = ()

    @property
    def requires_https(self) -> bool:
        return not self.allow_private if self.https_only is None else self.https_only

    def permits(self, ip: IPAddress) -> bool:
        if self.allow_private or is_public_address(ip):
            return True
        # Both spellings: allowing 10.0.0.0/8 also allows ::ffff:10.0.0.1.
        forms = (without_scope(ip), effective_address(ip))
        return any(form in net for form in forms for net in self.allowed_networks)


@dataclass(frozen=True)
class TargetUrl:
    """A URL that passed ``check_url``; ``ip`` is set when the host is an IP literal."""

    url: URL
    host: str
    port: int
    ip: IPAddress | None


# What is left of a DNS name once yarl has lower-cased and IDNA-encoded it.
_DNS_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?:\.(?!-)[a-z0-9_-]{1,63})*\.?", re.IGNORECASE)


def check_url(url: str | URL, policy: OutboundPolicy) -> TargetUrl:
    """Validate an outbound URL without DNS; raise ``UnsafeTarget`` if it must not be called.

    Parsed with yarl, the parser aiohttp itself uses, so both see the same host.
    """
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (TypeError, ValueError) as exc:  # yarl refuses e.g. ports above 65535
        raise UnsafeTarget(Refusal.INVALID_URL, f"not a valid URL: {exc}") from exc
    if not parsed.scheme:
        raise UnsafeTarget(Refusal.INVALID_URL, "the URL has no scheme")
    if parsed.scheme not in ("http", "https"):
        raise UnsafeTarget(Refusal.SCHEME_NOT_ALLOWED, f"scheme {parsed.scheme!r} is not http(s)")
    if parsed.scheme == "http" and policy.requires_https:
        raise UnsafeTarget(Refusal.SCHEME_NOT_ALLOWED, "only https URLs are allowed")
    # Refused rather than supported: the URL is stored and shown in plain text, and
    # "https://trusted.example@evil.example/" misleads whoever reads it. Custom endpoints
    # carry credentials in configured headers, kept with the other secrets.
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeTarget(Refusal.CREDENTIALS_IN_URL, "credentials in the URL are not allowed")
    host = parsed.raw_host
    if not host:
        raise UnsafeTarget(Refusal.INVALID_URL, "the URL has no host")
    port = parsed.port
    if port is None or not 1 <= port <= 65535:
        raise UnsafeTarget(Refusal.INVALID_URL, f"port {port} is out of range")
    if ":" not in host and (len(host) > 254 or not _DNS_NAME.fullmatch(host)):
        raise UnsafeTarget(Refusal.INVALID_URL, f"{host!r} is not a valid host name")
    try:
        ip = parse_ip_literal(host)
    except NotAnAddress as exc:
        raise UnsafeTarget(Refusal.INVALID_URL, str(exc)) from exc
    if ip is not None and not policy.permits(ip):
        raise UnsafeTarget(Refusal.TARGET_NOT_PUBLIC, f"{host} is not a public address")
    return TargetUrl(url=parsed, host=host, port=port, ip=ip)


class GuardedResolver(AbstractResolver):
    """Resolves with ``resolver`` (default: aiohttp's ``ThreadedResolver``) and keeps only
    the addresses ``policy`` permits; raises ``UnsafeTarget`` if none is left.

    Must be created inside a running event loop (``ThreadedResolver`` binds to it).
    """

    def __init__(self, policy: OutboundPolicy, resolver: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver if resolver is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        kept = [answer for answer in answers if self._permits(answer["host"])]
        if not kept:
            raise UnsafeTarget(
                Refusal.TARGET_NOT_PUBLIC,
                f"{host} does not resolve to any public address",
                addresses=[answer["host"] for answer in answers],
            )
        return kept

    async def close(self) -> None:
        await self._resolver.close()

    def _permits(self, address: str) -> bool:
        # Only canonical numeric answers pass: asyncio would resolve anything else again at
        # connect time, unchecked.
        if any(char.isspace() for char in address):
            return False
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return self._policy.permits(ip)


def guarded_connector(
    policy: OutboundPolicy,
    *,
    resolver: AbstractResolver | None = None,
    **connector_kwargs: object,
) -> aiohttp.TCPConnector:
    """A ``TCPConnector`` whose lookups go through ``GuardedResolver``.

    Guards names only: run ``check_url`` on every URL too, or use ``open_session``.
    """
    guarded = GuardedResolver(policy, resolver)
    return aiohttp.TCPConnector(resolver=guarded, **connector_kwargs)  # type: ignore[arg-type]


# How many URLs that passed ``check_url`` a session remembers (a dispatcher sends to the
# same few URLs over and over; the check is a pure function of the URL and the policy).
_PASSED_URLS = 4096


def _check_every_request(policy: OutboundPolicy) -> aiohttp.ClientMiddlewareType:
    passed: set[URL] = set()

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        # Runs for each hop of a redirect too, so a redirect to an IP literal is judged.
        url = request.url
        if url not in passed:
            check_url(url, policy)
            if len(passed) >= _PASSED_URLS:
                passed.clear()
            passed.add(url)
        # Through a proxy the resolver would only vet the proxy's address.
        if request.proxy is not None:
            raise UnsafeTarget(
                Refusal.PROXY_NOT_ALLOWED, "requests through a proxy bypass the guard"
            )
        return await handler(request)

    return middleware


def open_session(
    policy: OutboundPolicy,
    timeout: aiohttp.ClientTimeout,
    *,
    resolver: AbstractResolver | None = None,
    **connector_kwargs: object,
) -> aiohttp.ClientSession:
    """A ``ClientSession`` that applies both checks to every request, redirects included.

    Use as ``async with open_session(policy, timeout) as session:``. Proxies from the
    environment are ignored (``trust_env=False``) and cookies are never kept: deliveries to
    different endpoints must not share state.
    """
    return aiohttp.ClientSession(
        connector=guarded_connector(policy, resolver=resolver, **connector_kwargs),
        timeout=timeout,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        middlewares=(_check_every_request(policy),),
    )


def find_unsafe_target(exc: BaseException) -> UnsafeTarget | None:
    """The ``UnsafeTarget`` behind an aiohttp error, or None if the guard did not refuse."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnsafeTarget):
            return current
        seen.add(id(current))
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, UnsafeTarget):
            return os_error
        current = current.__cause__ or current.__context__
    return None
