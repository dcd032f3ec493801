"""Sensors the UI describes: the docstring becomes the description (RST ``x`` shown as Markdown `x`)."""

import inspect
from typing import Callable

import dagster as dg


def ui_text(doc: str | None) -> str | None:
    """A docstring as the UI's Markdown: dedented, RST double backticks as single ones."""
    return inspect.cleandoc(doc).replace("``", "`") if doc else None


def described_sensor(job_name: str, **kwargs) -> Callable[[Callable], dg.SensorDefinition]:
    """`dg.sensor` on a job named, not passed: Definitions then need not re-bind the sensor to the resourced job
    (that copy passes `owners` and prints a BetaWarning in every process that loads the code location)."""
    def decorate(fn: Callable) -> dg.SensorDefinition:
        return dg.sensor(job_name=job_name, name=fn.__name__, description=ui_text(fn.__doc__), **kwargs)(fn)
    return decorate
