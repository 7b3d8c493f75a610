"""The ``orderbridge`` command: serve, demo, worker, db, stores, keys, jobs."""
