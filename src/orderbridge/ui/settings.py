"""Settings, the store (owners only): processing options (each save is a new version of
the store's processing configuration, ``processing.configs``), the whole configuration as
JSON for what the form does not show, and the plug & play connection with its failure
policy and a "test connection" button (``ConnectionService``)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from orderbridge.bootstrap import Container
from orderbridge.connectors.mapping import CurrencyMode
from orderbridge.connectors.registry import UnknownPlatform
from orderbridge.connectors.schemas import ConnectionIn, FailurePolicy
from orderbridge.errors import NotFound, ValidationFailed
from orderbridge.processing import configs
from orderbridge.ui import settings_forms as forms
from orderbridge.ui.deps import ContainerDep, OwnerAccess, StoreContext
from orderbridge.ui.forms import FormState
from orderbridge.ui.rendering import flash, redirect, render, url

router = APIRouter()

BASE = "/stores/{store_id}/settings"
POLICY_OPTIONS = [
    (FailurePolicy.NOTIFY.value, "Notify me and keep the order ready (accept it by hand)"),
    (FailurePolicy.CANCEL.value, "Cancel the order and refund the buyer"),
]
CURRENCY_OPTIONS = [
    (CurrencyMode.BASE.value, "The store's currency (converted)"),
    (CurrencyMode.BUYER.value, "The buyer's currency"),
]


def _factory_fields(container: Container, platform: str) -> tuple[tuple[str, ...], ...]:
    try:
        factory = container.connections.registry.factory(platform)
    except UnknownPlatform:
        return (), ()
    return tuple(factory.credential_fields), tuple(factory.option_fields)


async def render_settings_page(
    request: Request,
    access: StoreContext,
    container: Container,
    *,
    processing: FormState | None = None,
    raw: FormState | None = None,
    connection_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    async with container.db.reader() as session:
        version, config = await configs.current(session, access.store_id)
        connection = await container.connections.find(session, access.store_id)
    platforms = [p["platform"] for p in container.connections.platforms()]
    chosen = request.query_params.get("platform", "")
    if connection_form is not None:
        chosen = connection_form.value("platform")
    elif chosen not in platforms:
        chosen = connection.platform if connection is not None else ""
    credential_fields, option_fields = _factory_fields(container, chosen) if chosen else ((), ())
    stored = (
        set(container.connections.render(connection)["credentials_set"])
        if connection is not None and connection.platform == chosen
        else set()
    )
    return render(
        request,
        "settings/store.html",
        {
            "nav": "settings",
            "section": "store",
            "version": version,
            "options": forms.PROCESSING_OPTIONS,
            "processing": processing or forms.processing_values(config),
            "raw": raw or FormState({"config": forms.config_json(config)}),
            "connection": connection,
            "platforms": platforms,
            "chosen": chosen,
            "credential_fields": credential_fields,
            "option_fields": option_fields,
            "stored_credentials": stored,
            "connection_form": connection_form or forms.connection_values(connection, chosen),
            "policy_options": POLICY_OPTIONS,
            "currency_options": CURRENCY_OPTIONS,
        },
        status_code=status_code,
    )


@router.get(BASE, name="settings")
async def settings_page(request: Request, access: OwnerAccess, container: ContainerDep) -> Response:
    return await render_settings_page(request, access, container)


async def _save_config(
    container: Container, access: StoreContext, document: dict[str, object]
) -> tuple[int, bool]:
    config = configs.parse(document)
    async with container.db.transaction() as session:
        return await configs.replace(
            session, access.store_id, config, now=container.clock.now(), by=access.user.id
        )


def _saved(request: Request, access: StoreContext, version: int, new: bool) -> Response:
    flash(
        request,
        f"Processing options saved as version {version}: new orders are processed with them."
        if new
        else "Nothing changed.",
    )
    return redirect(url(request, "settings", store_id=access.store_id))


@router.post(BASE + "/processing", name="settings_processing")
async def save_processing(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    async with container.db.reader() as session:
        _, current = await configs.current(session, access.store_id)
    try:
        version, new = await _save_config(
            container, access, forms.processing_document(current, form)
        )
    except ValidationFailed as error:
        for item in error.errors:
            form.add(forms.processing_error_field(item.path), item.message)
        return await render_settings_page(
            request, access, container, processing=form, status_code=422
        )
    return _saved(request, access, version, new)


@router.post(BASE + "/processing/json", name="settings_processing_json")
async def save_processing_json(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    try:
        document = json.loads(form.value("config"))
        if not isinstance(document, dict):
            raise ValueError("a JSON object is expected")
        version, new = await _save_config(container, access, document)
    except (ValueError, ValidationFailed) as error:
        if isinstance(error, ValidationFailed):
            message = "; ".join(f"{item.path}: {item.message}" for item in error.errors)
        else:
            message = f"not valid JSON: {error}"
        form.add("config", message)
        return await render_settings_page(request, access, container, raw=form, status_code=422)
    return _saved(request, access, version, new)


@router.post(BASE + "/connection", name="settings_connection")
async def save_connection(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    credential_fields, option_fields = _factory_fields(container, form.value("platform"))
    body = forms.connection_body(form, credential_fields, option_fields)
    # Secrets are never sent back to the page, even a refused one.
    form.values = {k: v for k, v in form.values.items() if not k.startswith("credentials.")}
    try:
        spec = ConnectionIn.model_validate(body)
        async with container.db.transaction() as session:
            _, created = await container.connections.put(session, access.store_id, spec)
    except ValidationError as error:
        form.absorb_pydantic(error, _error_fields(error))
        return await render_settings_page(
            request, access, container, connection_form=form, status_code=422
        )
    except ValidationFailed as error:
        for item in error.errors:
            form.add(forms.connection_error_field(item.path), item.message)
        return await render_settings_page(
            request, access, container, connection_form=form, status_code=422
        )
    flash(
        request,
        ("Connection created." if created else "Connection saved.")
        + " Test it to check that the platform answers.",
    )
    return redirect(url(request, "settings", store_id=access.store_id) + "#connection")


def _error_fields(error: ValidationError) -> dict[str, str]:
    paths = (".".join(str(p) for p in item["loc"]) for item in error.errors())
    return {path: forms.connection_error_field(path) for path in paths}


@router.post(BASE + "/connection/test", name="settings_connection_test")
async def test_connection(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    try:
        connection = await container.connections.test(container.db, access.store_id)
    except NotFound:
        flash(request, "Save a connection first, then test it.", "error")
        return redirect(url(request, "settings", store_id=access.store_id) + "#connection")
    if connection.last_test_ok:
        flash(request, "Connection works: the platform answered.")
    else:
        flash(
            request,
            f"Connection test failed: {connection.last_test_detail or connection.last_test_code}",
            "error",
        )
    return redirect(url(request, "settings", store_id=access.store_id) + "#connection")


@router.post(BASE + "/connection/delete", name="settings_connection_delete")
async def delete_connection(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    if form.value("confirm") != forms.YES:
        flash(request, "Tick the box to confirm removing the connection.", "error")
        return redirect(url(request, "settings", store_id=access.store_id) + "#connection")
    try:
        async with container.db.transaction() as session:
            await container.connections.delete(session, access.store_id)
    except NotFound:
        flash(request, "There was no connection to remove.", "error")
    else:
        flash(request, "Connection removed: orders are no longer pushed to the platform.")
    return redirect(url(request, "settings", store_id=access.store_id))
