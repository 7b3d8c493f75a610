"""orderbridge: order processing for cross-border checkouts.

A checkout hands an order over; orderbridge stores it as RECEIVED at once, processes it in
the background until it is READY (or CANCELLED with the money returned), and lets the
merchant take it through a gap-free event feed and the Order API v2. See ARCHITECTURE.md.
"""

__version__ = "0.1.0"
