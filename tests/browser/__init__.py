"""Browser tests of the Merchant Account: Debian's Chromium (``scripts/install-browser``)
driven by Playwright against the real service (``orderbridge serve`` with its embedded
worker, SQLite in a temporary directory). One server and one browser for the package; each test
gets a fresh browser context (own cookies). Screenshots of the main pages go to
``artifacts/screenshots/`` at a desktop and a phone size."""
