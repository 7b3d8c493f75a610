"""The service under test: ``orderbridge serve`` in a subprocess on a free loopback port,
with its embedded worker, so that orders submitted over HTTP move through processing the
way they do for a merchant."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 60.0


@dataclass(frozen=True)
class RunningService:
    base_url: str
    data_dir: Path
    secret_keys: str
    log_path: Path

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]


def executable() -> str:
    found = shutil.which("orderbridge", path=str(Path(sys.executable).parent))
    found = found or shutil.which("orderbridge")
    if found is None:
        raise RuntimeError("the orderbridge command is not installed next to this Python")
    return found


def environment(data_dir: Path, secret_keys: str) -> dict[str, str]:
    # Only our settings reach the service, whatever the developer's shell exports.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBRIDGE_")}
    env.update(
        ORDERBRIDGE_DATA_DIR=str(data_dir),
        ORDERBRIDGE_DATABASE_URL="",  # the embedded default: SQLite in the data directory
        ORDERBRIDGE_HOST="127.0.0.1",
        ORDERBRIDGE_WORKER_MODE="embedded",
        ORDERBRIDGE_WORKER_POLL_INTERVAL="0.1",
        ORDERBRIDGE_SECRET_KEYS=secret_keys,
        ORDERBRIDGE_AUTH_CACHE_SECONDS="0",
        # Webhook endpoints added in the tests point at loopback receivers.
        ORDERBRIDGE_OUTBOUND_ALLOW_PRIVATE="true",
    )
    return env


def new_secret_keys() -> str:
    return secrets.token_urlsafe(32)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _became_healthy(process: subprocess.Popen[bytes], base_url: str) -> bool:
    """True once /healthz answers; False if the process exited (e.g. the port was taken)."""
    deadline = time.monotonic() + START_SECONDS
    while process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base_url} did not become healthy")
        time.sleep(0.1)
    return False


@contextmanager
def running(data_dir: Path, secret_keys: str, *options: str) -> Iterator[RunningService]:
    """``orderbridge serve`` with ``options`` on a free port, until the block ends."""
    log_path = data_dir.parent / "server.log"
    env = environment(data_dir, secret_keys)
    # Another process may take the free port before the server binds it: try a few.
    for _ in range(3):
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [executable(), "serve", "--port", str(port), *options],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if _became_healthy(process, base_url):
                yield RunningService(base_url, data_dir, secret_keys, log_path)
                return
        finally:
            _stop(process)
    raise RuntimeError(f"the server did not start:\n{log_path.read_text(errors='replace')}")
