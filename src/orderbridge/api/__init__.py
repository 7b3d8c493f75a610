"""The HTTP API: the merchant Order API v2, the checkout intake, the event feed. Routers
parse input, call a use case in a transaction and render the result; errors become
problem+json in ``errors`` only."""
