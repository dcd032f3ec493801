"""Propose a header regex from sample lines, offline: walk all samples left to right, one header field at a time.

At each step the first rule that fits (almost) every sample wins: a timestamp from the layout library, a
``[bracketed]`` field, a level word, a constant token, ``component[pid]:`` or ``component -`` (both end the
header), or a token of one consistent class (numbers, dotted/dashed identifiers) or one that sits before a
timestamp or level. Whatever is left is the content. Every piece is RE2 syntax without nested quantifiers, so the
assembled regex cannot backtrack; the validator checks the result on held-out lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from logpilot_dagster.discovery.timestamps import LAYOUTS, TimeLayout, parse_rate
from logpilot_dagster.ingest.formats import LEVELS

#: Share of the samples a rule must fit at each step.
STEP_RATE = 0.995
#: Header fields are looked for in the first characters only (keeps the proposer fast on huge lines).
HEAD_CHARS = 1024
MAX_FIELDS = 14
CONTENT = r"(?P<Content>.*?)\s*$"

_TOKEN = re.compile(r"[^\s|]+")
_LEVEL = re.compile("(?i:" + "|".join(sorted(LEVELS, key=len, reverse=True)) + r")(?:[^\w]|$)")
_CLASSES = (
    ("int", re.compile(r"[+-]?\d+")),
    ("ip", re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?")),
    ("number", re.compile(r"[+-]?\d+(?:[.,:]\d+)*")),
    ("hex", re.compile(r"(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*")),
    ("compound", re.compile(r"[\w$#]+(?:[-./:@$#*][\w$#]+)+[*:]?|[\w$]*_[\w$]*")),
    ("word", re.compile(r"[A-Za-z]+")),
    ("alnum", re.compile(r"[A-Za-z0-9]+")),
    ("punct", re.compile(r"[^\w\s]+")),
)
_HEADER_CLASSES = {"int", "ip", "number", "hex", "compound", "punct"}
_COMPONENT_COLON = r"(?P<Component>[^\s:\[][^:\[]*?)(?:\[(?P<Pid>[^\]\s]*)\])?(?: \((?P<Context>[^)]*)\))?"
_COLON_SEP = r":(?:\s+|$)"
_COMPONENT_DASH = r"(?P<Component>[^\s\[](?:[^\[]*?[^\s\[])?)"
_DASH_SEP = r"\s+-(?:\s+|$)"


def _plain(regex: str) -> str:
    """``regex`` with its named groups made non-capturing (for probing)."""
    return re.sub(r"\(\?P<\w+>", "(?:", regex)


def token_class(token: str) -> str:
    return next((name for name, rx in _CLASSES if rx.fullmatch(token)), "other")


@dataclass
class Field:
    name: str | None  # None: a literal
    pattern: str  # the whole piece, named groups included, separator excluded
    sep: str = ""


@dataclass
class HeaderProposal:
    fields: list[Field] = field(default_factory=list)
    ts_layout: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def regex(self) -> str:
        return "^" + "".join(f.pattern + f.sep for f in self.fields) + CONTENT


class _Walk:
    """The samples' unconsumed rests (None once a sample failed a step) and the fields chosen so far."""

    def __init__(self, lines: list[str]) -> None:
        self.rests: list[str | None] = [line[:HEAD_CHARS] for line in lines]
        self.proposal = HeaderProposal()
        self.names: set[str] = set()

    @property
    def alive(self) -> list[str]:
        return [r for r in self.rests if r is not None]

    def probe(self, piece: str) -> list[re.Match | None]:
        rx = re.compile(_plain(piece))
        return [rx.match(r) if r is not None else None for r in self.rests]

    def fits(self, matches: list[re.Match | None]) -> bool:
        alive = sum(r is not None for r in self.rests)
        return alive > 0 and sum(m is not None for m in matches) >= STEP_RATE * alive

    def take(self, name: str | None, piece: str, matches: list[re.Match | None], sep: str | None = None) -> None:
        """Add a field; ``matches`` (of the piece, or of piece + ``sep`` when given) advance the samples."""
        self.rests = [r[m.end():] if m is not None and r is not None else None for r, m in zip(self.rests, matches)]
        self.proposal.fields.append(Field(name, piece, self._separator() if sep is None else sep))
        if name:
            self.names.add(name)

    def name(self, preferred: str) -> str:
        if preferred not in self.names:
            return preferred
        return next(f"{preferred}{i}" for i in range(2, 99) if f"{preferred}{i}" not in self.names)

    def _separator(self) -> str:
        """What follows the field: whitespace, or one punctuation character (with or without whitespace)."""
        alive = self.alive
        if not alive:
            return ""
        if sum(bool(r) and r[0].isspace() for r in alive) >= STEP_RATE * len(alive):
            sep = r"\s+"
        else:
            first = {r[:1] for r in alive if r}
            char = next(iter(first)) if len(first) == 1 else ""
            if char not in ",|;" or sum(r.startswith(char) for r in alive) < STEP_RATE * len(alive):
                return ""
            spaced = sum(r[1:2].isspace() for r in alive)
            sep = re.escape(char) + (r"\s+" if spaced >= STEP_RATE * len(alive) else "")
        matches = self.probe(sep)
        self.rests = [r[m.end():] if m is not None and r is not None else None for r, m in zip(self.rests, matches)]
        return sep

    def tokens(self) -> list[str | None]:
        out: list[str | None] = []
        for r in self.rests:
            m = _TOKEN.match(r) if r is not None else None
            out.append(m.group(0) if m else None)
        return out


