"""Money going back to the buyer: the release every cancellation makes (void what was only
authorised, refund what was captured) and the merchant's refunds of completed orders. Each
is a row written with the change that causes it and sent by a durable job, keyed so that it
can never happen twice."""
