"""``orderbridge users …``: Merchant Account users and the stores they may open. The same
use cases as the account pages (``accounts.service``)."""

from __future__ import annotations

import json
from typing import Any

import click

from orderbridge.accounts import service as accounts
from orderbridge.bootstrap import Container
from orderbridge.cli.common import emit, run

JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")
ROLE = click.option(
    "--role",
    type=click.Choice([r.value for r in accounts.Role]),
    default=accounts.Role.OWNER.value,
    show_default=True,
    help="owner: everything; staff: orders only",
)


def _user_data(user: Any, memberships: list[accounts.Membership]) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "time_zone": user.time_zone,
        "disabled": user.disabled_at is not None,
        "stores": [{"store_id": m.store_id, "role": m.role.value} for m in memberships],
    }


@click.group()
def users() -> None:
    """Merchant Account users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--store", "store_id", required=True, help="the store the user may open")
@ROLE
@click.option("--name", default="")
@click.option("--time-zone", default="UTC", show_default=True, help="e.g. Europe/Paris")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="asked for when not given (prefer the prompt: options end up in shell history)",
)
@JSON
def users_create(
    email: str,
    store_id: str,
    role: str,
    name: str,
    time_zone: str,
    password: str,
    as_json: bool,
) -> None:
    """Create a user who can sign in to the Merchant Account of STORE."""

    async def work(container: Container) -> dict[str, Any]:
        now = container.clock.now()
        async with container.db.transaction() as session:
            user = await accounts.create_user(
                session, email=email, password=password, name=name, time_zone=time_zone, now=now
            )
            await accounts.add_membership(
                session, user=user, store_id=store_id, role=accounts.Role(role), now=now
            )
            return _user_data(user, await accounts.memberships(session, user.id))

    data = run(work)
    emit(as_json, data, f"{data['id']}  {data['email']}  {role} of store {store_id}")


@users.command("add-store")
@click.option("--email", required=True)
@click.option("--store", "store_id", required=True)
@ROLE
@JSON
def users_add_store(email: str, store_id: str, role: str, as_json: bool) -> None:
    """Let a user open another store (or change their role there)."""

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            user = await accounts.get_user(session, email)
            await accounts.add_membership(
                session,
                user=user,
                store_id=store_id,
                role=accounts.Role(role),
                now=container.clock.now(),
            )
            return _user_data(user, await accounts.memberships(session, user.id))

    data = run(work)
    emit(as_json, data, f"{data['email']} is {role} of store {store_id}")


@users.command("remove-store")
@click.option("--email", required=True)
@click.option("--store", "store_id", required=True)
def users_remove_store(email: str, store_id: str) -> None:
    """Take a store away from a user."""

    async def work(container: Container) -> bool:
        async with container.db.transaction() as session:
            user = await accounts.get_user(session, email)
            return await accounts.remove_membership(session, user=user, store_id=store_id)

    removed = run(work)
    click.echo(f"{email} {'no longer opens' if removed else 'did not open'} store {store_id}")


@users.command("list")
@JSON
def users_list(as_json: bool) -> None:
    async def work(container: Container) -> list[dict[str, Any]]:
        async with container.db.reader() as session:
            return [
                _user_data(user, await accounts.memberships(session, user.id))
                for user in await accounts.list_users(session)
            ]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        stores = ", ".join(f"{s['store_id']}:{s['role']}" for s in row["stores"]) or "-"
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['id']}  {row['email']}  {state}  {stores}")


def _set_disabled(email: str, disabled: bool) -> None:
    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            user = await accounts.get_user(session, email)
            await accounts.set_disabled(
                session, user=user, disabled=disabled, now=container.clock.now()
            )

    run(work)


@users.command("disable")
@click.option("--email", required=True)
def users_disable(email: str) -> None:
    """Stop a user from signing in; their open sessions end at their next request."""
    _set_disabled(email, True)
    click.echo(f"{email} disabled")


@users.command("enable")
@click.option("--email", required=True)
def users_enable(email: str) -> None:
    _set_disabled(email, False)
    click.echo(f"{email} enabled")


@users.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(email: str, password: str) -> None:
    """Reset a user's password (ends their sessions)."""

    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            user = await accounts.get_user(session, email)
            await accounts.set_password(session, user=user, password=password)

    run(work)
    click.echo(f"password of {email} changed")
