"""Benchmarks of the issue's performance targets: checkout intake and the event feed, on
SQLite and PostgreSQL, each printed beside a bare FastAPI endpoint measured in the same run.

Run ``python -m bench --help``. The service, the bare endpoint and the load generator each run
in their own process on loopback; nothing here is a timed unit test. See bench/README.md.
"""
