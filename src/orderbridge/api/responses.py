"""JSON answers serialised once, with orjson. Routes still declare their ``response_model``
for the OpenAPI document; returning a ``Response`` spares validating and serialising the
same data a second time (tests check the answers against the documented schemas)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
