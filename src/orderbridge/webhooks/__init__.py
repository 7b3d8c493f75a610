"""Signed webhooks with durable delivery. Every event that matches an enabled endpoint of
its store becomes a delivery row in the event's own transaction; the dispatcher sends
deliveries at least once with Standard Webhooks signatures, retries on a schedule, disables
endpoints that are gone or failing for days, and logs every attempt."""
