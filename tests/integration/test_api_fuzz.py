"""Property-based requests generated from the app's own OpenAPI document (schemathesis), on
the Order API and the checkout intake (contract §4, §5), plus a check of what that document
says about error answers.

Valid requests (positive) and schema-violating ones (negative) go to every operation with a
key of the right kind and the store's own id, so that they get past authentication; order ids
are either generated or those of real orders. Two properties are checked separately, so that
a known documentation gap in one cannot hide a server error in the other:

- no request gets a 5xx, every 4xx is ``application/problem+json`` with the RFC 9457 members
  and a ``code``, and every documented response matches its schema;
- every status is documented, and every schema-violating request is rejected.

SQLite only: the ASGI calls are synchronous (schemathesis runs the app on its own event-loop
thread), so the app gets its own container on a migrated SQLite file, seeded beforehand.
Bounded and derandomised, so that a run is short and reproducible."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from orderbridge.api.app import create_app
from orderbridge.bootstrap import build
from orderbridge.demo import sample_order
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings, WorkerMode
from tests.conftest import StoreKeys, create_store_with_keys
from tests.support import databases
from tests.support.problems import PROBLEM_MEDIA_TYPE, PROBLEM_MEMBERS

EXAMPLES_PER_RUN = 25


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    key: str | None = "merchant"  # which key of the store to send; None for no key
    negative: bool = False  # has a body or query that a negative case can break

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


OPERATIONS = [
    Operation("POST", "/v2/checkout/{store_id}/orders", key="checkout", negative=True),
    Operation("GET", "/v2/events/{store_id}", negative=True),
    Operation("GET", "/v2/orders/{store_id}", negative=True),
    Operation("GET", "/v2/orders/{store_id}/{order_id}"),
    Operation("POST", "/v2/orders/{store_id}/{order_id}/accept", negative=True),
    Operation("POST", "/v2/orders/{store_id}/{order_id}/cancel", negative=True),
    Operation("POST", "/v2/orders/{store_id}/{order_id}/refunds", negative=True),
    Operation("GET", "/v2/orders/{store_id}/{order_id}/refunds"),
    Operation("GET", "/v2/orders/{store_id}/{order_id}/timeline"),
    Operation("GET", "/v2/orders/{store_id}/{order_id}/push"),
    Operation("POST", "/v2/orders/{store_id}/{order_id}/push"),
    Operation("PUT", "/v2/connections/{store_id}", negative=True),
    Operation("GET", "/v2/connections/{store_id}"),
    Operation("GET", "/v2/connections/{store_id}/platforms"),
    Operation("GET", "/healthz", key=None),
]

KNOWN_DOCUMENTATION_BUGS: dict[tuple[str, GenerationMode], str] = {}
# created_from/created_to are pinned to valid times for the conformance run: malformed times
# have deterministic tests in test_malformed_input.py.
PINNED_FOR_CONFORMANCE = {
    "GET /v2/orders/{store_id}": {
        "created_from": "2020-01-01T00:00:00Z",
        "created_to": "2030-01-01T00:00:00Z",
    },
}


def _runs(*, known_bugs: dict[tuple[str, GenerationMode], str]) -> list[Any]:
    runs = []
    for operation in OPERATIONS:
        modes = [GenerationMode.POSITIVE]
        if operation.negative:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            reason = known_bugs.get((operation.label, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            runs.append(
                pytest.param(operation, mode, marks=marks, id=f"{operation.label}-{mode.value}")
            )
    return runs


@dataclass(frozen=True)
class FuzzTarget:
    app: FastAPI
    keys: StoreKeys
    order_ids: tuple[str, ...]

    def auth(self, operation: Operation) -> dict[str, str]:
        if operation.key == "checkout":
            return self.keys.checkout
        if operation.key == "merchant":
            return self.keys.merchant
        return {}


async def _seed(app_settings: Settings) -> tuple[StoreKeys, tuple[str, ...]]:
    """A store with keys and a few orders (one READY after processing), and a second store,
    written before the app starts."""
    container = build(app_settings)
    try:
        keys = await create_store_with_keys(container)
        await create_store_with_keys(container, "Other shop")
        rng = random.Random(7)
        order_ids = []
        for number in range(3):
            order = CheckoutOrder.model_validate(sample_order(rng))
            async with container.db.transaction() as session:
                outcome = await container.orders.receive(
                    session, keys.store_id, f"seed-{number}", order
                )
            order_ids.append(f"{keys.store_id}-{outcome.order.id}")
            if number == 0:
                await container.worker().run_until_idle()
        return keys, tuple(order_ids)
    finally:
        await container.close()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    directory = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        database_url=databases.migrated_sqlite(directory),
        data_dir=directory,
        worker_mode=WorkerMode.OFF,
        auth_cache_seconds=0,
    )
    keys, order_ids = asyncio.run(_seed(app_settings))
    yield FuzzTarget(create_app(build(app_settings)), keys, order_ids)
    # Ends the app's lifespan on schemathesis' event-loop thread, which closes the container.
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_target.app)


def _cases(
    api_schema: Any,
    target: FuzzTarget,
    operation: Operation,
    mode: GenerationMode,
    query: dict[str, str] | None,
) -> Any:
    """Cases for one operation, on the store's own paths, with generated order ids and with
    those of real orders."""
    api_operation = api_schema[operation.path][operation.method]
    fixed_paths: list[dict[str, str]] = [{}]
    if "{store_id}" in operation.path:
        fixed_paths = [{"store_id": target.keys.store_id}]
    if "{order_id}" in operation.path:
        fixed_paths += [
            {"store_id": target.keys.store_id, "order_id": order_id}
            for order_id in target.order_ids
        ]
    return st.one_of(
        [
            api_operation.as_strategy(
                mode, path_parameters=path, headers=target.auth(operation), query=query
            )
            for path in fixed_paths
        ]
    )


def _run(
    api_schema: Any,
    target: FuzzTarget,
    operation: Operation,
    mode: GenerationMode,
    checks: list[Any],
    query: dict[str, str] | None = None,
) -> None:
    @given(case=_cases(api_schema, target, operation, mode, query))
    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call()
        case.validate_response(response, checks=checks)
        if 400 <= response.status_code < 500:
            assert_problem_answer(response)

    run()


def assert_problem_answer(response: Any) -> None:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == PROBLEM_MEDIA_TYPE, (response.status_code, content_type)
    body = response.json()
    missing = [member for member in PROBLEM_MEMBERS if member not in body]
    assert not missing, f"problem without {missing}: {body}"
    assert body["status"] == response.status_code, body


ORDER_API_PREFIXES = ("/v2/checkout/", "/v2/events/", "/v2/orders/")


def test_fuzzing_covers_every_operation_of_the_order_api(api_schema: Any) -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, methods in api_schema.raw_schema["paths"].items()
        for method in methods
        if path.startswith(ORDER_API_PREFIXES)
    }
    fuzzed = {operation.label for operation in OPERATIONS}
    assert documented <= fuzzed, f"not fuzzed: {sorted(documented - fuzzed)}"


@pytest.mark.parametrize(
    "operation", [op for op in OPERATIONS if op.key is not None], ids=lambda op: op.label
)
def test_operation_documents_every_error_it_answers_as_a_problem(
    api_schema: Any, operation: Operation
) -> None:
    responses = api_schema.raw_schema["paths"][operation.path][operation.method.lower()][
        "responses"
    ]
    expected = {"401", "403", "404"} | ({"400"} if operation.negative else set())
    assert expected <= responses.keys(), sorted(expected - responses.keys())
    for status, response in responses.items():
        if not status.startswith("4"):
            continue
        content = response.get("content", {})
        assert set(content) == {PROBLEM_MEDIA_TYPE}, (status, sorted(content))
        schema = content[PROBLEM_MEDIA_TYPE].get("schema", {})
        assert schema.get("$ref", "").endswith("/Problem"), (status, schema)


@pytest.mark.parametrize(("operation", "mode"), _runs(known_bugs={}))
def test_generated_requests_never_get_a_server_error_and_errors_are_problems(
    api_schema: Any, fuzz_target: FuzzTarget, operation: Operation, mode: GenerationMode
) -> None:
    checks = [not_a_server_error, response_schema_conformance]
    _run(api_schema, fuzz_target, operation, mode, checks)


@pytest.mark.parametrize(("operation", "mode"), _runs(known_bugs=KNOWN_DOCUMENTATION_BUGS))
def test_generated_requests_get_documented_answers_and_invalid_ones_are_rejected(
    api_schema: Any, fuzz_target: FuzzTarget, operation: Operation, mode: GenerationMode
) -> None:
    checks = [status_code_conformance, content_type_conformance, negative_data_rejection]
    query = PINNED_FOR_CONFORMANCE.get(operation.label)
    _run(api_schema, fuzz_target, operation, mode, checks, query)
