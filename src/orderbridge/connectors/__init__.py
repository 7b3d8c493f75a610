"""Plug & play: pushing READY orders into the merchant's e-commerce platform.

``port`` is the contract every platform connector keeps; one module per platform
implements it; ``mapping`` turns an order into the platform-neutral ``PushOrder``; the push
job, the connections and the failure policies live beside them."""
