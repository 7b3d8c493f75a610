"""End-to-end tests: the real service in a subprocess, driven only through its CLI and its
HTTP API, the way an integration written from the external order contract would."""
