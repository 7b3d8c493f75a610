"""Events: every change of an order is recorded as an event row in the same transaction,
and read back through the gap-free feed ``GET /v2/events/{store_id}``."""
