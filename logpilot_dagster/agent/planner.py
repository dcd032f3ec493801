"""Offline text-to-SQL: slot filling over a parsed question, one SQL shape per question family.

Conventions (also the golden set's): counts are ``n``; rates are fractions in ``[0, 1]`` named ``rate``
(share of lines at the asked level, ERROR by default); grouped results lead with their group columns and are
ordered by them, rankings by ``n`` descending then the group value; search returns ``ts, service, level,
message`` newest first (20 lines unless a number is asked for); catalog lookups lead with ``system_name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from logpilot_dagster.agent.grounding import SHAPE_WORDS, template_stems
from logpilot_dagster.agent.question import QUOTED, ParsedQuestion
from logpilot_dagster.agent.timeparse import NUMBER_WORDS, TimeMatch, find_periods

#: How answers begin when the question names something the data lacks, or could mean several things.
NOT_FOUND = "Not found:"
AMBIGUOUS = "Ambiguous:"
#: The relation every log question reads (one constant, so pointing the agent at another view is one line).
LOGS = "logs_all"
SEARCH_STRATEGIES = ("phrase", "stems", "vectors")
DEFAULT_SEARCH_LINES = 20
DEFAULT_TOP = 5
_NUM = r"(\d+|" + "|".join(NUMBER_WORDS) + r")"
_BUCKETS = {  # dimension -> (SQL expression, column name)
    "year": ("l.year", "year"),
    "quarter": ("date_trunc('quarter', l.ts)", "quarter"),
    "month": ("date_trunc('month', l.ts)", "month"),
    "week": ("date_trunc('week', l.ts)", "week"),
    "day": ("date_trunc('day', l.ts)", "day"),
    "hour": ("date_trunc('hour', l.ts)", "hour"),
    "hour_of_day": ("hour(l.ts)", "hour_of_day"),
}
_DIMENSIONS = {
    **_BUCKETS,
    "service": ("l.service", "service"),
    "level": ("l.level", "level"),
    "source": ("l.source", "source"),
    "department": ("c.department", "department"),
    "criticality": ("c.criticality", "criticality"),
}
_DIM_WORDS = [
    ("hour_of_day", r"hours?\s+of\s+(?:the\s+)?day"),
    ("service", r"services?|systems?|apps?"),
    ("level", r"levels?"),
    ("source", r"sources?(?:\s+files?)?|files?"),
    ("department", r"departments?|teams?|depts?|orgs?"),
    ("criticality", r"criticality|criticalities"),
    ("year", r"years?|yearly|annual(?:ly)?"),
    ("quarter", r"quarters?|quarterly"),
    ("month", r"months?|monthly"),
    ("week", r"weeks?|weekly"),
    ("day", r"days?|daily|dates?"),
    ("hour", r"hours?|hourly"),
]
_GROUP_CUE = r"\b(?:per|by|each|for\s+each|for\s+every|broken\s+down\s+by|split\s+by|grouped\s+by|of\s+each)"
_RANK_CUE = (
    r"\b(?:most|least|highest|lowest|fewest|biggest|largest|smallest|busiest|peak|noisiest|quietest|loudest|"
    r"chattiest|top|rank)"
)
_ASCENDING_CUE = r"\b(?:least|lowest|fewest|smallest|quietest)\b"
_COMPARE_CUE = (
    r"\b(?:compare[sd]?|comparing|comparison|versus|vs\.?|than|more|fewer|noisier|busier|quieter|larger|bigger|"
    r"higher|lower)\b"
)
#: Quarantine reasons by the words people use for them.
_REASONS = [
    ("blank_line", r"\bblank|\bempty\s+lines?"),
    ("empty_file", r"\bempty\s+files?"),
    ("line_too_long", r"\btoo\s+long|\boversized|\blong\s+lines?"),
    ("undecodable_utf8", r"\butf|\bundecodable|\bencoding|\bbinary"),
    ("truncated_gzip", r"\btruncated"),
    ("bad_gzip", r"\bbad\s+gzip|\bcorrupt"),
    ("bad_timestamp", r"\btimestamps?\b|\bbad\s+times?\b"),
    ("no_format_match", r"\bno\s+format|\bheaders?\b|\bformat\b"),
    ("no_source_declared", r"\bundeclared|\bno\s+source"),
]
#: When a quarantined line's data is from (the sandbox view derives it from the raw line, which stays hidden;
#: ``seen_at`` is only when the line was rejected).
QUARANTINE_TIME = "q.data_ts"


@dataclass(frozen=True)
class Plan:
    """What to run for one attempt: SQL (or ``None`` for retrieval only) and how to describe it."""

    sql: str | None
    shape: str
    description: str
    strategy: str


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, values: list[str]) -> str:
    if len(values) == 1:
        return f"{column} = {quote(values[0])}"
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"l.message ILIKE {quote('%' + escaped + '%')} ESCAPE '\\'"


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def _number(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    if not match:
        return None
    value = match.group(1)
    return NUMBER_WORDS.get(value) or int(value)


def scope_filters(parsed: ParsedQuestion, levels: bool = True) -> list[str]:
    """Predicates on ``logs l`` for the services, catalog attributes, levels and time the question names."""
    entities, where = parsed.entities, []
    if entities.services:
        where.append(_in("l.service", entities.services))
    for column, values in (
        ("department", entities.departments),
        ("criticality", entities.criticalities),
        ("owner_email", entities.owners),
    ):
        if values:
            where.append(f"l.service IN (SELECT system_name FROM system_catalog WHERE {_in(column, values)})")
    if levels and entities.levels:
        where.append(_in("l.level", entities.levels))
    if parsed.time:
        where.extend(parsed.time.range.sql("l.ts"))
    return where


def cue_phrase(residual: str) -> str | None:
    """Unquoted text after "like", "containing", "mentioning" ... up to the next clause."""
    match = re.search(
        r"\b(?:like|containing|contains?|mentioning|mentions?|matching|that\s+says?|saying|says|with\s+the\s+words?|"
        r"with\s+text|about|referencing|similar\s+to|for|with)\s+(.+?)(?=\s{2,}|\s+(?:from|in|on|by|during|since|"
        r"between|over|at|within|logged|emitted|and|last|this)\b|[?.!,;]|$)",
        residual,
    )
    if not match:
        return None
    words = [w for w in re.findall(r"[\w=./:-]+", match.group(1)) if w not in ("the", "a", "an", "some", "any")]
    if not words or all(w in SHAPE_WORDS or w in ENGLISH_STOP_WORDS for w in words):
        return None
    return " ".join(words)


def message_filters(parsed: ParsedQuestion, templates: list[str], strategy: str) -> list[str]:
    """Message predicates: quoted and template phrases (``phrase``) or their stems (``stems``)."""
    phrases = list(parsed.quoted) + list(parsed.phrases)
    if strategy == "phrase":
        cue = cue_phrase(parsed.residual)
        if cue and not phrases:
            phrases.append(cue)
        if not phrases:
            return [_like(s) for s in template_stems(parsed.residual, templates)]
        return [_like(p) for p in phrases]
    text = " ".join(phrases) + " " + (parsed.residual if not phrases else "")
    return [_like(s) for s in template_stems(text, templates, min_share=0.5)]


def describe(parsed: ParsedQuestion, what: str = "lines") -> str:
    """Human wording of the scope, e.g. "ERROR lines of payments-api in 2023"."""
    entities = parsed.entities
    parts = [f"{'/'.join(entities.levels)} {what}" if entities.levels else what]
    if entities.services:
        parts.append("of " + ", ".join(entities.services))
    if entities.departments:
        parts.append("of the " + ", ".join(entities.departments) + " department")
    if entities.criticalities:
        parts.append("of " + "/".join(entities.criticalities) + "-criticality services")
    if parsed.quoted or parsed.phrases:
        parts.append("matching " + ", ".join(repr(p) for p in parsed.quoted + parsed.phrases))
    text = " ".join(parts)
    return f"{text}, {parsed.time.range.dates}" if parsed.time else text


def _dimension_of(word: str) -> str:
    return next(d for d, p in _DIM_WORDS if re.fullmatch(p, word))


def _dimensions(text: str) -> tuple[list[str], str | None]:
    """(group-by dimensions, ranked dimension) named in the residual text.

    A dimension groups when a cue introduces it ("per month", "by level and service", "for each
    department") or as an adverb ("monthly"); "which service ... most" ranks by it.
    """
    words = "|".join(p for _, p in _DIM_WORDS)
    ranked = None
    which = re.search(rf"\b(?:which|what)\s+(?:{_NUM}\s+)?(?:\w+\s+){{0,2}}?({words})\b", text)
    if which and _has(_RANK_CUE, text):
        ranked = _dimension_of(which.group(2))
    rank_by = re.search(rf"\b(?:rank(?:\s+the)?|top)\s+(?:{_NUM}\s+)?(?:[a-z]+est\s+)?({words})\b", text)
    if rank_by and not ranked:
        ranked = _dimension_of(rank_by.group(2))
    superlative = re.search(
        rf"\b(?:(?:most|least)\s+[\w-]+|busiest|noisiest|quietest|chattiest|loudest|biggest|largest|smallest|"
        rf"highest|lowest|fewest)\s+({words})\b",
        text,
    )
    if superlative and not ranked:
        ranked = _dimension_of(superlative.group(1))
    counted = re.search(rf"\b{_NUM}\s+(?:(?:most|least)\s+\w+\s+|[a-z]+est\s+)?({words})\b", text)
    if counted and not ranked and _has(_RANK_CUE, text):
        ranked = _dimension_of(counted.group(2))
    found: list[tuple[int, str]] = []
    chain = rf"({words})((?:\s*(?:,|and|then|/|&)\s*(?:the\s+)?(?:{words}))*)"
    for match in re.finditer(rf"\b({words})\s+(?:breakdown|split|distribution)\b", text):
        found.append((match.start(1), _dimension_of(match.group(1))))
    for match in re.finditer(rf"{_GROUP_CUE}\s+(?:the\s+|each\s+|every\s+)?{chain}", text):
        found.append((match.start(1), _dimension_of(match.group(1))))
        for extra in re.finditer(rf"\b({words})\b", match.group(2)):
            found.append((match.start(2) + extra.start(), _dimension_of(extra.group(1))))
    adverbs = {
        "yearly": "year",
        "annual": "year",
        "annually": "year",
        "quarterly": "quarter",
        "monthly": "month",
        "weekly": "week",
        "daily": "day",
        "hourly": "hour",
    }
    for match in re.finditer(rf"\b({'|'.join(adverbs)})\b", text):
        found.append((match.start(), adverbs[match.group(1)]))
    for match in re.finditer(r"\b(year|quarter|month|week|day|hour)[- ](?:by|over|to)[- ]\1\b", text):
        found.append((match.start(), match.group(1)))
    groups = []
    for _, dimension in sorted(found):
        if dimension != ranked and dimension not in groups:
            groups.append(dimension)
    return groups, ranked


def _trend_bucket(parsed: ParsedQuestion) -> str:
    rng = parsed.time.range if parsed.time else None
    if rng and rng.start and rng.end and rng.end - rng.start <= timedelta(days=62):
        return "day"
    return "month"


def plan_metrics(parsed: ParsedQuestion, templates: list[str], strategy: str = "phrase") -> Plan | None:
    """Aggregation SQL over ``logs`` (joined to the catalog or templates where the question needs it).

    ``None`` when the strategy has nothing to add (``stems`` without a word matching a template).
    """
    text = parsed.residual
    if _has(r"quarantin|malformed|unparseable|rejected", text):
        return _plan_quarantine(parsed)
    if _has(r"\balias", text):
        return Plan("SELECT count(*) AS n FROM template_aliases", "count", "recorded template aliases", strategy)
    dims, ranked = _dimensions(text)
    rate = _has(r"\brate\b|\bratio\b|percent|\bshare\b|\bfraction\b|\bproportion\b", text)
    messages = message_filters(parsed, templates, strategy)
    if strategy == "stems" and not messages:
        return None
    if _has(_COMPARE_CUE, text) and not dims and not ranked:
        comparison = _plan_compare(parsed, messages, rate, strategy)
        if comparison:
            return comparison
    where = scope_filters(parsed, levels=not rate) + messages
    if _has(r"\btrend|over\s+time\b|\bgrow|\bchange", text) and not dims and not ranked:
        dims = [_trend_bucket(parsed)]
    joins = (
        " JOIN system_catalog c ON c.system_name = l.service"
        if {"department", "criticality"} & set(dims + [ranked or ""])
        else ""
    )
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    scope = describe(parsed)

    first = _has(r"\bfirst\b|\bearliest\b|\boldest\b|\bstart", text)
    last = _has(r"\blast\b|\blatest\b|\bmost\s+recent\b|\bnewest\b", text)
    if (
        (first or last)
        and not dims
        and not ranked
        and _has(
            r"\bwhen\b|\btime(?:stamp)?\b|\boccurrence|\bseen\b|"
            r"\bline\b|\bentry\b|\bdate\b",
            text,
        )
    ):
        func, column, word = ("min", "first_seen", "first") if first else ("max", "last_seen", "last")
        sql = f"SELECT {func}(l.ts) AS {column} FROM {LOGS} l{clause}"
        return Plan(sql, "first_last", f"{word} occurrence of {scope}", strategy)

    if (
        _has(r"\b(?:templates?|patterns?|messages?|kinds?|types?)\b", text)
        and _has(r"\btop\b|\bmost\b|\bleast\b|\bfrequent|\bcommon\b|\boften\b|\bhighest\b", text)
        and not ranked
    ):
        return _plan_top(parsed, text, clause, scope, strategy)

    select_dims = [_DIMENSIONS[d] for d in dims]
    if rate:
        levels = parsed.entities.levels or ["ERROR"]
        measure = f"count_if({_in('l.level', levels)}) / count(*) AS rate"
        description = f"share of {'/'.join(levels)} among {describe(_without_levels(parsed))}"
        shape = "rate"
    elif _has(
        r"\b(?:distinct|unique|different)\s+(?:[\w-]+\s+){0,2}?(?:templates?|patterns?)\b|"
        r"how\s+many\s+(?:\w+\s+)?(?:templates|patterns)",
        text,
    ):
        measure, description, shape = "count(DISTINCT l.template_id) AS n", f"distinct templates in {scope}", "count"
    elif _has(r"\b(?:distinct|unique|different)\s+messages?\b", text):
        measure, description, shape = "count(DISTINCT l.message) AS n", f"distinct messages in {scope}", "count"
    else:
        measure, description, shape = "count(*) AS n", scope, "count"

    average = re.search(
        r"\b(?:average|avg|mean)\b.*?\b(?:per|a|each)\s+(day|week|month|year|hour)\b|"
        r"\b(?:average|avg|mean)\s+(daily|weekly|monthly|yearly|hourly)\b",
        text,
    )
    if average and not rate:
        bucket = (
            average.group(1)
            or {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year", "hourly": "hour"}[
                average.group(2)
            ]
        )
        expression = _BUCKETS[bucket][0]
        sql = (
            f"SELECT avg(n) AS avg_n FROM (SELECT {expression} AS bucket, count(*) AS n "
            f"FROM {LOGS} l{joins}{clause} GROUP BY bucket)"
        )
        return Plan(sql, "average", f"average {description} per {bucket}", strategy)

    if ranked:
        expression, column = _DIMENSIONS[ranked]
        joins = joins or (
            " JOIN system_catalog c ON c.system_name = l.service" if ranked in ("department", "criticality") else ""
        )
        order = "ASC" if _has(_ASCENDING_CUE, text) else "DESC"
        metric = "rate" if rate else "n"
        limit = _rank_limit(text)
        sql = (
            f"SELECT {expression} AS {column}, {measure} FROM {LOGS} l{joins}{clause} GROUP BY {column} "
            f"ORDER BY {metric} {order}, {column}" + (f" LIMIT {limit}" if limit else "")
        )
        return Plan(sql, "ranking", f"{column} ranked by {description}", strategy)

    if select_dims:
        columns = ", ".join(f"{e} AS {c}" for e, c in select_dims)
        names = ", ".join(c for _, c in select_dims)
        sql = f"SELECT {columns}, {measure} FROM {LOGS} l{joins}{clause} GROUP BY {names} ORDER BY {names}"
        return Plan(sql, "grouped", f"{description} by {', '.join(dims)}", strategy)
    return Plan(f"SELECT {measure} FROM {LOGS} l{clause}", shape, description, strategy)


def _rank_limit(text: str) -> int | None:
    """How many ranked rows: "top 3", "which 2 services", "the four noisiest", else 1 (all for "rank ...")."""
    words = "|".join(p for _, p in _DIM_WORDS)
    asked = _number(r"\btop\s+" + _NUM, text) or _number(
        _NUM + rf"\s+(?:(?:most|least)\s+\w+\s+|[a-z]+est\s+)?(?:{words})\b", text
    )
    return asked or (None if _has(r"\brank", text) else 1)


def _without_levels(parsed: ParsedQuestion) -> ParsedQuestion:
    return replace(parsed, entities=replace(parsed.entities, levels=[]))


def _whole_year(match: TimeMatch) -> bool:
    rng = match.range
    return bool(rng.start and rng.end and rng.start == datetime(rng.start.year, 1, 1)
                and rng.end == datetime(rng.start.year + 1, 1, 1))


def _plan_compare(parsed: ParsedQuestion, messages: list[str], rate: bool, strategy: str) -> Plan | None:
    """Two or more services, departments, levels or periods side by side, the larger first.

    Rows are ``(side, n)`` (or ``rate``) ordered by the measure descending; periods are labelled by their first
    day (whole years by the year). ``None`` when the question does not name two sides of one kind.
    """
    entities = parsed.entities
    levels = ["ERROR"] if rate and not entities.levels else entities.levels
    measure = f"count_if({_in('l.level', levels)}) / count(*) AS rate" if rate else "count(*) AS n"
    metric = "rate" if rate else "n"
    joins, scope = "", parsed
    if len(entities.services) >= 2:
        side = ("l.service", "service")
    elif len(entities.departments) >= 2:
        side, joins = ("c.department", "department"), " JOIN system_catalog c ON c.system_name = l.service"
    elif len(entities.levels) >= 2 and not rate:
        side = ("l.level", "level")
    else:
        periods = find_periods(QUOTED.sub(" ", parsed.text), parsed.now) if parsed.time and parsed.now else []
        if len(periods) < 2:
            return None
        cases = [" AND ".join(p.range.sql("l.ts")) for p in periods]
        if all(_whole_year(p) for p in periods):
            side = ("year(l.ts)", "year")
        else:
            labels = " ".join(f"WHEN {c} THEN DATE '{p.range.start:%Y-%m-%d}'" for c, p in zip(cases, periods))
            side = (f"CASE {labels} END", "period_start")
        scope = replace(parsed, time=None)
        messages = messages + ["(" + " OR ".join(f"({c})" for c in cases) + ")"]
    where = scope_filters(scope, levels=not rate) + messages
    expression, column = side
    sql = (
        f"SELECT {expression} AS {column}, {measure} FROM {LOGS} l{joins} WHERE {' AND '.join(where)} "
        f"GROUP BY 1 ORDER BY {metric} DESC, 1"
    )
    what = f"share of {'/'.join(levels)} among {describe(_without_levels(scope))}" if rate else describe(scope)
    if scope is not parsed:
        what += ", " + " vs ".join(p.range.dates for p in periods)
    return Plan(sql, "comparison", f"{what}, compared by {column}", strategy)


def _plan_top(parsed: ParsedQuestion, text: str, clause: str, scope: str, strategy: str) -> Plan:
    limit = _number(r"\btop\s+" + _NUM, text) or _number(_NUM + r"\s+(?:most|least)\b", text)
    if limit is None:
        singular = _has(r"\b(?:template|message|pattern)\b(?!s)", text) and not _has(r"\btop\b", text)
        limit = 1 if singular else DEFAULT_TOP
    order = "ASC" if _has(_ASCENDING_CUE, text) else "DESC"
    if _has(r"\bmessages?\b", text) and not _has(r"\btemplates?|patterns?\b", text):
        sql = (
            f"SELECT l.message, count(*) AS n FROM {LOGS} l{clause} GROUP BY l.message "
            f"ORDER BY n {order}, l.message LIMIT {limit}"
        )
        return Plan(sql, "top", f"top {limit} messages among {scope}", strategy)
    sql = (
        f"SELECT l.template_id, t.template, count(*) AS n FROM {LOGS} l JOIN templates t "
        f"ON t.template_id = l.template_id{clause} GROUP BY l.template_id, t.template "
        f"ORDER BY n {order}, l.template_id LIMIT {limit}"
    )
    return Plan(sql, "top", f"top {limit} templates among {scope}", strategy)


def _plan_quarantine(parsed: ParsedQuestion) -> Plan:
    """Quarantined lines, filtered and grouped by the time of their data (:data:`QUARANTINE_TIME`)."""
    text, where = parsed.residual, []
    if parsed.entities.services:
        where.append(
            "(" + " OR ".join(f"q.source ILIKE {quote('%' + s + '%')}" for s in parsed.entities.services) + ")"
        )
    reasons = [reason for reason, pattern in _REASONS if _has(pattern, text)]
    if reasons:
        where.append(_in("q.reason", reasons[:1]))
    if parsed.time:
        where.extend(parsed.time.range.sql(QUARANTINE_TIME))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    scope = "quarantined lines" + (f" ({reasons[0]})" if reasons else "")
    scope += (" of " + ", ".join(parsed.entities.services)) if parsed.entities.services else ""
    scope += f", data from {parsed.time.range.dates}" if parsed.time else ""
    for column in ("reason", "source"):
        if _has(rf"\b(?:per|by|each)\s+{column}|\b{column}s\b", text):
            sql = f"SELECT q.{column}, count(*) AS n FROM quarantine q{clause} GROUP BY q.{column} ORDER BY q.{column}"
            return Plan(sql, "grouped", f"{scope} by {column}", "phrase")
    if _has(r"\b(?:per|by|each)\s+year|\byearly\b|\bannual", text):
        sql = f"SELECT year({QUARANTINE_TIME}) AS year, count(*) AS n FROM quarantine q{clause} GROUP BY year ORDER BY year"
        return Plan(sql, "grouped", f"{scope} by year of their data", "phrase")
    return Plan(f"SELECT count(*) AS n FROM quarantine q{clause}", "count", scope, "phrase")


def unanswerable(parsed: ParsedQuestion, coverage: tuple | None) -> Plan | None:
    """A "not found" or "ambiguous" answer when the question names what the data lacks or several things.

    ``coverage`` is ``(first, last)`` event time in the warehouse.
    """
    if parsed.entities.ambiguous:
        alias, services = next(iter(parsed.entities.ambiguous.items()))
        return Plan(None, "ambiguous", f"{AMBIGUOUS} {alias!r} could mean {' or '.join(services)}; "
                    "please name one.", "slots")
    if parsed.unknown:
        return Plan(None, "not_found", f"{NOT_FOUND} no service called {parsed.unknown[0]!r} is in the catalog.",
                    "slots")
    rng = parsed.time.range if parsed.time else None
    if rng and coverage and coverage[0] is not None:
        first, last = coverage
        if (rng.end is not None and rng.end <= first) or (rng.start is not None and rng.start > last):
            return Plan(None, "not_found", f"{NOT_FOUND} there is no data for {rng.dates} (the logs cover "
                        f"{first:%Y-%m-%d} to {last:%Y-%m-%d}).", "slots")
    return None


def plan_search(
    parsed: ParsedQuestion, templates: list[str], strategy: str, template_ids: list[str] = ()
) -> Plan | None:
    """Matching log lines, newest first; ``template_ids`` (from vector search) drive the ``vectors`` strategy.

    ``None`` when the strategy has nothing to add (no stems, no similar templates).
    """
    text = parsed.residual
    limit = (
        _number(r"\b(?:latest|last|newest|recent|first|top|earliest|oldest|show|give\s+me|find)\s+" + _NUM, text)
        or _number(_NUM + r"\s+(?:most\s+recent|latest|newest|recent|lines|messages|entries|examples|samples)", text)
        or DEFAULT_SEARCH_LINES
    )
    where = scope_filters(parsed)
    if strategy == "vectors":
        if not template_ids:
            return None
        where.append(_in("l.template_id", list(template_ids)))
    else:
        messages = message_filters(parsed, templates, strategy)
        if strategy == "stems" and not messages:
            return None
        where += messages
    order = "ASC" if _has(r"\b(?:first|earliest|oldest)\b", text) else "DESC"
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = (
        f"SELECT l.ts, l.service, l.level, l.message FROM {LOGS} l{clause} "
        f"ORDER BY l.ts {order}, l.event_id LIMIT {min(limit, 200)}"
    )
    return Plan(sql, "search", describe(parsed), strategy)


def plan_rca_evidence(parsed: ParsedQuestion) -> Plan:
    """Supporting numbers for a root-cause question: the top ERROR/FATAL templates in scope."""
    where = scope_filters(parsed, levels=False) + ["l.level IN ('ERROR', 'FATAL')"]
    sql = (
        f"SELECT l.template_id, t.template, count(*) AS n FROM {LOGS} l JOIN templates t "
        f"ON t.template_id = l.template_id WHERE {' AND '.join(where)} GROUP BY l.template_id, t.template "
        f"ORDER BY n DESC, l.template_id LIMIT {DEFAULT_TOP}"
    )
    return Plan(sql, "top", f"most frequent ERROR/FATAL templates of {describe(_without_levels(parsed))}", "rag")


_CATALOG_ATTRIBUTES = [
    ("department", r"\bdepartments?\b|\bteams?\b|\bdept\b|\borg\b|\bpart\s+of\b|\bbelongs?\b|\bwhose\b"),
    (
        "owner_email",
        r"\bowns?\b|\bowned\b|\bowners?\b|\bcontact\b|\bpage\b|\bon-?call\b|\bescalat|\bmaintain|"
        r"\bemail\b|\bmailbox\b|\bresponsible\b|\breach\b|\bcall\b|\bping\b",
    ),
    ("criticality", r"\bcriticality\b|\bcritical\b|\btier\b|\bpriority\b"),
]


def plan_catalog(parsed: ParsedQuestion) -> Plan:
    """Lookups in ``system_catalog``: owners, departments, criticality, and counts over them."""
    text, entities = parsed.residual, parsed.entities
    where = []
    if entities.services:
        where.append(_in("system_name", entities.services))
    else:
        for column, values in (
            ("department", entities.departments),
            ("criticality", entities.criticalities),
            ("owner_email", entities.owners),
        ):
            if values:
                where.append(_in(column, values))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    attributes = [c for c, p in _CATALOG_ATTRIBUTES if _has(p, text)]
    if _has(r"\b(?:which|what)\s+(?:team|department|dept|org)\b", text) and entities.services:
        attributes = ["department"]
    if entities.services:
        if entities.criticalities and "criticality" not in attributes:
            attributes.append("criticality")
        attributes = attributes or ["department", "owner_email", "criticality"]
        if "owner_email" in attributes and "department" in attributes and not _has(r"\bdepartment\b|\band\b", text):
            attributes.remove("department")
        columns = ", ".join(["system_name"] + attributes)
        return Plan(
            f"SELECT {columns} FROM system_catalog{clause} ORDER BY system_name",
            "catalog",
            f"catalog entry of {', '.join(entities.services)}",
            "slots",
        )
    if _has(r"\bhow\s+(?:many|big|large)\b|\bcount\b|\bnumber\s+of\b|\bsize\s+of\b", text) or _has(_RANK_CUE, text):
        for column in ("department", "criticality"):
            grouped = _has(rf"\b(?:per|by|each|every)\s+{column}", text) or _has(rf"\b(?:which|what)\s+{column}", text)
            if grouped:
                order = f"n DESC, {column} LIMIT 1" if _has(_RANK_CUE, text) else column
                return Plan(
                    f"SELECT {column}, count(*) AS n FROM system_catalog{clause} GROUP BY {column} ORDER BY {order}",
                    "grouped",
                    f"services per {column}",
                    "slots",
                )
        if _has(r"\bdepartments\b", text) and not where:
            return Plan("SELECT count(DISTINCT department) AS n FROM system_catalog", "count", "departments", "slots")
        return Plan(f"SELECT count(*) AS n FROM system_catalog{clause}", "count", "services in the catalog", "slots")
    if (
        _has(r"\b(?:which|what|list|all|show)\b.*\bdepartments\b", text)
        and not where
        and not _has(r"\bservices?\b|\bsystems?\b", text)
    ):
        return Plan(
            "SELECT DISTINCT department FROM system_catalog ORDER BY department", "catalog", "departments", "slots"
        )
    if where:
        wanted = [
            a
            for a in attributes
            if a not in ("department", "owner_email")
            or _has(r"\bowners?\b|\bemails?\b|\bcontacts?\b" if a == "owner_email" else r"\bdepartments?\b", text)
        ]
        if entities.departments and "criticality" in wanted and not _has(r"\bcriticality\b", text):
            wanted.remove("criticality")
        if entities.criticalities and "criticality" in wanted:
            wanted.remove("criticality")
        columns = ", ".join(["system_name"] + wanted)
        return Plan(
            f"SELECT {columns} FROM system_catalog{clause} ORDER BY system_name",
            "catalog",
            "services matching " + ", ".join(entities.departments + entities.criticalities + entities.owners),
            "slots",
        )
    columns = ", ".join(["system_name"] + attributes) if attributes else "*"
    if _has(r"\b(?:sort|order)", text) and "criticality" in attributes:
        order = (
            "CASE criticality WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, system_name"
        )
    else:
        order = "system_name"
    return Plan(f"SELECT {columns} FROM system_catalog ORDER BY {order}", "catalog", "the system catalog", "slots")
