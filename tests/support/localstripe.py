"""Run localstripe (a third-party Stripe emulator, on PyPI) on a free loopback port.

Not through its ``localstripe --port N`` command, for two reasons found in its source:
it listens on ``::`` (every interface, not loopback only), and it pickles its whole store to
``/tmp/localstripe.pickle`` after every write, a path shared by every instance on the
machine (other test runs, other developers). The few lines below start the same aiohttp
application on 127.0.0.1 with the store kept in memory only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_BOOT = """
import sys
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""

API_KEY = "sk_test_orderbridge"  # localstripe accepts any key that starts with sk_


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.unlink(missing_ok=True)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_localstripe(*, timeout: float = 20.0, attempts: int = 3) -> LocalStripe:
    """Start it and wait until it answers; a port taken between our probe and its bind is
    retried on another port."""
    failure = ""
    for _ in range(attempts):
        server = _spawn(free_loopback_port())
        try:
            _wait_until_answering(server, timeout)
        except _ExitedEarly as exited:
            server.stop()
            failure = str(exited)
            continue
        except BaseException:
            server.stop()
            raise
        return server
    raise RuntimeError(f"localstripe did not start: {failure}")


class _ExitedEarly(RuntimeError):
    pass


def _spawn(port: int) -> LocalStripe:
    log = Path(tempfile.mkstemp(prefix="localstripe-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return LocalStripe(f"http://127.0.0.1:{port}", process, log)


def _wait_until_answering(server: LocalStripe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise _ExitedEarly(server.log.read_text(errors="replace")[-2000:])
            try:
                answer = client.get(
                    f"{server.url}/v1/balance", headers={"Authorization": f"Bearer {API_KEY}"}
                )
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if answer.status_code == 200:
                return
            raise RuntimeError(f"localstripe answered {answer.status_code}: {answer.text[:200]}")
    raise TimeoutError(f"localstripe did not answer on {server.url} within {timeout} s")
