"""Order processing: the steps that turn a RECEIVED order into READY (payment confirmed,
prohibited goods and fraud screened, payment captured) or CANCELLED with a reason. Which
steps run is a pure function of the store's configuration, the payment method, the cart and
the route; each step's outcome lands on the order's timeline with its evidence."""
