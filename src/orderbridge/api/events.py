"""The event feed ``GET /v2/events/{store_id}`` (contract §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from orderbridge.api.auth import ContainerDep, MerchantKey
from orderbridge.api.links import page_link
from orderbridge.api.responses import json_response
from orderbridge.errors import BadRequest
from orderbridge.events.feed import FeedQuery, cursor_exists, parse_cursor, read_page
from orderbridge.events.render import EVENT_NAMES, render_event
from orderbridge.orders.schemas import External, Links
from orderbridge.schemas_common import problem_responses

router = APIRouter(tags=["events"])


class EventOut(BaseModel):
    event_id: str
    event_name: str
    event_at: str
    order_id: str | None
    external: External
    entity_id: str | None


class EventPage(BaseModel):
    links: Links
    events: list[EventOut]


@router.get(
    "/v2/events/{store_id}",
    response_model=EventPage,
    responses=problem_responses(400, 401, 404),
    summary="List events, oldest first",
)
async def list_events(
    store_id: str,
    request: Request,
    principal: MerchantKey,
    container: ContainerDep,
    event: Annotated[list[str], Query(description="filter by event name; repeatable")] = [],  # noqa: B006
    after_event_id: Annotated[str | None, Query(max_length=32)] = None,
    before_event_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    """A consumer that always follows `links.next` receives every event exactly once, in a
    stable order, however transactions commit. An empty `after_event_id` starts from the
    beginning; on an empty page `next` stays on the same cursor."""
    unknown = sorted(set(event) - EVENT_NAMES)
    if unknown:
        raise BadRequest(f"unknown event name(s): {', '.join(unknown)}", code="invalid_parameter")
    after = parse_cursor(after_event_id, "after_event_id")
    before = parse_cursor(before_event_id, "before_event_id")
    if after is not None and before is not None:
        raise BadRequest(
            "give after_event_id or before_event_id, not both", code="invalid_parameter"
        )
    query = FeedQuery(principal.store_id, tuple(event), after, before, limit)
    async with container.db.reader() as session:
        for position, name in ((after, "after_event_id"), (before, "before_event_id")):
            if position is not None and not await cursor_exists(session, store_id, position):
                raise BadRequest(f"{name} is not an event of this store", code="invalid_cursor")
        rows = await read_page(session, query)
    events = [render_event(row) for row in rows]

    filters = [("event", name) for name in event] + [("limit", str(limit))]
    if events:
        next_cursor = events[-1]["event_id"]
        previous_params = [("before_event_id", events[0]["event_id"])]
    else:
        next_cursor = after_event_id or ""
        if before is not None:
            next_cursor = ""
        previous_params = (
            [("before_event_id", after_event_id)]
            if after_event_id
            else [("before_event_id", before_event_id or "")]
        )
    current = (
        [("after_event_id", after_event_id or "")]
        if before is None
        else [("before_event_id", before_event_id or "")]
    )
    links = {
        "next": page_link(request, [*filters, ("after_event_id", next_cursor)]),
        "current": page_link(request, filters + current),
        "previous": page_link(request, filters + previous_params),
    }
    return json_response({"links": links, "events": events})
