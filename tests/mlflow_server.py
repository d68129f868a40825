"""A real `mlflow server` on 127.0.0.1 for the tests that need one: start on a (free) port, wait
until /health answers, stop (SIGTERM, then SIGKILL if uvicorn does not wind down)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(store_uri: str, log_path, port: int, artifacts=None, workers: int = 1,
                 timeout_s: float = 300) -> subprocess.Popen:
    """Start `mlflow server` over `store_uri` (its output appended to log_path); fail the test if it
    exits or does not answer /health within timeout_s (a fresh SQLite store migrates first: minutes
    on a loaded machine)."""
    command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--backend-store-uri", store_uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if artifacts is not None:
        command += ["--artifacts-destination", str(artifacts)]
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return process
        except OSError:
            if process.poll() is not None:
                with open(log_path) as log:
                    pytest.fail(f"mlflow server exited: {log.read()[-2000:]}")
            time.sleep(0.25)
    stop_server(process)
    pytest.fail(f"mlflow server did not answer /health within {timeout_s:.0f} s")


def stop_server(process: subprocess.Popen, timeout_s: float = 60) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:  # a loaded machine: uvicorn can take longer to wind down
        process.kill()
        process.wait(timeout=30)


@contextlib.contextmanager
def running_server(store_uri: str, log_path, artifacts=None, workers: int = 1):
    """Yields the URI of a server on a free port, stopped on exit."""
    port = free_port()
    process = start_server(store_uri, log_path, port, artifacts, workers)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
