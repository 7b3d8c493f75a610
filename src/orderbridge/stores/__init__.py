"""Stores and their API keys: merchant keys (``GL.``) read and act on the store's orders,
checkout keys (``ck_``) only submit orders. Keys are stored as SHA-256 hashes and shown once."""