def _ts_match(walk: _Walk, bracketed: bool) -> tuple[TimeLayout, str, list] | None:
    """The first library layout found at the samples' current position (checked by parsing)."""
    for layout in LAYOUTS:
        piece = rf"\[(?P<Timestamp>{layout.regex})\]" if bracketed else f"(?P<Timestamp>{layout.regex})"
        matches = walk.probe(piece)
        if not walk.fits(matches):
            continue
        ends = [r[m.end():m.end() + 1] for r, m in zip(walk.rests, matches) if m is not None and r is not None]
        if any(e.isalnum() for e in ends):
            continue
        stamps = [m.group(0).strip("[]") for m in matches if m is not None]
        if parse_rate(stamps, layout.layout) >= STEP_RATE:
            return layout, piece, matches
    return None


def _anchor_ahead(walk: _Walk, max_tokens: int = 4) -> bool:
    """Whether a timestamp or a level column starts 1..max_tokens whitespace tokens further on."""
    saved = walk.rests
    try:
        for k in range(1, max_tokens + 1):
            walk.rests = [re.sub(rf"^(?:\S+\s+){{{k}}}", "", r, count=1) if r is not None
                          and re.match(rf"^(?:\S+\s+){{{k}}}", r) else None for r in saved]
            if _ts_match(walk, False) or _ts_match(walk, True) or _level_matches(walk):
                return True
        return False
    finally:
        walk.rests = saved


def _level_matches(walk: _Walk) -> list | None:
    matches = [(_LEVEL.match(r) if r is not None else None) for r in walk.rests]
    if not walk.fits(matches):
        return None
    words = {m.group(0).rstrip(" ]:,").upper() for m in matches if m is not None}
    if all(len(w) == 1 for w in words) and len(words) < 2:
        return None  # one single letter is no evidence of a level column
    return matches


def _step(walk: _Walk) -> bool:
    """Choose the next header field; False when the content starts here."""
    alive = walk.alive
    if not alive or sum(bool(r) for r in alive) < STEP_RATE * len(alive):
        return False
    for bracketed in (False, True):
        found = _ts_match(walk, bracketed)
        if found:
            layout, piece, matches = found
            if walk.proposal.ts_layout is None:
                walk.proposal.ts_layout = layout.layout
                walk.proposal.notes.append(f"timestamp: {layout.name} ({layout.layout})")
                walk.take("Timestamp", piece, matches)
            else:
                walk.take(None, _plain(piece), matches)
            return True
    if sum(r.startswith("[") for r in alive) >= STEP_RATE * len(alive):
        matches = walk.probe(r"\[.*?\](?=\s|$)")  # Python-only lookahead while probing; RE2 gets the separator
        if walk.fits(matches):
            inner = [m.group(0)[1:-1] for m in matches if m is not None]
            kind = ("Level" if all(v.upper() in LEVELS for v in inner) else
                    "Pid" if all(v.isdigit() for v in inner) else "Thread")
            name = walk.name(kind)
            walk.take(name, rf"\[(?P<{name}>.*?)\]", matches)
            return True
    level = _level_matches(walk)
    if level is not None and "Level" not in walk.names:
        walk.take("Level", r"(?P<Level>[A-Za-z]+)", walk.probe(r"[A-Za-z]+"))
        return True
    tokens = walk.tokens()
    present = [t for t in tokens if t is not None]
    if not present:
        return False
    top = max(set(present), key=present.count)
    if present.count(top) >= STEP_RATE * len(alive) and not top.endswith(":") and "[" not in top:
        if token_class(top) == "punct":
            walk.take(None, re.escape(top), walk.probe(re.escape(top)))
        else:
            name = walk.name("Host" if "Level" not in walk.names else "Field")
            walk.take(name, rf"(?P<{name}>[^\s|]+)", walk.probe(r"[^\s|]+"))
        return True
    if sum(t.endswith(":") or "[" in t for t in present) >= 0.9 * len(alive):
        matches = walk.probe(_COMPONENT_COLON)
        matches = walk.probe(_COMPONENT_COLON + _COLON_SEP)
        if walk.fits(matches) and all(len(m.group(0).split(":")[0].split()) <= 3 for m in matches if m):
            piece = _COMPONENT_COLON.replace("<Pid>", f"<{walk.name('Pid')}>")
            walk.take("Component", piece.replace("<Context>", f"<{walk.name('Context')}>"), matches, _COLON_SEP)
            return False
    matches = walk.probe(_COMPONENT_DASH + _DASH_SEP)
    if walk.fits(matches) and all(len(m.group(0).split()) <= 4 for m in matches if m):
        walk.take("Component", _COMPONENT_DASH, matches, _DASH_SEP)
        return False
    classes = [token_class(t) for t in present]
    main = max(set(classes), key=classes.count)
    consistent = classes.count(main) >= STEP_RATE * len(alive)
    wide_gap = sum(bool(re.match(r"[^\s|]+(?:\s{2,}|\|)", r)) for r in alive) >= STEP_RATE * len(alive)
    if (consistent and main in _HEADER_CLASSES) or _anchor_ahead(walk) or (
            wide_gap and walk.proposal.ts_layout is not None):
        kind = ("Pid" if "Pid" not in walk.names else "Tid") if main == "int" and consistent else (
            "Component" if "Level" in walk.names and "Component" not in walk.names else "Field")
        name = walk.name(kind)
        walk.take(name, rf"(?P<{name}>[^\s|]+)", walk.probe(r"[^\s|]+"))
        return True
    return False


def propose_header(lines: list[str]) -> HeaderProposal | None:
    """A header proposal for ``lines`` (None when no field at all could be found)."""
    walk = _Walk(lines)
    while len(walk.proposal.fields) < MAX_FIELDS and _step(walk):
        pass
    if not walk.proposal.fields:
        return None
    return walk.proposal
