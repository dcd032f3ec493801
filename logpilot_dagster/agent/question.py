"""One pass over a question: quoted phrases, the time range, catalog entities, and a masked form.

The masked form replaces every recognised span with a placeholder word (``svcname``, ``levelname``,
``timeexpr``, ``quotedphrase`` ...), so the intent classifier learns the shape of a question rather than the
names in it, and text inside quotes (possibly copied from a log line) never reaches the classifier.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from logpilot_dagster.agent.entities import Entities, Resolver, System
from logpilot_dagster.agent.grounding import template_phrases
from logpilot_dagster.agent.timeparse import TimeMatch, find_time

_PLACEHOLDERS = {
    "service": "svcname",
    "department": "deptname",
    "criticality": "critname",
    "owner": "owneremail",
    "level": "levelname",
}
QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|`([^`]+)`")


@dataclass(frozen=True)
class ParsedQuestion:
    text: str
    quoted: list[str]
    phrases: list[str]  # unquoted runs of words found verbatim in a log template
    time: TimeMatch | None
    entities: Entities
    masked: str
    residual: str  # lower-case text with quoted, time and entity spans blanked out


def parse_question(text: str, resolver: Resolver, now: datetime, templates: list[str] = ()) -> ParsedQuestion:
    """Parse ``text`` relative to ``now`` against the catalog in ``resolver`` and the template texts."""
    kinds: dict[tuple[int, int], str | None] = {}
    quoted = []
    for match in QUOTED.finditer(text):
        quoted.append(next(g for g in match.groups() if g))
        kinds[match.span()] = "quotedphrase"
    blank = QUOTED.sub(lambda m: " " * len(m.group(0)), text)
    time = find_time(blank, now)
    for span in time.spans if time else ():
        kinds[span] = "timeexpr"
    grounded = template_phrases(blank, list(templates), blocked=list(kinds))
    entities = resolver.resolve(blank, taken=list(kinds) + [span for span, _ in grounded])
    for span, kind in entities.spans.items():
        kinds[span] = _PLACEHOLDERS[kind]
    for span, _ in grounded:
        kinds[span] = None  # kept verbatim for the classifier, blanked in the residual
    masked, residual, cursor = [], [], 0
    for start, end in sorted(kinds):
        masked.append(text[cursor:start])
        residual.append(text[cursor:start])
        masked.append(f" {kinds[(start, end)] or text[start:end]} ")
        residual.append(" " * (end - start))
        cursor = end
    masked.append(text[cursor:])
    residual.append(text[cursor:])
    masked_text = re.sub(r"\b\d+\b", " num ", "".join(masked))
    return ParsedQuestion(
        text=text,
        quoted=quoted,
        phrases=[phrase for _, phrase in grounded],
        time=time,
        entities=entities,
        masked=re.sub(r"\s+", " ", masked_text).strip().lower(),
        residual="".join(residual).lower(),
    )


def load_catalog_csv(path: Path) -> list[System]:
    """Systems from a ``system_catalog.csv`` (system_name, department, owner_email, criticality)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            System(row["system_name"], row["department"], row["owner_email"], row["criticality"])
            for row in csv.DictReader(handle)
        ]
