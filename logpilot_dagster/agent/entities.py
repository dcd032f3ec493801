"""Resolve services, departments, criticality, owners and levels in a question against ``system_catalog``.

Service synonyms are derived from the catalog names ("payments-api" -> "payments", "payment", "payments api";
"edge-gateway" -> "gateway", "edge") plus a few hand-written ones. A department matches when a cue says so
("the Identity team", "belongs to Payments") or when its name cannot be confused with a service or a verb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
CRITICALITIES = ("critical", "high", "medium", "low")
LEVEL_WORDS = {
    "ERROR": r"errors?|erroring|errored|error-prone",
    "FATAL": r"fatals?|fatal-level",
    "WARN": r"warn|warns|warnings?",
    "INFO": r"info|informational",
    "DEBUG": r"debug",
}
_GENERIC_TOKENS = {"api", "service", "svc", "web", "db", "worker", "server", "app"}
#: Single words too common in questions to stand for a service or department on their own.
_AMBIGUOUS_WORDS = {"search", "data", "web", "service", "api", "db", "worker"}
_EXTRA_SYNONYMS = {
    "auth-service": ["authentication", "authentication service", "login service", "auth server"],
    "edge-gateway": ["api gateway", "the gateway"],
    "inventory-db": ["inventory database"],
    "notification-worker": ["notifier", "notifications worker", "email worker"],
    "search-indexer": ["search index", "indexing service"],
    "data-pipeline": ["etl", "etl pipeline"],
    "checkout-web": ["checkout frontend", "checkout site"],
}
_DEPT_CUE_AFTER = r"(?:'s)?\s+(?:team|teams|department|dept|org|organization|division|group|unit|squad)"
_DEPT_CUE_BEFORE = (
    r"(?:team|department|dept|org|organization|division|belongs?\s+to|belonging\s+to|owned\s+by|run\s+by|"
    r"managed\s+by|under)\s+(?:the\s+)?"
)
_CRIT_CUE = (
    r"\b({c})(?:[- ]criticality|[- ]priority|[- ]tier)?\s+(?:services?|systems?|apps?|applications?)\b"
    r"|\bcriticality\s+(?:of\s+|is\s+|=\s*|level\s+)?['\"]?({c})\b"
    r"|\b({c})[- ]criticality\b"
    r"|\b(?:marked|rated|flagged|classified|tagged|labelled|labeled)\s+(?:as\s+)?({c})\b"
)
_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}", re.I)


@dataclass(frozen=True)
class System:
    name: str
    department: str
    owner_email: str
    criticality: str


@dataclass
class Entities:
    """What a question names; ``spans`` maps each consumed character range to what it named."""

    services: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    criticalities: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # a phrase naming several services -> them
    spans: dict[tuple[int, int], str] = field(default_factory=dict)


def _plural_variants(word: str) -> set[str]:
    return {word, word[:-1]} if word.endswith("s") and len(word) > 4 else {word, word + "s"}


def service_aliases(name: str) -> set[str]:
    """Phrases that name the service ``name`` (lower case)."""
    tokens = name.lower().split("-")
    core = [t for t in tokens if t not in _GENERIC_TOKENS] or tokens
    aliases = {name.lower(), " ".join(tokens), " ".join(core)}
    aliases |= _plural_variants(" ".join(core))
    aliases.add(f"{' '.join(core)} service")
    for token in core:
        if token not in _AMBIGUOUS_WORDS:
            aliases |= _plural_variants(token)
    aliases |= set(_EXTRA_SYNONYMS.get(name, []))
    return {a for a in aliases if a and a not in _AMBIGUOUS_WORDS}


def _free(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return all(span[1] <= s or span[0] >= e for s, e in taken)


def _phrase(words: str) -> str:
    """A regex for ``words`` allowing spaces or hyphens between them."""
    return r"(?<![\w-])" + r"[\s-]+".join(re.escape(w) for w in words.split()) + r"(?![\w-])"


class Resolver:
    """Entity resolution for one catalog snapshot."""

    def __init__(self, systems: list[System]):
        self.systems = systems
        self.departments = sorted({s.department for s in systems}, key=len, reverse=True)
        alias_owner: dict[str, set[str]] = {}
        for system in systems:
            for alias in service_aliases(system.name):
                alias_owner.setdefault(alias, set()).add(system.name)
        # An alias shared by two services names neither: it is ambiguous.
        self.aliases = sorted(
            ((alias, next(iter(names))) for alias, names in alias_owner.items() if len(names) == 1),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        self.shared = {
            alias: sorted(names)
            for alias, names in alias_owner.items()
            if len(names) > 1 and all(alias in name.split("-") for name in names)
        }
        self._service_words = {alias for alias, _ in self.aliases}

    def resolve(self, text: str, taken: list[tuple[int, int]] | None = None) -> Entities:
        """Find entities in ``text``; spans in ``taken`` (quoted phrases, time expressions) are skipped."""
        lowered = text.lower()
        found = Entities()
        blocked = list(taken or [])

        def claim(match: re.Match, kind: str) -> bool:
            span = match.span()
            if _free(span, blocked + list(found.spans)):
                found.spans[span] = kind
                return True
            return False

        for dept in self.departments:
            name = _phrase(dept.lower())
            for pattern in (name + _DEPT_CUE_AFTER, _DEPT_CUE_BEFORE + f"({name})"):
                for match in re.finditer(pattern, lowered):
                    if claim(match, "department") and dept not in found.departments:
                        found.departments.append(dept)
        for alias, service in self.aliases:
            for match in re.finditer(_phrase(alias), lowered):
                if claim(match, "service") and service not in found.services:
                    found.services.append(service)
        for alias, services in self.shared.items():
            for match in re.finditer(_phrase(alias), lowered):
                if claim(match, "service"):
                    found.ambiguous[alias] = services
        for dept in self.departments:
            if dept.lower() in self._service_words or dept.lower() in _AMBIGUOUS_WORDS:
                continue
            for match in re.finditer(_phrase(dept.lower()), lowered):
                if claim(match, "department") and dept not in found.departments:
                    found.departments.append(dept)
        crit = "|".join(CRITICALITIES)
        for match in re.finditer(_CRIT_CUE.format(c=crit), lowered):
            value = next(g for g in match.groups() if g)
            if claim(match, "criticality") and value not in found.criticalities:
                found.criticalities.append(value)
        for match in _EMAIL.finditer(lowered):
            if claim(match, "owner"):
                found.owners.append(match.group(0))
        for level, words in LEVEL_WORDS.items():
            for match in re.finditer(rf"(?<![\w-])(?:{words})(?![\w-])", lowered):
                if claim(match, "level") and level not in found.levels:
                    found.levels.append(level)
        found.levels.sort(key=LEVELS.index)
        return found
