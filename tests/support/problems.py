"""Assertions for error answers (contract §7) and for "the request wrote nothing".

A rejected request must answer ``application/problem+json`` with the RFC 9457 members plus
our stable ``code``, and must leave every table exactly as it found it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from orderbridge.bootstrap import Container
from orderbridge.db.models import Base

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_MEMBERS = ("type", "title", "status", "detail", "code")


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is a problem of ``status`` (and ``code``, when given); returns its body."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    assert response.headers.get("content-type") == PROBLEM_MEDIA_TYPE, response.headers
    body: dict[str, Any] = response.json()
    missing = [member for member in PROBLEM_MEMBERS if member not in body]
    assert not missing, f"problem without {missing}: {body}"
    assert body["status"] == status, body
    if code is not None:
        assert body["code"] == code, body
    return body


def error_fields(problem: dict[str, Any]) -> set[str]:
    """The field paths a validation problem names."""
    errors = problem.get("errors")
    assert isinstance(errors, list) and errors, f"a validation problem lists its errors: {problem}"
    for error in errors:
        assert {"field", "message", "code"} <= error.keys(), error
    return {error["field"] for error in errors}


async def row_counts(container: Container) -> dict[str, int]:
    """Rows per table, for every table of the schema."""
    counts = {}
    async with container.db.reader() as session:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = await session.scalar(select(func.count()).select_from(table))
    return counts
