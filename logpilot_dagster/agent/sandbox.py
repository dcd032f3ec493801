"""Run a function in a separate process under a deadline; the process is killed when it overruns.

Some DuckDB work does not stop when interrupted (one ``repeat('x', 1e9)`` call, turning a huge value into
Python objects), so guarded queries run in one long-lived child interpreter, started on first use with the
function's module already imported. A call that gets no answer within its deadline kills the child, and
the next call starts a new one. Calls are serialised. The child is a plain ``python -c`` process talking
over two pipes (not ``multiprocessing``, which would re-run the caller's ``__main__``), and it exits when
its parent goes away.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

START_TIMEOUT_S = 120.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _settings() -> dict[str, str]:
    """The ``LOGPILOT_*`` environment a child was started with (a new storage profile needs a new child)."""
    return {k: v for k, v in os.environ.items() if k.startswith("LOGPILOT_")}


class Killed(RuntimeError):
    """The call overran its deadline (or the process died), and the process was stopped."""


def serve(read_fd: int, write_fd: int, module: str) -> None:
    """The child's loop: answer ``(fn, args)`` requests until the parent closes its end."""
    requests, replies = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    importlib.import_module(module)
    replies.send("ready")
    while True:
        try:
            fn, args = requests.recv()
        except EOFError:
            return
        try:
            outcome = ("ok", fn(*args))
        except Exception as exc:  # handed to the caller, which raises it
            outcome = ("error", exc)
        try:
            replies.send(outcome)
        except Exception as exc:  # an unpicklable value or exception
            replies.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._module: str | None = None
        self._settings: dict[str, str] = {}
        self._ready = False

    def _spawn(self, module: str) -> None:
        """Start a child (it gets ready while the caller goes on)."""
        self._module, self._settings = module, _settings()
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        code = f"from logpilot_dagster.agent.sandbox import serve; serve({to_child}, {from_child}, {module!r})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_child, from_child), env=env,
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        finally:
            os.close(to_child)
            os.close(from_child)
        self._requests = Connection(from_parent, readable=False)
        self._replies = Connection(to_parent, writable=False)
        self._ready = False

    def _ensure_ready(self, module: str) -> None:
        """A running child that imported ``module``; the wait for its start does not count against a call."""
        if (self._process is None or self._process.poll() is not None or self._module != module
                or self._settings != _settings()):
            self._stop()
            self._spawn(module)
        if not self._ready:
            try:
                self._ready = self._replies.poll(START_TIMEOUT_S) and self._replies.recv() == "ready"
            except (EOFError, OSError):
                pass
            if not self._ready:
                self._stop()
                raise Killed(f"the sandbox process did not start within {START_TIMEOUT_S:g} s")

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._requests.close()
            self._replies.close()
        self._process = self._requests = self._replies = None
        self._ready = False

    def _replace(self) -> None:
        """Kill the child and start its successor at once."""
        module = self._module
        self._stop()
        self._spawn(module)

    def call(self, fn: Callable, args: tuple, timeout_s: float) -> Any:
        with self._lock:
            self._ensure_ready(fn.__module__)
            try:
                self._requests.send((fn, args))
                answered = self._replies.poll(timeout_s)
                status, value = self._replies.recv() if answered else (None, None)
            except (EOFError, OSError):
                self._replace()
                raise Killed("the sandbox process died") from None
            if not answered:
                self._replace()
                raise Killed(f"no answer within {timeout_s:g} s")
        if status == "error":
            raise value
        return value


_worker = _Worker()


def call(fn: Callable, args: tuple, timeout_s: float) -> Any:
    """``fn(*args)`` in the sandbox process (``fn`` a module-level function); :class:`Killed` when it gives
    no answer within ``timeout_s``. Exceptions raised by ``fn`` are raised here."""
    return _worker.call(fn, args, timeout_s)
