"""The OpenAPI document as the API really answers: every error is problem+json with the
``Problem`` schema, every authenticated operation documents 400, 401, 403 and 404, and 422
only where there is a body to validate (query errors answer 400, see api.errors)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
DESCRIPTIONS = {
    "400": "Malformed request: bad JSON, query or path parameter",
    "401": "No key, or an unknown or revoked key",
    "403": "A key of the wrong kind (checkout vs merchant)",
    "404": "No such resource (or another store's)",
    "409": "Conflicts with the resource's state",
    "422": "The body is invalid: every field error is listed",
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _problems_everywhere(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problems_everywhere(schema: dict[str, Any]) -> None:
    for path, methods in schema.get("paths", {}).items():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/v2/"):
                for status in ("400", "401", "403", "404"):
                    responses.setdefault(status, {})
            if "requestBody" in operation:
                responses.setdefault("422", {})
            else:
                responses.pop("422", None)
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = PROBLEM_CONTENT
                    response["description"] = DESCRIPTIONS.get(
                        status, response.get("description", "Error")
                    )
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
