"""Orders: the lifecycle (a pure transition table), the checkout intake schema and its
arithmetic checks, and the use cases that receive, accept, cancel, process and finalise an
order, each in one transaction."""
