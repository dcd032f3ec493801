"""One pass over a question: quoted phrases, the time range, catalog entities, and a masked form.

The masked form replaces every recognised span with a placeholder word (``svcname``, ``levelname``,
``timeexpr``, ``quotedphrase`` ...), so the intent classifier learns the shape of a question rather than the
names in it, and text inside quotes (possibly copied from a log line) never reaches the classifier.

Before that, misspelled words outside quotes are corrected (``rapidfuzz``): a word that is not known (from
the questions the classifier was trained on, the log templates or the catalog) becomes the closest service
name, level or question word when it is close enough ("erors" -> "errors", "ledger-cor" -> "ledger-core").
What still looks like a service name but is not in the catalog ("billing-api") is kept in ``unknown``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from logpilot_dagster.agent.entities import LEVEL_WORDS, Entities, Resolver, System
from logpilot_dagster.agent.grounding import SHAPE_WORDS, template_phrases
from logpilot_dagster.agent.timeparse import MONTHS, TimeMatch, find_time
from logpilot_dagster.settings import SHIPPED_DATA

#: Least ``fuzz.ratio`` (0-100) for a misspelled word to be read as a known one.
SPELLING_CUTOFF = 85
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_NAME_LIKE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")
#: Hyphenated English that is not a service name.
_SERVICE_NOUNS = {"service", "system", "app", "application"}
_COMPOUNDS = {"read-only", "e-mail", "built-in", "follow-up", "time-out", "real-time", "on-call", "log-in",
              "sign-in", "opt-out", "non-zero", "up-to-date", "well-known", "out-of-scope", "x-ray"}

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
    unknown: list[str] = field(default_factory=list)  # service-like names that are not in the catalog
    corrected: dict[str, str] = field(default_factory=dict)  # misspelled word -> the word it was read as
    now: datetime | None = None  # the reference time relative expressions were read against


@lru_cache(maxsize=1)
def _question_words() -> frozenset[str]:
    """Words of the shipped training questions: ordinary English the corrector must leave alone."""
    path = SHIPPED_DATA / "agent" / "intent_training.jsonl"
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.update(w.lower() for w in _TOKEN.findall(json.loads(line)["question"]))
    return frozenset(words)


@lru_cache(maxsize=8)
def _lexicon(names: tuple[str, ...], templates: tuple[str, ...]) -> tuple[frozenset[str], dict[str, str]]:
    """(known words, correction targets): targets are service names (also without hyphens), levels, shape words."""
    targets = {w: w for w in SHAPE_WORDS | {"errors", "error", "warnings", "warning", "fatal", "debug", "info"}}
    for name in names:
        targets[name] = name
        targets[name.replace("-", "")] = name
    known = _question_words() | _names_and_template_words(names, templates) | ENGLISH_STOP_WORDS | set(targets)
    known |= set(MONTHS)
    return frozenset(known), targets


@lru_cache(maxsize=8)
def _names_and_template_words(names: tuple[str, ...], templates: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names) | {w.lower() for t in templates for w in _TOKEN.findall(t)}


def correct_spelling(text: str, names: list[str], templates: list[str] = ()) -> tuple[str, dict[str, str]]:
    """``text`` with unknown words outside quotes replaced by the closest target; and what was replaced."""
    known, targets = _lexicon(tuple(sorted(names)), tuple(templates))
    quoted = [m.span() for m in QUOTED.finditer(text)]
    out, cursor, fixed = [], 0, {}
    for match in _TOKEN.finditer(text):
        word = match.group(0).lower()
        if len(word) < 4 or any(s <= match.start() < e for s, e in quoted):
            continue
        if word in targets:
            target = targets[word]  # a service name written without its hyphens
        elif word in known:
            continue
        else:
            best = process.extractOne(word, list(targets), scorer=fuzz.ratio, score_cutoff=SPELLING_CUTOFF)
            target = targets[best[0]] if best else word
        if target == word or (target not in names and word.startswith(target)):  # or an inflection ("quarterly")
            continue
        fixed[match.group(0)] = target
        out += [text[cursor : match.start()], target]
        cursor = match.end()
    return "".join(out) + text[cursor:], fixed


def _unknown_names(
    text: str, taken: list[tuple[int, int]], names: frozenset[str], lexicon: frozenset[str]
) -> list[str]:
    """Names of services that are not in the catalog ("billing-api", "errors from kafka").

    A hyphenated name counts unless it is a catalog name, a template word or plain English ("error-prone",
    "month-by-month"); a single word only in a service's place ("from X", "did X log", "the X service") and
    when no question, template or catalog uses it.
    """
    levels = {w.lower() for w in LEVEL_WORDS} | {"errors", "warnings", "warning"}
    generic = SHAPE_WORDS | ENGLISH_STOP_WORDS | levels | {"level"}
    lowered, found = text.lower(), []
    for match in re.finditer(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*", lowered):
        name, (start, end) = match.group(0), match.span()
        if any(s < end and start < e for s, e in taken) or name in names or name in _COMPOUNDS:
            continue
        before = lowered[:start].split()[-1:] or [""]
        after = [w.strip("?.,!;:") for w in lowered[end:].split()[:1]] or [""]
        if "-" in name:
            parts = name.split("-")
            if not any(p in levels for p in parts) and not all(p in generic or p.isdigit() for p in parts):
                found.append(name)
        elif (before[0] in ("from", "did", "does") or (before[0] == "the" and after[0] in _SERVICE_NOUNS)) and (
            name not in lexicon and name not in generic and len(name) > 2
        ):
            found.append(name)
    return found


def parse_question(text: str, resolver: Resolver, now: datetime, templates: list[str] = ()) -> ParsedQuestion:
    """Parse ``text`` relative to ``now`` against the catalog in ``resolver`` and the template texts."""
    original = text
    names = [system.name for system in resolver.systems]
    text, corrected = correct_spelling(text, names, templates)
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
    known = _names_and_template_words(tuple(sorted(names)), tuple(templates))
    return ParsedQuestion(
        text=original,
        quoted=quoted,
        phrases=[phrase for _, phrase in grounded],
        time=time,
        entities=entities,
        masked=re.sub(r"\s+", " ", masked_text).strip().lower(),
        residual="".join(residual).lower(),
        unknown=_unknown_names(blank, list(kinds), known, _lexicon(tuple(sorted(names)), tuple(templates))[0]),
        corrected=corrected,
        now=now,
    )


def load_catalog_csv(path: Path) -> list[System]:
    """Systems from a ``system_catalog.csv`` (system_name, department, owner_email, criticality)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            System(row["system_name"], row["department"], row["owner_email"], row["criticality"])
            for row in csv.DictReader(handle)
        ]
