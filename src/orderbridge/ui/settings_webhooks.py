"""Settings, webhook endpoints (owners only): the list with each endpoint's health,
adding one, editing it, enabling or disabling it, revealing and rotating its signing
secret. The delivery log of an endpoint is in ``settings_deliveries``. Every action calls
``WebhookService``, the same use cases as ``/v2/webhooks``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from orderbridge.bootstrap import Container
from orderbridge.db.models import WebhookEndpoint
from orderbridge.errors import ValidationFailed
from orderbridge.events.render import EVENT_NAMES
from orderbridge.ui.deps import ContainerDep, OwnerAccess, StoreContext
from orderbridge.ui.forms import FormState
from orderbridge.ui.rendering import flash, formats, redirect, render, url
from orderbridge.webhooks.repository import DeliveryStatus, filter_names
from orderbridge.webhooks.schemas import EndpointCreate, EndpointUpdate
from orderbridge.webhooks.service import DeliveryFilter

router = APIRouter()

# Endpoint ids are "we_" and Crockford base32: anything else is a bad link, not a query.
EndpointIdPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_]+$")]
BASE = "/stores/{store_id}/settings/webhooks"
EVENT_CHOICES = sorted(EVENT_NAMES)
NO_STORE = {"Cache-Control": "no-store"}
LOG_SIZE = 25
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
LOG_STATUSES = frozenset(
    {
        DeliveryStatus.PENDING,
        DeliveryStatus.SENDING,
        DeliveryStatus.SUCCEEDED,
        DeliveryStatus.FAILED,
    }
)


def endpoint_health(endpoint: WebhookEndpoint) -> tuple[str, str]:
    """A short state and its badge class, for the list, the page and the dashboard."""
    if not endpoint.enabled:
        if endpoint.disabled_reason == "manual":
            return "disabled", "badge"
        return f"disabled ({endpoint.disabled_reason})", "badge badge-bad"
    if endpoint.failing_since is not None:
        return "failing", "badge badge-bad"
    return "enabled", "badge badge-ok"


def _form_of(form: FormData) -> tuple[FormState, list[str]]:
    state = FormState.of(form, omit=("events",))
    events = [value for value in form.getlist("events") if isinstance(value, str)]
    return state, events


def _body(state: FormState, events: list[str]) -> dict[str, Any]:
    """The API's endpoint request from the form (empty optional numbers: the defaults)."""
    body: dict[str, Any] = {
        "url": state.value("url"),
        "description": state.value("description").strip() or None,
        "events": events,
        "ordered": state.value("ordered") == "yes",
        "rate_limit": state.value("rate_limit").strip() or None,
    }
    if state.value("max_concurrency").strip():
        body["max_concurrency"] = state.value("max_concurrency").strip()
    return body


def _endpoint_values(endpoint: WebhookEndpoint) -> FormState:
    return FormState(
        {
            "url": endpoint.url,
            "description": endpoint.description or "",
            "ordered": "yes" if endpoint.ordered else "",
            "max_concurrency": str(endpoint.max_concurrency),
            "rate_limit": "" if endpoint.rate_limit is None else f"{endpoint.rate_limit:g}",
        }
    )


