"""Merchant users and their store memberships: the people who sign in to the Merchant
Account. Passwords are argon2 hashes (``passwords``); the use cases (``service``) run in the
caller's transaction like every other service; ``throttle`` slows down password guessing."""
