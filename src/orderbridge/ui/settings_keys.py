"""Settings, API keys (owners only): the store's merchant and checkout keys, creating one
(its secret is shown on that one page and never again: only its hash is stored) and
revoking one after a confirmation page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from orderbridge.bootstrap import Container
from orderbridge.db.models import ApiKey
from orderbridge.errors import NotFound
from orderbridge.schemas_common import has_control_characters
from orderbridge.stores import service as stores
from orderbridge.ui.deps import ContainerDep, OwnerAccess, StoreContext
from orderbridge.ui.forms import FormState
from orderbridge.ui.rendering import flash, redirect, render, url

router = APIRouter()

# Key ids are "key_" and Crockford base32: anything else is a bad link, not a query.
KeyIdPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_]+$")]
KIND_OPTIONS = [
    (stores.KeyKind.MERCHANT.value, "Merchant key (GL.…)"),
    (stores.KeyKind.CHECKOUT.value, "Checkout key (ck_…)"),
]
# The page that shows a new key's secret must not be kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


async def _keys_page(
    request: Request,
    access: StoreContext,
    container: ContainerDep,
    form: FormState | None = None,
    *,
    status_code: int = 200,
) -> Response:
    async with container.db.reader() as session:
        keys = await stores.list_keys(session, access.store_id)
    return render(
        request,
        "settings/keys.html",
        {
            "nav": "settings",
            "section": "keys",
            "keys": sorted(keys, key=lambda k: (k.revoked_at is not None, k.created_at)),
            "form": form or FormState({"kind": stores.KeyKind.MERCHANT.value}),
            "kind_options": KIND_OPTIONS,
        },
        status_code=status_code,
    )


@router.get("/stores/{store_id}/settings/keys", name="settings_keys")
async def keys_page(request: Request, access: OwnerAccess, container: ContainerDep) -> Response:
    return await _keys_page(request, access, container)


def _check_key_form(form: FormState) -> None:
    if form.value("kind") not in {kind.value for kind in stores.KeyKind}:
        form.add("kind", "choose merchant or checkout")
    label = form.value("label").strip()
    if len(label) > 255:
        form.add("label", "at most 255 characters")
    elif has_control_characters(label):
        form.add("label", "control characters are not allowed")


@router.post("/stores/{store_id}/settings/keys", name="settings_key_create")
async def create_key(request: Request, access: OwnerAccess, container: ContainerDep) -> Response:
    form = FormState.of(await request.form())
    _check_key_form(form)
    if not form.ok:
        return await _keys_page(request, access, container, form, status_code=422)
    async with container.db.transaction() as session:
        issued = await stores.issue_key(
            session,
            store_id=access.store_id,
            kind=stores.KeyKind(form.value("kind")),
            now=container.clock.now(),
            label=form.value("label").strip() or None,
        )
    # Not a redirect: the secret exists only in this response (the session cookie is signed,
    # not encrypted, so it must not carry it to a follow-up page).
    response = render(
        request,
        "settings/key_created.html",
        {"nav": "settings", "section": "keys", "key": issued.key, "secret": issued.secret},
        status_code=201,
    )
    response.headers.update(NO_STORE)
    return response


async def _key_of_store(container: Container, access: StoreContext, key_id: str) -> ApiKey:
    async with container.db.reader() as session:
        key = await session.get(ApiKey, key_id)
    if key is None or key.store_id != access.store_id:
        raise NotFound(f"no key {key_id}", code="key_not_found")
    return key


@router.get("/stores/{store_id}/settings/keys/{key_id}/revoke", name="settings_key_revoke_confirm")
async def revoke_confirm(
    request: Request, key_id: KeyIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    key = await _key_of_store(container, access, key_id)
    if key.revoked_at is not None:
        flash(request, f"Key {key.prefix}… was already revoked.", "error")
        return redirect(url(request, "settings_keys", store_id=access.store_id))
    return render(
        request,
        "settings/key_revoke.html",
        {"nav": "settings", "section": "keys", "key": key},
    )


@router.post("/stores/{store_id}/settings/keys/{key_id}/revoke", name="settings_key_revoke")
async def revoke(
    request: Request, key_id: KeyIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    async with container.db.transaction() as session:
        key = await stores.revoke_key(
            session, key_id, now=container.clock.now(), store_id=access.store_id
        )
        prefix = key.prefix
    flash(request, f"Key {prefix}… revoked: requests with it are refused from now on.")
    return redirect(url(request, "settings_keys", store_id=access.store_id))