@router.get(BASE, name="settings_webhooks")
async def endpoints_page(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    async with container.db.reader() as session:
        endpoints = await container.webhooks.list_endpoints(session, access.store_id)
    return render(
        request,
        "settings/webhooks.html",
        {
            "nav": "settings",
            "section": "webhooks",
            "endpoints": endpoints,
            "health": endpoint_health,
            "filter_names": filter_names,
        },
    )


def _new_page(
    request: Request, form: FormState, events: list[str], *, status_code: int = 200
) -> Response:
    return render(
        request,
        "settings/webhook_new.html",
        {
            "nav": "settings",
            "section": "webhooks",
            "form": form,
            "events": events,
            "event_choices": EVENT_CHOICES,
        },
        status_code=status_code,
    )


@router.get(BASE + "/new", name="settings_webhook_new")
async def new_endpoint(request: Request, access: OwnerAccess) -> Response:
    return _new_page(request, FormState({"max_concurrency": "10"}), [])


@router.post(BASE + "/new", name="settings_webhook_create")
async def create_endpoint(
    request: Request, access: OwnerAccess, container: ContainerDep
) -> Response:
    form, events = _form_of(await request.form())
    try:
        spec = EndpointCreate.model_validate(_body(form, events))
        async with container.db.transaction() as session:
            endpoint, _ = await container.webhooks.create_endpoint(session, access.store_id, spec)
            endpoint_id = endpoint.id
    except ValidationError as error:
        form.absorb_pydantic(error)
        return _new_page(request, form, events, status_code=422)
    except ValidationFailed as error:
        form.absorb(error)
        return _new_page(request, form, events, status_code=422)
    flash(request, "Endpoint added. Reveal its signing secret below to verify deliveries.")
    return redirect(
        url(request, "settings_webhook", store_id=access.store_id, endpoint_id=endpoint_id)
    )


async def render_endpoint_page(
    request: Request,
    access: StoreContext,
    container: Container,
    endpoint_id: str,
    *,
    form: FormState | None = None,
    events: list[str] | None = None,
    reveal: bool = False,
    recover: FormState | None = None,
    status_code: int = 200,
) -> Response:
    # Unknown statuses and cursors are ignored: the log of a hand-edited link still shows.
    statuses = tuple(s for s in request.query_params.getlist("status") if s in LOG_STATUSES)
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 19 else None
    async with container.db.reader() as session:
        endpoint = await container.webhooks.get_endpoint(session, access.store_id, endpoint_id)
        deliveries = await container.webhooks.list_deliveries(
            session,
            DeliveryFilter(
                store_id=access.store_id,
                endpoint_id=endpoint.id,
                statuses=statuses,
                before_id=before_id,
                limit=LOG_SIZE + 1,
            ),
        )
        secrets = await container.webhooks.live_secrets(session, endpoint.id) if reveal else []
    response = render(
        request,
        "settings/webhook.html",
        {
            "nav": "settings",
            "section": "webhooks",
            "endpoint": endpoint,
            "health": endpoint_health(endpoint),
            "form": form or _endpoint_values(endpoint),
            "events": filter_names(endpoint.event_filter) if events is None else events,
            "event_choices": EVENT_CHOICES,
            "deliveries": deliveries[:LOG_SIZE],
            "older": deliveries[LOG_SIZE - 1].id if len(deliveries) > LOG_SIZE else None,
            "log_status": statuses[0] if statuses else "",
            "secrets": secrets,
            "recover": recover or _recover_values(request, container, endpoint),
        },
        status_code=status_code,
    )
    if reveal:
        response.headers.update(NO_STORE)
    return response


@router.get(BASE + "/{endpoint_id}", name="settings_webhook")
async def endpoint_page(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    return await render_endpoint_page(request, access, container, endpoint_id)


def _back(request: Request, access: StoreContext, endpoint_id: str) -> Response:
    return redirect(
        url(request, "settings_webhook", store_id=access.store_id, endpoint_id=endpoint_id)
    )


@router.post(BASE + "/{endpoint_id}", name="settings_webhook_update")
async def update_endpoint(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    form, events = _form_of(await request.form())
    body = _body(form, events)
    try:
        change = EndpointUpdate.model_validate(body)
        async with container.db.transaction() as session:
            await container.webhooks.update_endpoint(session, access.store_id, endpoint_id, change)
    except (ValidationError, ValidationFailed) as error:
        if isinstance(error, ValidationError):
            form.absorb_pydantic(error)
        else:
            form.absorb(error)
        return await render_endpoint_page(
            request, access, container, endpoint_id, form=form, events=events, status_code=422
        )
    flash(request, "Endpoint saved.")
    return _back(request, access, endpoint_id)


async def _set_enabled(
    request: Request, access: StoreContext, container: Container, endpoint_id: str, on: bool
) -> Response:
    async with container.db.transaction() as session:
        await container.webhooks.update_endpoint(
            session, access.store_id, endpoint_id, EndpointUpdate.model_validate({"enabled": on})
        )
    flash(
        request,
        "Endpoint enabled: pending deliveries go out again."
        if on
        else "Endpoint disabled: no deliveries are sent to it until you enable it.",
    )
    return _back(request, access, endpoint_id)


@router.post(BASE + "/{endpoint_id}/enable", name="settings_webhook_enable")
async def enable(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    return await _set_enabled(request, access, container, endpoint_id, True)


@router.post(BASE + "/{endpoint_id}/disable", name="settings_webhook_disable")
async def disable(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    return await _set_enabled(request, access, container, endpoint_id, False)


@router.post(BASE + "/{endpoint_id}/secret", name="settings_webhook_reveal")
async def reveal_secret(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    """A POST, so that a secret is never in a URL, a history entry or a cache."""
    return await render_endpoint_page(request, access, container, endpoint_id, reveal=True)


@router.post(BASE + "/{endpoint_id}/rotate", name="settings_webhook_rotate")
async def rotate_secret(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    async with container.db.transaction() as session:
        await container.webhooks.rotate_secret(session, access.store_id, endpoint_id)
    hours = container.webhooks.secret_overlap.total_seconds() / 3600
    flash(
        request,
        f"New signing secret created: reveal it to copy it. The previous one keeps signing "
        f"for {hours:g} hours so your receiver can switch without losing a delivery.",
    )
    return _back(request, access, endpoint_id)


@router.post(BASE + "/{endpoint_id}/delete", name="settings_webhook_delete")
async def delete_endpoint(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    if form.value("confirm") != "yes":
        flash(request, "Tick the box to confirm deleting the endpoint.", "error")
        return _back(request, access, endpoint_id)
    async with container.db.transaction() as session:
        await container.webhooks.delete_endpoint(session, access.store_id, endpoint_id)
    flash(request, "Endpoint deleted, with its delivery log.")
    return redirect(url(request, "settings_webhooks", store_id=access.store_id))


def _recover_values(request: Request, container: Container, endpoint: WebhookEndpoint) -> FormState:
    """Since when to send again: when the endpoint was disabled or began failing, else its
    last success, else a day ago."""
    since = endpoint.disabled_at or endpoint.failing_since or endpoint.last_success_at
    since = since or container.clock.now() - timedelta(days=1)
    local = since.astimezone(formats(request).zone)
    return FormState({"since": local.strftime(LOCAL_MINUTE)})
