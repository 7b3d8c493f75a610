"""Signing in and out, the store picker, and the user's own profile and password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orderbridge.accounts import service as accounts
from orderbridge.accounts.throttle import LoginThrottle
from orderbridge.bootstrap import Container
from orderbridge.db.models import User
from orderbridge.errors import ValidationFailed
from orderbridge.ui import sessions
from orderbridge.ui.deps import ContainerDep, StoreAccess, Viewer
from orderbridge.ui.forms import FORM_ERROR, FormState
from orderbridge.ui.rendering import flash, redirect, render, url

router = APIRouter()

WRONG_CREDENTIALS = "The email or the password is wrong."
THROTTLED = "Too many failed attempts. Wait a few minutes and try again."


def new_throttle(container: Container) -> LoginThrottle:
    return LoginThrottle(container.clock)


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path inside the Merchant Account: never an open redirect to another site."""
    home = url(request, "home")
    mount = home.rstrip("/") + "/"
    if target and target.startswith(mount) and not target.startswith("//") and "\\" not in target:
        return target
    return home


@router.get("/", name="home")
async def home(request: Request, viewer: Viewer) -> Response:
    if len(viewer.memberships) == 1:
        return redirect(url(request, "store_home", store_id=viewer.memberships[0].store_id))
    return render(request, "stores.html", {"memberships": viewer.memberships})


@router.get("/stores/{store_id}", name="store_home")
async def store_home(request: Request, access: StoreAccess) -> Response:
    """A store's first page: its orders."""
    return redirect(url(request, "orders", store_id=access.store_id))


@router.get("/login", name="login_form")
async def login_form(request: Request, next: str | None = None) -> Response:
    form = FormState({"next": next or ""})
    return render(request, "login.html", {"form": form})


@router.post("/login", name="login")
async def login(request: Request, container: ContainerDep) -> Response:
    form = FormState.of(await request.form(), omit=("password",))
    email = form.value("email").strip().lower()
    password = str((await request.form()).get("password") or "")
    if not email:
        form.add("email", "enter your email")
    if not password:
        form.add("password", "enter your password")
    if not form.ok:
        return render(request, "login.html", {"form": form}, status_code=422)
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "-"
    if throttle.blocked(email, address):
        form.add(FORM_ERROR, THROTTLED)
        return render(request, "login.html", {"form": form}, status_code=429)
    async with container.db.transaction() as session:
        user = await accounts.authenticate(
            session, email=email, password=password, now=container.clock.now()
        )
    if user is None:
        throttle.failed(email, address)
        form.add(FORM_ERROR, WRONG_CREDENTIALS)
        return render(request, "login.html", {"form": form}, status_code=422)
    throttle.succeeded(email)
    sessions.sign_in(request, user.id, user.session_version)
    return redirect(_safe_next(request, form.value("next")))


@router.post("/logout", name="logout")
async def logout(request: Request) -> Response:
    sessions.sign_out(request)
    flash(request, "You are signed out.")
    return redirect(url(request, "login_form"))


def _profile_values(user: User) -> dict[str, str]:
    return {"name": user.name, "time_zone": user.time_zone, "locale": user.locale}


@router.get("/profile", name="profile")
async def profile(request: Request, viewer: Viewer) -> Response:
    return render(
        request,
        "account/profile.html",
        {"form": FormState(_profile_values(viewer.user)), "password_form": FormState()},
    )


@router.post("/profile", name="update_profile")
async def update_profile(request: Request, viewer: Viewer, container: ContainerDep) -> Response:
    form = FormState.of(await request.form())
    async with container.db.transaction() as session:
        user = await session.get(User, viewer.user.id)
        assert user is not None
        try:
            await accounts.update_profile(
                session,
                user=user,
                name=form.value("name"),
                time_zone=form.value("time_zone"),
                locale=form.value("locale"),
            )
        except ValidationFailed as error:
            form.absorb(error)
    if not form.ok:
        return render(
            request,
            "account/profile.html",
            {"form": form, "password_form": FormState()},
            status_code=422,
        )
    flash(request, "Profile saved.")
    return redirect(url(request, "profile"))


@router.post("/profile/password", name="change_password")
async def change_password(request: Request, viewer: Viewer, container: ContainerDep) -> Response:
    submitted = await request.form()
    password_form = FormState()  # passwords are never sent back to the page

    def text(name: str) -> str:
        value = submitted.get(name)
        return value if isinstance(value, str) else ""

    async with container.db.transaction() as session:
        user = await session.get(User, viewer.user.id)
        assert user is not None
        try:
            await accounts.change_password(
                session,
                user=user,
                current=text("current_password"),
                new=text("new_password"),
                confirm=text("confirm_password"),
            )
        except ValidationFailed as error:
            password_form.absorb(error)
        version = user.session_version
    if not password_form.ok:
        return render(
            request,
            "account/profile.html",
            {"form": FormState(_profile_values(viewer.user)), "password_form": password_form},
            status_code=422,
        )
    # This session goes on with the new version; every other one has ended.
    sessions.sign_in(request, viewer.user.id, version)
    flash(request, "Password changed. Other sessions are signed out.")
    return redirect(url(request, "profile"))
