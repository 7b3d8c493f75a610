"""Command-line entry point. Each command parses its options, runs a use case in a
transaction and prints the result (``--json`` for scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import click
import uvicorn

from orderbridge.bootstrap import Container, build
from orderbridge.cli import processing as processing_commands
from orderbridge.cli.common import emit, load_settings, prepare_database, run, run_serving
from orderbridge.cli.connections import connections as connections_commands
from orderbridge.cli.connections import push as push_commands
from orderbridge.cli.refunds import refunds as refunds_commands
from orderbridge.cli.users import users as users_commands
from orderbridge.cli.webhooks import webhooks as webhooks_commands
from orderbridge.db.migrate import upgrade
from orderbridge.jobs import queue
from orderbridge.runtime import start_background
from orderbridge.settings import Settings
from orderbridge.stores import service as stores


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """orderbridge: order processing for cross-border checkouts."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# ---- running ------------------------------------------------------------------------------


def _serve(
    settings: Settings,
    *,
    before: Callable[[Container], Awaitable[None]] | None = None,
    during: Callable[[Container], Awaitable[None]] | None = None,
) -> None:
    from orderbridge.api.app import create_app

    async def main() -> None:
        container = build(settings)
        if before is not None:
            await before(container)
        app = create_app(container)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="info", access_log=False
        )
        server = uvicorn.Server(config)
        side = asyncio.ensure_future(during(container)) if during is not None else None
        try:
            await server.serve()
        finally:
            if side is not None:
                side.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await side

    run_serving(main())


