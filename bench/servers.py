"""Starting and stopping the server processes of a run.

The harness binds the listening socket itself (127.0.0.1, a free port chosen by the kernel)
and hands it to the child, then waits for ``/healthz``. Every process started here is
registered and stopped by ``stop_all`` (SIGTERM, then SIGKILL after a grace period), which
the harness calls in a ``finally`` so that Ctrl-C or an error leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

READY_TIMEOUT = 60.0
STOP_GRACE = 20.0  # a profiler writes its report after SIGTERM
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # More processes serving the same listening socket (``start(processes=N)``): the kernel
    # hands each accepted connection to one of them, as with uvicorn's ``--workers``.
    siblings: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [self.process, *self.siblings]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


_RUNNING: list[Server] = []
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(server: Server) -> float | None:
    """User + system CPU the server's processes have used (Linux ``/proc``; None elsewhere).

    CPU per request is the figure least disturbed by other work on the machine: a busy
    neighbour stretches latencies and cuts throughput, but barely changes the CPU a
    request costs."""
    total = 0.0
    for process in server.processes:
        try:
            stat = Path(f"/proc/{process.pid}/stat").read_text()
        except OSError:
            return None
        # After the command name: state is field 3, utime and stime are fields 14 and 15.
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def start(
    name: str,
    arguments: list[str],
    log_dir: Path,
    module: str = "bench.serve",
    processes: int = 1,
) -> Server:
    """Start ``python -m MODULE ARGUMENTS --fd N`` (``processes`` of them, all accepting on
    the one socket) and wait until they answer ``/healthz``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    log = log_dir / f"{name}.log"
    command = [sys.executable, "-m", module, *arguments, "--fd", str(listener.fileno())]
    try:
        server = _launch(name, command, log, port, pass_fds=(listener.fileno(),))
        for _ in range(processes - 1):
            sibling = _launch(name, command, log, port, pass_fds=(listener.fileno(),))
            _RUNNING.remove(sibling)
            server.siblings.append(sibling.process)
    finally:
        listener.close()  # the children hold their own copies
    for process in server.processes:
        _wait_ready(replace(server, process=process, siblings=[]))
    return server


def spawn(name: str, module: str, arguments: list[str], log_dir: Path) -> Server:
    """Start ``python -m MODULE ARGUMENTS``, a process without a port (a worker), registered
    like the servers so that ``stop_all`` stops it too. Readiness is the caller's business."""
    command = [sys.executable, "-m", module, *arguments]
    return _launch(name, command, log_dir / f"{name}.log", 0, pass_fds=())


def _launch(
    name: str, command: list[str], log: Path, port: int, pass_fds: tuple[int, ...]
) -> Server:
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
    server = Server(name, process, port, log)
    _RUNNING.append(server)
    return server


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT:.0f} s:\n{server.log_tail()}")


def stop(server: Server) -> None:
    for process in server.processes:
        if process.poll() is None:
            process.terminate()
    for process in server.processes:
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if server in _RUNNING:
        _RUNNING.remove(server)


def stop_all() -> None:
    for server in list(_RUNNING):
        stop(server)
