"""Bearer-key authentication and store scoping (contract §3).

A key used on another store's paths gets 404, exactly like a resource that does not exist.
Lookups are cached for ``auth_cache_seconds`` (default 2 s): a revoked key stops working
within that time in every process."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Path, Request

from orderbridge.bootstrap import Container
from orderbridge.errors import Forbidden, NotFound, Unauthorized
from orderbridge.orders.lifecycle import Actor, ActorKind
from orderbridge.stores.service import KeyKind, Principal, find_principal


class Authenticator:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.ttl = container.settings.auth_cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, secret: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(secret)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.container.db.reader() as session:
            principal = await find_principal(session, secret)
        if self.ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[secret] = (now + self.ttl, principal)
        return principal

    def forget(self) -> None:
        self._cache.clear()


async def container_of(request: Request) -> Container:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
    # request for an attribute read.
    container: Container = request.app.state.container
    return container


async def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send the API key as `Authorization: Bearer <key>`")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.principal(secret.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_key")
    return principal


StoreId = Annotated[str, Path(description="Store identifier", examples=["310678"])]
OrderId = Annotated[str, Path(description="Glopal order id", examples=["310678-936140"])]


def merchant_actor(principal: Principal) -> Actor:
    """The merchant behind a key, as the order timeline records it."""
    return Actor(ActorKind.MERCHANT, principal.key_id)


def _scoped(kind: KeyKind):  # type: ignore[no-untyped-def]
    async def dependency(
        store_id: StoreId, principal: Annotated[Principal, Depends(_principal)]
    ) -> Principal:
        if principal.store_id != store_id:
            raise NotFound("no such resource")
        if principal.kind is not kind:
            raise Forbidden(f"this endpoint needs a {kind} key", code="wrong_key_kind")
        return principal

    return dependency


MerchantKey = Annotated[Principal, Depends(_scoped(KeyKind.MERCHANT))]
CheckoutKey = Annotated[Principal, Depends(_scoped(KeyKind.CHECKOUT))]
ContainerDep = Annotated[Container, Depends(container_of)]
