"""Who is asking, and may they: the dependencies every page and action takes.

``csrf_protect`` runs before every route of the UI application (it is an application-wide
dependency), so no form can be added without it. ``Viewer``, ``StoreAccess`` and
``OwnerAccess`` resolve the signed-in user and check their membership of the store in the
path on every request: membership and role are read from the database each time, so a
removed membership or a disabled user takes effect at once."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from orderbridge.accounts import service as accounts
from orderbridge.accounts.service import Membership, Role
from orderbridge.bootstrap import Container
from orderbridge.db.models import User
from orderbridge.errors import Forbidden, NotFound, OrderbridgeError
from orderbridge.orders.lifecycle import Actor, ActorKind
from orderbridge.ui import sessions

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(OrderbridgeError):
    """Not signed in (or the session ended): answered with a redirect to the sign-in page."""

    status, code, title = 401, "login_required", "Sign in"


class CsrfRejected(Forbidden):
    code, title = "csrf_rejected", "The form expired"


async def container_of(request: Request) -> Container:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
    # request for an attribute read.
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(container_of)]


async def csrf_protect(request: Request) -> None:
    """Every unsafe request must carry the session's token, in the ``csrf_token`` form
    field or the ``X-CSRF-Token`` header. Compared in constant time."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("csrf_token")
            sent = value if isinstance(value, str) else None
    if (
        not isinstance(expected, str)
        or sent is None
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfRejected("the form was not sent from this page, or it expired: reload it")


@dataclass(frozen=True)
class SignedIn:
    user: User
    memberships: list[Membership]

    def membership(self, store_id: str) -> Membership | None:
        return next((m for m in self.memberships if m.store_id == store_id), None)


@dataclass(frozen=True)
class StoreContext:
    """A signed-in user in one of their stores."""

    viewer: SignedIn
    membership: Membership

    @property
    def store_id(self) -> str:
        return self.membership.store_id

    @property
    def user(self) -> User:
        return self.viewer.user

    @property
    def is_owner(self) -> bool:
        return self.membership.role is Role.OWNER

    @property
    def actor(self) -> Actor:
        """How the order timeline records this user's actions."""
        return Actor(ActorKind.MERCHANT, self.viewer.user.id)


async def _signed_in(request: Request, container: ContainerDep) -> SignedIn:
    session = sessions.signed_in(request)
    if session is None:
        raise LoginRequired("sign in to continue")
    user_id, version = session
    async with container.db.reader() as db:
        user = await db.get(User, user_id)
        if user is None or user.disabled_at is not None or user.session_version != version:
            sessions.sign_out(request)
            raise LoginRequired("your session ended: sign in again")
        memberships = await accounts.memberships(db, user.id)
    viewer = SignedIn(user, memberships)
    request.state.viewer = viewer
    return viewer


StoreIdPath = Annotated[str, Path(max_length=18)]


async def _store_access(
    store_id: StoreIdPath, viewer: Annotated[SignedIn, Depends(_signed_in)], request: Request
) -> StoreContext:
    membership = viewer.membership(store_id)
    if membership is None:
        raise NotFound("no such store", code="store_not_found")
    context = StoreContext(viewer, membership)
    request.state.store = context
    return context


async def _owner_access(
    context: Annotated[StoreContext, Depends(_store_access)],
) -> StoreContext:
    if not context.is_owner:
        raise Forbidden("only the store's owners can open this page", code="owner_only")
    return context


Viewer = Annotated[SignedIn, Depends(_signed_in)]
StoreAccess = Annotated[StoreContext, Depends(_store_access)]
OwnerAccess = Annotated[StoreContext, Depends(_owner_access)]
