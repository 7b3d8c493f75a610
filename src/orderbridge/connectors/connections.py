"""A store's plug & play connection: create or replace, read, delete, test.

Credentials are encrypted with the container's ``SecretBox`` and never leave this module
in plain text except towards the connector (``settings_of``); reading a connection says
which credential fields are set, not their values. A connection is checked when it is
saved: the platform must have a connector, the credential and option fields must be the
factory's, the base URL must pass the outbound guard (https and a public host, unless
``ORDERBRIDGE_OUTBOUND_ALLOW_PRIVATE``), and the factory must accept the values (it raises
``ValueError`` for a malformed one, e.g. a custom endpoint's signing secret).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock, rfc3339
from orderbridge.connectors.pool import ConnectorPool, revision_of
from orderbridge.connectors.port import ConnectionCheck, ConnectionSettings, RejectionCode
from orderbridge.connectors.registry import Registry, UnknownPlatform
from orderbridge.connectors.schemas import ConnectionIn
from orderbridge.crypto import SecretBox, SecretBoxError
from orderbridge.db.database import Database
from orderbridge.db.models import StoreConnection
from orderbridge.errors import FieldError, NotFound, ValidationFailed
from orderbridge.outbound.guard import OutboundPolicy, UnsafeTarget, check_url

log = logging.getLogger("orderbridge.connectors")


class ConnectionService:
    def __init__(
        self,
        clock: Clock,
        box: SecretBox,
        policy: OutboundPolicy,
        registry: Registry,
        pool: ConnectorPool,
    ) -> None:
        self.clock = clock
        self.box = box
        self.policy = policy
        self.registry = registry
        self.pool = pool

    # ---- writing ----------------------------------------------------------------------------

    async def put(
        self, session: AsyncSession, store_id: str, spec: ConnectionIn
    ) -> tuple[StoreConnection, bool]:
        """Create or replace the store's connection; True when it was created."""
        existing = await self.find(session, store_id, for_update=True)
        credentials = dict(spec.credentials)
        if existing is not None and existing.platform == spec.platform:
            credentials = {**self.credentials_of(existing), **credentials}
        await self._check(spec, credentials)
        now = self.clock.now()
        values: dict[str, Any] = {
            "platform": spec.platform,
            "base_url": spec.base_url,
            "credentials_encrypted": self.box.encrypt(orjson.dumps(credentials).decode()),
            "options": dict(spec.options),
            "failure_policy": spec.failure_policy.value,
            "max_attempts": spec.max_attempts,
            "retry_schedule": {"delays": list(spec.retry_delays)},
            "currency_mode": spec.currency_mode.value,
            "timeout": spec.timeout,
            "enabled": spec.enabled,
            "updated_at": now,
        }
        if existing is None:
            connection = StoreConnection(
                store_id=store_id,
                version=1,
                created_at=now,
                last_test_at=None,
                last_test_ok=None,
                last_test_code=None,
                last_test_detail=None,
                **values,
            )
            session.add(connection)
            await session.flush()
            return connection, True
        for name, value in values.items():
            setattr(existing, name, value)
        existing.version += 1
        # A test of other settings says nothing about these.
        existing.last_test_at = existing.last_test_ok = None
        existing.last_test_code = existing.last_test_detail = None
        await session.flush()
        return existing, False

    async def delete(self, session: AsyncSession, store_id: str) -> None:
        """Remove the connection: orders not pushed yet stay READY for the merchant (their
        push jobs find no connection and stop)."""
        result = await session.execute(
            delete(StoreConnection).where(StoreConnection.store_id == store_id)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound("the store has no plug & play connection", code="no_connection")

    async def test(self, db: Database, store_id: str) -> StoreConnection:
        """Ask the platform (``test_connection``) and keep the answer. Not one transaction:
        the platform is called between reading the connection and writing the result, so
        that no transaction waits for it."""
        async with db.reader() as session:
            connection = await self.get(session, store_id)
        revision = revision_of(connection)
        try:
            async with self.pool.connector(
                store_id, revision, lambda: self.settings_of(connection)
            ) as connector:
                check = await connector.test_connection()
        except (UnknownPlatform, SecretBoxError) as error:
            check = ConnectionCheck(False, str(error), RejectionCode.REJECTED)
        except Exception as error:  # a connector must not raise here; say so, not 500
            log.exception("the %s connector's test failed", connection.platform)
            check = ConnectionCheck(False, f"{type(error).__name__}: {error}")
        async with db.transaction() as session:
            return await self.record_test(session, store_id, revision, check)

    async def record_test(
        self, session: AsyncSession, store_id: str, revision: str, check: ConnectionCheck
    ) -> StoreConnection:
        """Keep a test's result, unless the connection changed while it ran."""
        connection = await self.get(session, store_id, for_update=True)
        if revision_of(connection) == revision:
            connection.last_test_at = self.clock.now()
            connection.last_test_ok = check.ok
            connection.last_test_code = check.code.value if check.code else None
            connection.last_test_detail = check.detail[:2000]
            await session.flush()
        return connection

    # ---- reading ----------------------------------------------------------------------------

    async def find(
        self, session: AsyncSession, store_id: str, *, for_update: bool = False
    ) -> StoreConnection | None:
        statement = select(StoreConnection).where(StoreConnection.store_id == store_id)
        if for_update:
            statement = statement.with_for_update()
        return await session.scalar(statement.execution_options(populate_existing=True))

    async def get(
        self, session: AsyncSession, store_id: str, *, for_update: bool = False
    ) -> StoreConnection:
        connection = await self.find(session, store_id, for_update=for_update)
        if connection is None:
            raise NotFound("the store has no plug & play connection", code="no_connection")
        return connection

    def credentials_of(self, connection: StoreConnection) -> dict[str, str]:
        loaded: dict[str, str] = orjson.loads(self.box.decrypt(connection.credentials_encrypted))
        return loaded

    def settings_of(self, connection: StoreConnection) -> ConnectionSettings:
        """What the connector is built from, credentials decrypted."""
        return ConnectionSettings(
            platform=connection.platform,
            base_url=connection.base_url,
            credentials=self.credentials_of(connection),
            options=dict(connection.options),
            connect_timeout=min(5.0, connection.timeout),
            timeout=connection.timeout,
        )

    def render(self, connection: StoreConnection) -> dict[str, Any]:
        last_test = None
        if connection.last_test_at is not None:
            last_test = {
                "at": rfc3339(connection.last_test_at),
                "ok": bool(connection.last_test_ok),
                "code": connection.last_test_code,
                "detail": connection.last_test_detail,
            }
        return {
            "store_id": connection.store_id,
            "platform": connection.platform,
            "base_url": connection.base_url,
            "credentials_set": sorted(k for k, v in self.credentials_of(connection).items() if v),
            "options": dict(connection.options),
            "failure_policy": connection.failure_policy,
            "max_attempts": connection.max_attempts,
            "retry_delays": list(connection.retry_schedule["delays"]),
            "currency_mode": connection.currency_mode,
            "timeout": connection.timeout,
            "enabled": connection.enabled,
            "last_test": last_test,
            "created_at": rfc3339(connection.created_at),
            "updated_at": rfc3339(connection.updated_at),
        }

    def platforms(self) -> list[dict[str, Any]]:
        out = []
        for name in self.registry.platforms():
            factory = self.registry.factory(name)
            out.append(
                {
                    "platform": name,
                    "credential_fields": list(factory.credential_fields),
                    "option_fields": list(factory.option_fields),
                }
            )
        return out

    # ---- checking ---------------------------------------------------------------------------

    async def _check(self, spec: ConnectionIn, credentials: dict[str, str]) -> None:
        try:
            factory = self.registry.factory(spec.platform)
        except UnknownPlatform as unknown:
            raise ValidationFailed(
                [FieldError("platform", str(unknown), "unknown_platform")]
            ) from None
        errors: list[FieldError] = []
        try:
            check_url(spec.base_url, self.policy)
        except UnsafeTarget as refusal:
            errors.append(FieldError("base_url", str(refusal), str(refusal.code)))
        # A factory may name credentials that are alternatives (Magento: a token, or a
        # user and password); it then refuses an insufficient set itself (ValueError).
        optional = set(getattr(factory, "optional_credential_fields", ()))
        for name in factory.credential_fields:
            if name not in optional and not credentials.get(name):
                errors.append(FieldError(f"credentials.{name}", "is required", "missing"))
        for name in sorted(set(credentials) - set(factory.credential_fields)):
            errors.append(
                FieldError(f"credentials.{name}", f"not a {spec.platform} field", "unknown_field")
            )
        for name in sorted(set(spec.options) - set(factory.option_fields)):
            errors.append(
                FieldError(f"options.{name}", f"not a {spec.platform} option", "unknown_field")
            )
        if errors:
            raise ValidationFailed(errors)
        settings = ConnectionSettings(
            platform=spec.platform,
            base_url=spec.base_url,
            credentials=credentials,
            options=dict(spec.options),
            timeout=spec.timeout,
        )
        try:
            connector = factory(settings)  # built to check the values, then closed
        except ValueError as error:
            raise ValidationFailed([FieldError("credentials", str(error), "invalid")]) from None
        await connector.aclose()
