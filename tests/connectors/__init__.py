"""The connector contract suite: every plug & play connector against a local server that
speaks its platform's documented API (tests/connectors/platforms/), see fakes.py."""
