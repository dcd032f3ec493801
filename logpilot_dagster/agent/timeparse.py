"""English time expressions to half-open ``[start, end)`` ranges, relative to a pinned ``now``.

Conventions: "last week/month/year" is the previous *calendar* period; "past week" and "last N days" are
rolling windows ending at ``now``; a month range ("between March and May 2024") includes the end month, a
date range ("from 2024-02-01 to 2024-02-15") the end day; "the last 90 days of 2023" and "the first week of
March 2024" are windows at the edge of the named period; a quarter or half without a year ("in Q3", "H1") is
the latest one that has started by ``now``; "since X" and rolling windows end at ``now`` inclusive (``end`` is
``now`` plus one microsecond).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"((?:19|20)\d\d)"
_UNITS = {
    "minute": "minutes",
    "min": "minutes",
    "hour": "hours",
    "hr": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
#: Spelled-out numbers in questions ("top five", "last three weeks").
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "twelve": 12, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "ninety": 90,
}
_NUMBER_WORDS = {"a": 1, "an": 1, **NUMBER_WORDS}  # "a week ago"
_TICK = timedelta(microseconds=1)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}


@dataclass(frozen=True)
class TimeRange:
    """Rows with ``start <= ts < end``; either bound may be open (``None``)."""

    start: datetime | None
    end: datetime | None
    label: str

    @property
    def dates(self) -> str:
        """The range as dates, e.g. "2023-07-01 to 2023-09-30" (the end inclusive)."""
        if self.start is None and self.end is None:
            return "all time"
        last = (self.end - _TICK).date().isoformat() if self.end else "now"
        first = self.start.date().isoformat() if self.start else "the beginning"
        return first if first == last else f"{first} to {last}"

    def sql(self, column: str = "ts") -> list[str]:
        """SQL predicates for this range."""
        out = []
        if self.start is not None:
            out.append(f"{column} >= TIMESTAMP '{self.start.isoformat(sep=' ')}'")
        if self.end is not None:
            out.append(f"{column} < TIMESTAMP '{self.end.isoformat(sep=' ')}'")
        return out


@dataclass(frozen=True)
class TimeMatch:
    """A parsed range and the character spans of the text it came from."""

    range: TimeRange
    spans: tuple[tuple[int, int], ...]


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1)


def _year(value: str | None, month: int, now: datetime) -> int:
    """An explicit year, else the latest year in which ``month`` has started by ``now``."""
    if value:
        return int(value)
    return now.year if month <= now.month else now.year - 1


def _clock(hour: str, minute: str | None, meridiem: str | None) -> time:
    h = int(hour) % 24
    if meridiem == "pm" and h < 12:
        h += 12
    if meridiem == "am" and h == 12:
        h = 0
    return time(h, int(minute or 0))


def _rolling(count: int, unit: str, now: datetime) -> datetime:
    unit = _UNITS.get(unit.rstrip("s"), unit)
    if unit == "months":
        index = now.year * 12 + now.month - 1 - count
        return now.replace(year=index // 12, month=index % 12 + 1, day=min(now.day, 28))
    if unit == "years":
        return now.replace(year=now.year - count, day=min(now.day, 28))
    return now - timedelta(**{unit: count})


def _day_anchor(word: str, now: datetime) -> date:
    return now.date() - timedelta(days=1 if word == "yesterday" else 0)


def _calendar(period: str, offset: int, now: datetime) -> tuple[datetime, datetime]:
    today = datetime.combine(now.date(), time())
    if period == "day":
        start = today + timedelta(days=offset)
        return start, start + timedelta(days=1)
    if period == "week":
        start = today - timedelta(days=today.weekday()) + timedelta(weeks=offset)
        return start, start + timedelta(weeks=1)
    if period == "month":
        start = _add_months(_month_start(now.year, now.month), offset)
        return start, _add_months(start, 1)
    if period == "quarter":
        start = _add_months(_month_start(now.year, 3 * ((now.month - 1) // 3) + 1), 3 * offset)
        return start, _add_months(start, 3)
    start = datetime(now.year + offset, 1, 1)
    return start, datetime(now.year + offset + 1, 1, 1)


def _rules(now: datetime):
    """(pattern, builder) pairs, most specific first; a builder returns (start, end, label)."""
    upto_now = now + _TICK

    def month_range(m):
        first, first_year, last, last_year = MONTHS[m[1]], m[2], MONTHS[m[3]], m[4]
        end_year = _year(last_year, last, now)
        start_year = int(first_year) if first_year else (end_year if first <= last else end_year - 1)
        return _month_start(start_year, first), _add_months(_month_start(end_year, last), 1), m[0]

    def since_day_clock(m):
        anchor = datetime.combine(_day_anchor(m[1], now), _clock(m[2], m[3], m[4]))
        return anchor, upto_now, m[0]

    def since_date(m):
        return datetime.fromisoformat(m[1]), upto_now, m[0]

    def since_month(m):
        month = MONTHS[m[1]]
        return _month_start(_year(m[2], month, now), month), upto_now, m[0]

    def rolling(m):
        count = _NUMBER_WORDS.get(m[1], None) or int(m[1])
        return _rolling(count, m[2], now), upto_now, m[0]

    def rolling_one(m):
        return _rolling(1, m[1], now), upto_now, m[0]

    def calendar(offset):
        def build(m):
            start, end = _calendar(m[1], offset, now)
            return start, end, m[0]

        return build

    def day_word(m):
        start = datetime.combine(_day_anchor(m[0].strip().lower(), now), time())
        return start, start + timedelta(days=1), m[0]

    def quarter(m):
        start = _month_start(int(m[2]), 3 * (int(m[1]) - 1) + 1)
        return start, _add_months(start, 3), m[0]

    def month_year(m):
        month = MONTHS[m[1]]
        start = _month_start(_year(m.groups()[1] if len(m.groups()) > 1 else None, month, now), month)
        return start, _add_months(start, 1), m[0]

    def iso_day(m):
        start = datetime.fromisoformat(m[1])
        return start, start + timedelta(days=1), m[0]

    def year_range(m):
        return datetime(int(m[1]), 1, 1), datetime(int(m[2]) + 1, 1, 1), m[0]

    def before(m):
        if m[2]:
            return None, _month_start(_year(m[3], MONTHS[m[2]], now), MONTHS[m[2]]), m[0]
        return None, datetime(int(m[3]), 1, 1), m[0]

    def after(m):
        if m[2]:
            return _add_months(_month_start(_year(m[3], MONTHS[m[2]], now), MONTHS[m[2]]), 1), None, m[0]
        return datetime(int(m[3]) + 1, 1, 1), None, m[0]

    def since_year(m):
        return datetime(int(m[1]), 1, 1), upto_now, m[0]

    def year(m):
        return datetime(int(m[1]), 1, 1), datetime(int(m[1]) + 1, 1, 1), m[0]

    def latest_quarter(number: int) -> datetime:
        year = now.year if 3 * (number - 1) + 1 <= now.month else now.year - 1
        return _month_start(year, 3 * (number - 1) + 1)

    def quarter_word(m):
        number = _ORDINALS[m[1]] if m[1] in _ORDINALS else int(m[1])
        start = _month_start(int(m[2]), 3 * (number - 1) + 1) if m[2] else latest_quarter(number)
        return start, _add_months(start, 3), m[0]

    def half(m):
        second = m[1] in ("2", "second", "latter")
        year = int(m[2]) if m[2] else (now.year if not second or now.month > 6 else now.year - 1)
        start = _month_start(year, 7 if second else 1)
        return start, _add_months(start, 6), m[0]

    def edge(m):
        inner = find_time(m[4], now)
        if inner is None or inner.range.start is None or inner.range.end is None:
            return None
        count = _NUMBER_WORDS.get(m[2]) or int(m[2] or 1)
        unit = _UNITS.get(m[3].rstrip("s"), m[3])
        start, end = inner.range.start, inner.range.end
        width = timedelta(**{unit: count}) if unit != "months" else None
        if m[1] == "first":
            return start, (start + width if width else _add_months(start, count)), m[0]
        return (end - width if width else _add_months(end, -count)), end, m[0]

    def date_range(m):
        return datetime.fromisoformat(m[1]), datetime.fromisoformat(m[2]) + timedelta(days=1), m[0]

    number = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
    unit = r"(minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    ordinal = "|".join(_ORDINALS)
    return [
        (
            rf"\b(?:the\s+)?(first|last|final|closing|opening)\s+(?:{number}\s+)?(days?|weeks?|months?)\s+of\s+"
            rf"((?:the\s+)?(?:(?:q[1-4]|h[12]|(?:{ordinal})\s+(?:quarter|half))\s*(?:of\s+)?{_YEAR}|{_MONTH}\s*(?:of\s+)?{_YEAR}|{_YEAR}))",
            edge,
        ),
        (
            r"\b(?:between|from)\s+(\d{4}-\d{2}-\d{2})\s+(?:and|to|until|till|through|thru|-)\s+(\d{4}-\d{2}-\d{2})\b",
            date_range,
        ),
        (
            rf"\b(?:(?:between|from)\s+)?{_MONTH}\s*{_YEAR}?\s+(?:and|to|until|till|through|thru|-)\s+{_MONTH}\s*{_YEAR}?",
            month_range,
        ),
        (rf"\b(?:between|from)\s+{_YEAR}\s+(?:and|to|until|till|through|thru|-)\s+{_YEAR}\b", year_range),
        (r"\bsince\s+(yesterday|today)\s*(?:at\s+)?(\d{1,2})(?::(\d\d))?\s*(am|pm)?\b", since_day_clock),
        (r"\bsince\s+(\d{4}-\d{2}-\d{2}(?:[ t]\d{2}:\d{2}(?::\d{2})?)?)", since_date),
        (rf"\bsince\s+{_MONTH}\s*{_YEAR}?\b", since_month),
        (rf"\bsince\s+{_YEAR}\b", since_year),
        (
            r"\bsince\s+(yesterday|today)\b",
            lambda m: (datetime.combine(_day_anchor(m[1], now), time()), upto_now, m[0]),
        ),
        (
            rf"\b(?:in\s+the\s+|over\s+the\s+|during\s+the\s+|within\s+the\s+|for\s+the\s+)?(?:last|past|previous)\s+{number}\s+{unit}\b",
            rolling,
        ),
        (
            r"\b(?:in\s+the\s+|over\s+the\s+|during\s+the\s+|within\s+the\s+)?past\s+(hour|day|week|month|year)\b",
            rolling_one,
        ),
        (
            r"\b(?:in\s+|during\s+|over\s+)?(?:the\s+)?(?:last|previous|prior)\s+(week|month|quarter|year)\b",
            calendar(-1),
        ),
        (
            r"\b(?:in\s+|during\s+|so\s+far\s+)?(?:this|the\s+current)\s+(week|month|quarter|year)(?:\s+so\s+far)?\b",
            calendar(0),
        ),
        (r"\b(yesterday|today)\b", day_word),
        (rf"\bq([1-4])\s*(?:of\s+)?{_YEAR}\b", quarter),
        (rf"\b(?:in\s+|during\s+)?(?:the\s+)?(?:q([1-4])|({ordinal})\s+quarter)(?:\s*(?:of\s+)?{_YEAR})?\b",
         lambda m: quarter_word((m[0], m[1] or m[2], m[3]))),
        (rf"\b(?:in\s+|during\s+)?(?:the\s+)?(?:h([12])|(first|second|latter)\s+half)(?:\s*(?:of\s+)?{_YEAR})?\b",
         lambda m: half((m[0], m[1] or m[2], m[3]))),
        (r"\b(?:on\s+)?(\d{4}-\d{2}-\d{2})\b", iso_day),
        (rf"\b(before|until|prior\s+to)\s+(?:{_MONTH}\s*)?{_YEAR}\b", before),
        (rf"\b(after)\s+(?:{_MONTH}\s*)?{_YEAR}\b", after),
        (rf"\b(?:in\s+|during\s+|for\s+|of\s+)?{_MONTH}\s*(?:of\s+)?{_YEAR}\b", month_year),
        (rf"\b(?:in|during)\s+{_MONTH}(?![\w-])", month_year),
        (rf"\b(?:between|from)\s+{_YEAR}\s+(?:and|to)\s+{_YEAR}\b", year_range),
        (rf"\b(?:in\s+|during\s+|for\s+|of\s+|throughout\s+)?{_YEAR}\b", year),
    ]


def find_time(text: str, now: datetime) -> TimeMatch | None:
    """The first (most specific) time expression in ``text`` as a range, or ``None``.

    Several bare years ("in 2022 and 2023") become one range from the first to the last year.
    """
    lowered = text.lower()
    for pattern, build in _rules(now):
        for match in re.finditer(pattern, lowered):
            built = build(match)
            if built is None:
                continue
            start, end, label = built
            matches = [match]
            if build.__name__ == "year":
                matches = list(re.finditer(pattern, lowered))
                if len(matches) > 1:
                    years = sorted(int(m[1]) for m in matches)
                    start, end = datetime(years[0], 1, 1), datetime(years[-1] + 1, 1, 1)
                    label = f"{years[0]}-{years[-1]}"
            return TimeMatch(TimeRange(start, end, label.strip()), tuple((m.start(), m.end()) for m in matches))
    return None


def find_periods(text: str, now: datetime) -> list[TimeMatch]:
    """Every separate time expression in ``text``, in reading order ("2018 or 2020", "Q1 2019 vs Q1 2020")."""
    lowered, found = text.lower(), []
    for pattern, build in _rules(now):
        for match in re.finditer(pattern, lowered):
            span = match.span()
            if any(span[0] < e and s < span[1] for s, e in (f.spans[0] for f in found)):
                continue
            built = build(match)
            if built is not None:
                found.append(TimeMatch(TimeRange(built[0], built[1], built[2].strip()), (span,)))
    return sorted(found, key=lambda f: f.spans[0])
