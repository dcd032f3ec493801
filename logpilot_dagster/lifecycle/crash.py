"""Fault injection for the crash tests: ``LOGPILOT_CRASH_AT=<point>`` kills this process with SIGKILL there."""

import os
import signal

CRASH_ENV = "LOGPILOT_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
