"""Structured samples: JSON lines or logfmt, with the key mapping (which key holds the time, level, message and
component) and the time layout of the time key, inferred from the values."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.discovery.timestamps import full_match_layout
from logpilot_dagster.ingest.formats import LEVELS

MIN_SHARE = 0.99
LOGFMT_LINE = r'^\s*(?:[\w.@/-]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)\s*)+$'
_PAIR = re.compile(r'([\w.@/-]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
#: Key names that usually hold a role, most telling first (a name only breaks ties between fitting keys).
ROLE_NAMES = {
    "ts": ("timestamp", "@timestamp", "time", "ts", "t", "@t", "datetime", "date", "eventtime", "logged_at"),
    "level": ("level", "severity", "lvl", "loglevel", "log.level", "levelname", "@l", "priority"),
    "message": ("message", "msg", "@m", "@mt", "text", "body", "log", "event", "description"),
    "component": ("logger", "logger_name", "component", "module", "name", "service", "source", "caller", "app",
                  "category", "class"),
}


@dataclass
class KeyMapping:
    kind: str  # jsonl | logfmt
    keys: dict[str, str]
    ts_layout: str
    notes: list[str]


def _logfmt_pairs(line: str) -> dict[str, str]:
    out = {}
    for key, value in _PAIR.findall(line):
        out[key] = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
    return out


def _json_objects(lines: list[str]) -> list[dict] | None:
    objects = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects if len(objects) >= MIN_SHARE * len(lines) else None


def _rank(role: str, key: str) -> int:
    names = ROLE_NAMES[role]
    return names.index(key.lower()) if key.lower() in names else len(names)


def _string_values(records: list[dict], key: str) -> list[str]:
    return [str(r[key]) for r in records if key in r and r[key] is not None and not isinstance(r[key], (dict, list))]


def map_keys(records: list[dict], kind: str) -> KeyMapping | None:
    """Which key holds what; None when no key parses as a timestamp or none could be the message."""
    counts = Counter(k for r in records for k in r)
    common = [k for k, n in counts.items() if n >= MIN_SHARE * len(records)]
    notes: list[str] = []
    ts_key, ts_layout = None, None
    for key in sorted(common, key=lambda k: _rank("ts", k)):
        layout = full_match_layout(_string_values(records, key), MIN_SHARE)
        if layout:
            ts_key, ts_layout = key, layout.layout
            notes.append(f"time key {key!r}: {layout.name} ({layout.layout})")
            break
    if ts_key is None:
        return None
    keys = {"ts": ts_key}
    level = [k for k in common if k != ts_key and all(v.upper() in LEVELS for v in _string_values(records, k))]
    if level:
        keys["level"] = min(level, key=lambda k: _rank("level", k))
    taken = set(keys.values())
    texts = [k for k in common if k not in taken and all(isinstance(r.get(k), str) for r in records if k in r)]
    if not texts:
        return None

    def text_score(key: str) -> tuple:
        values = _string_values(records, key)
        return (_rank("message", key), -len(set(values)), -sum(map(len, values)))

    keys["message"] = min(texts, key=text_score)
    components = [k for k in texts if k != keys["message"] and _rank("component", k) < len(ROLE_NAMES["component"])]
    if components:
        keys["component"] = min(components, key=lambda k: _rank("component", k))
    notes.append("keys: " + ", ".join(f"{role}={key}" for role, key in keys.items()))
    return KeyMapping(kind, keys, ts_layout, notes)


def propose_structured(lines: list[str]) -> KeyMapping | None:
    """A JSON-lines or logfmt decoder with its key mapping, when (almost) every line is one of those."""
    objects = _json_objects(lines)
    if objects is not None:
        return map_keys(objects, "jsonl")
    is_logfmt = pc.match_substring_regex(pa.array(lines, pa.string()), LOGFMT_LINE)
    if lines and pc.sum(is_logfmt).as_py() >= MIN_SHARE * len(lines):
        return map_keys([_logfmt_pairs(line) for line in lines], "logfmt")
    return None