@main.command()
@click.option("--host", default=None, help="default 127.0.0.1 (ORDERBRIDGE_HOST)")
@click.option("--port", type=int, default=None, help="default 8000 (ORDERBRIDGE_PORT)")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    envvar="ORDERBRIDGE_API_WORKERS",
    show_default=True,
    help="API processes sharing the port (about one per core)",
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the API (and, unless ORDERBRIDGE_WORKER_MODE=off, a worker in the same process).

    With --workers N, uvicorn runs N processes accepting on the one port, each with its own
    app and, unless the worker mode is off, its own worker: the stateless scale-out of one
    machine (every process reads the same settings from the environment)."""
    settings = load_settings()
    settings.host = host or settings.host
    settings.port = port or settings.port
    prepare_database(settings)
    if workers == 1:
        _serve(settings)
        return
    uvicorn.run(
        "orderbridge.api.asgi:create",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@main.command()
@click.option("--port", type=int, default=None)
def demo(port: int | None) -> None:
    """Run the service with a demo store, printed keys and orders flowing (SQLite)."""
    from orderbridge.demo import demo_traffic, ensure_demo_store

    settings = load_settings()
    settings.port = port or settings.port
    prepare_database(settings)
    state: dict[str, str] = {}

    async def before(container: Container) -> None:
        state.update(await ensure_demo_store(container, settings.data_dir / "demo.json"))
        base = f"http://{settings.host}:{settings.port}"
        click.echo(
            "\n".join(
                [
                    "",
                    "orderbridge demo",
                    f"  API            {base}   (docs: {base}/docs)",
                    f"  store id       {state['store_id']}",
                    f"  merchant key   {state['merchant_key']}",
                    f"  checkout key   {state['checkout_key']}",
                    "",
                    f"  Merchant Account  {base}/account/",
                    f"    email        {state['user_email']}",
                    f"    password     {state['user_password']}",
                    "",
                    "  try:",
                    f"    curl -H 'Authorization: Bearer {state['merchant_key']}' \\",
                    f"         '{base}/v2/events/{state['store_id']}?after_event_id='",
                    "",
                ]
            )
        )

    async def during(container: Container) -> None:
        await demo_traffic(container, state["store_id"])

    _serve(settings, before=before, during=during)


@main.command()
@click.option("--concurrency", type=int, default=None, help="jobs run at once")
def worker(concurrency: int | None) -> None:
    """Run a worker process: jobs and webhook deliveries, until SIGTERM or SIGINT."""
    settings = load_settings()
    if concurrency:
        settings.worker_concurrency = concurrency

    async def work(container: Container) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("orderbridge.worker").info("worker started")
        await asyncio.gather(*start_background(container, stop))

    run(work, settings, serving=True)


# ---- database -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    settings = load_settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = build(settings)
    upgrade(container.db.sync_url, revision)
    asyncio.run(container.close())
    click.echo(f"database at {revision}")


# ---- stores and keys ----------------------------------------------------------------------


@main.group(name="stores")
def stores_group() -> None:
    """Stores."""


@stores_group.command("create")
@click.option("--name", required=True)
@click.option("--currency", required=True, help="base currency, ISO 4217")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2")
@click.option("--json", "as_json", is_flag=True)
def stores_create(name: str, currency: str, country: str, as_json: bool) -> None:
    """Create a store and print its id."""

    async def work(container: Container) -> dict[str, str]:
        async with container.db.transaction() as session:
            store = await stores.create_store(
                session,
                name=name,
                currency=currency.upper(),
                country=country.upper(),
                now=container.clock.now(),
            )
            return {
                "id": store.id,
                "name": store.name,
                "currency": store.currency,
                "country": store.country,
            }

    store = run(work)
    emit(as_json, store, store["id"])


@stores_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def stores_list(as_json: bool) -> None:
    async def work(container: Container) -> list[dict[str, str]]:
        async with container.db.reader() as session:
            return [
                {"id": s.id, "name": s.name, "currency": s.currency, "country": s.country}
                for s in await stores.list_stores(session)
            ]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    for row in [] if as_json else rows:
        click.echo(f"{row['id']}  {row['currency']}  {row['country']}  {row['name']}")


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--store", "store_id", required=True)
@click.option("--kind", type=click.Choice([k.value for k in stores.KeyKind]), required=True)
@click.option("--label", default=None)
@click.option("--json", "as_json", is_flag=True)
def keys_create(store_id: str, kind: str, label: str | None, as_json: bool) -> None:
    """Create a key and print it. It is shown this once; only its hash is stored."""

    async def work(container: Container) -> dict[str, str]:
        async with container.db.transaction() as session:
            issued = await stores.issue_key(
                session,
                store_id=store_id,
                kind=stores.KeyKind(kind),
                now=container.clock.now(),
                label=label,
            )
            return {"id": issued.key.id, "store_id": store_id, "kind": kind, "key": issued.secret}

    data = run(work)
    emit(as_json, data, data["key"])
    if not as_json:
        click.echo(f"(key id {data['id']}: use it to revoke the key)", err=True)


@keys.command("revoke")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True)
def keys_revoke(key_id: str, as_json: bool) -> None:
    """Revoke a key by its id (key_...)."""

    async def work(container: Container) -> dict[str, str]:
        async with container.db.transaction() as session:
            key = await stores.revoke_key(session, key_id, now=container.clock.now())
            return {"id": key.id, "revoked_at": str(key.revoked_at)}

    data = run(work)
    emit(as_json, data, f"revoked {data['id']}")


@keys.command("list")
@click.option("--store", "store_id", required=True)
@click.option("--json", "as_json", is_flag=True)
def keys_list(store_id: str, as_json: bool) -> None:
    async def work(container: Container) -> list[dict[str, str | None]]:
        async with container.db.reader() as session:
            return [
                {
                    "id": k.id,
                    "kind": k.kind,
                    "prefix": k.prefix,
                    "label": k.label,
                    "created_at": str(k.created_at),
                    "revoked_at": str(k.revoked_at) if k.revoked_at else None,
                }
                for k in await stores.list_keys(session, store_id)
            ]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "revoked" if row["revoked_at"] else "live"
        click.echo(f"{row['id']}  {row['kind']:8}  {row['prefix']}…  {state}")


# ---- jobs ---------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """Background jobs."""


@jobs.command("list")
@click.option("--failed", is_flag=True, help="only jobs that gave up")
@click.option("--json", "as_json", is_flag=True)
def jobs_list(failed: bool, as_json: bool) -> None:
    async def work(container: Container) -> list[dict[str, Any]]:
        async with container.db.reader() as session:
            status = queue.JobStatus.FAILED if failed else None
            return [
                {
                    "id": j.id,
                    "kind": j.kind,
                    "order_id": j.order_id,
                    "status": j.status,
                    "attempts": j.attempts,
                    "run_at": str(j.run_at),
                    "last_error": j.last_error,
                }
                for j in await queue.list_jobs(session, status=status)
            ]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['id']}  {row['kind']:16} {row['status']:8} attempts={row['attempts']}"
            f"  {row['last_error'] or ''}"
        )


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Put a failed job back in the queue."""

    async def work(container: Container) -> bool:
        async with container.db.transaction() as session:
            return await queue.retry_failed(session, job_id, now=container.clock.now())

    if not run(work):
        raise click.ClickException(f"job {job_id} is not a failed job")
    click.echo(f"job {job_id} queued")


main.add_command(webhooks_commands)
main.add_command(refunds_commands)
main.add_command(users_commands)
main.add_command(processing_commands.processing)
main.add_command(connections_commands)
main.add_command(push_commands)
main.add_command(processing_commands.review)
main.add_command(processing_commands.payments)
