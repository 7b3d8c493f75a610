"""Plug & play: the store's connection (``/v2/connections/{store_id}``) and an order's push
(``/v2/orders/{store_id}/{order_id}/push``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from orderbridge.api.auth import ContainerDep, MerchantKey, OrderId
from orderbridge.api.responses import json_response
from orderbridge.connectors.push_log import render_log
from orderbridge.connectors.schemas import ConnectionIn, ConnectionOut, PlatformOut, PushLog
from orderbridge.schemas_common import problem_responses

router = APIRouter(tags=["plug & play"])


@router.get(
    "/v2/connections/{store_id}/platforms",
    response_model=list[PlatformOut],
    responses=problem_responses(401, 404),
    summary="The platforms a connection can use, with their credential and option fields",
)
async def list_platforms(store_id: str, principal: MerchantKey, container: ContainerDep) -> Any:
    return container.connections.platforms()


@router.put(
    "/v2/connections/{store_id}",
    response_model=ConnectionOut,
    responses={201: {"model": ConnectionOut}, **problem_responses(401, 404, 422)},
    summary="Connect the store to its e-commerce platform (create or replace)",
)
async def put_connection(
    store_id: str, body: ConnectionIn, principal: MerchantKey, container: ContainerDep
) -> Any:
    """From now on every order that becomes READY is pushed into the platform. Credentials
    are stored encrypted and never returned; credential fields left out keep their stored
    values while the platform stays the same. The base URL must be a public https address."""
    async with container.db.transaction() as session:
        connection, created = await container.connections.put(session, principal.store_id, body)
        rendered = container.connections.render(connection)
    return json_response(rendered, status_code=201 if created else 200)


@router.get(
    "/v2/connections/{store_id}",
    response_model=ConnectionOut,
    responses=problem_responses(401, 404),
    summary="The store's connection (which credential fields are set, never their values)",
)
async def get_connection(store_id: str, principal: MerchantKey, container: ContainerDep) -> Any:
    async with container.db.reader() as session:
        connection = await container.connections.get(session, principal.store_id)
        return container.connections.render(connection)


@router.delete(
    "/v2/connections/{store_id}",
    status_code=204,
    responses=problem_responses(401, 404),
    summary="Disconnect the store: READY orders are left for the merchant to accept",
)
async def delete_connection(
    store_id: str, principal: MerchantKey, container: ContainerDep
) -> Response:
    async with container.db.transaction() as session:
        await container.connections.delete(session, principal.store_id)
    return Response(status_code=204)


@router.post(
    "/v2/connections/{store_id}/test",
    response_model=ConnectionOut,
    responses=problem_responses(401, 404),
    summary="Test the connection now (reach and authenticate); the result is kept",
)
async def test_connection(store_id: str, principal: MerchantKey, container: ContainerDep) -> Any:
    connection = await container.connections.test(container.db, principal.store_id)
    return container.connections.render(connection)


@router.get(
    "/v2/orders/{store_id}/{order_id}/push",
    response_model=PushLog,
    responses=problem_responses(401, 404),
    summary="The order's push into the platform: its status and every attempt",
)
async def push_log(
    store_id: str, order_id: OrderId, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        order, attempts = await container.pushes.log(session, principal.store_id, order_id)
        return render_log(order, attempts)


@router.post(
    "/v2/orders/{store_id}/{order_id}/push",
    status_code=202,
    response_model=PushLog,
    responses=problem_responses(401, 404, 409),
    summary="Retry the push of a READY order (a new run of attempts)",
)
async def retry_push(
    store_id: str, order_id: OrderId, principal: MerchantKey, container: ContainerDep
) -> Any:
    """For an order whose push failed (``push_status`` `failed`) or never ran. `409` with
    `order_not_ready`, `push_not_possible` (not READY), `no_connection`,
    `connection_disabled` or `push_in_progress`."""
    async with container.db.transaction() as session:
        await container.pushes.retry(session, principal.store_id, order_id)
        order, attempts = await container.pushes.log(session, principal.store_id, order_id)
        rendered = render_log(order, attempts)
    return json_response(rendered, status_code=202)
