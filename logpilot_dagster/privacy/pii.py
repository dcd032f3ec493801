"""Mask PII (emails, IPv4 addresses, payment card numbers, US SSNs) in log text before it is stored.

``PIIMasker.mask`` handles one line; ``PIIMasker.mask_array`` handles an Arrow column: an RE2 prefilter picks
the rows that may hold PII; emails and IPv4 addresses are masked there with RE2 (``_RE2_KINDS``), and only rows
that may hold a card number or an SSN go through Python (Luhn and SSN rules). Both give identical output row by
row, in the same order of kinds.
"""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

EMAIL, CREDIT_CARD, SSN, IP = "email", "credit_card", "ssn", "ip"
PLACEHOLDERS = {
    EMAIL: "<EMAIL_REDACTED>",
    CREDIT_CARD: "<CC_REDACTED>",
    SSN: "<SSN_REDACTED>",
    IP: "<IP_REDACTED>",
}

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])",
    re.ASCII,
)
# A run of 13+ digits in groups joined by single spaces or dashes; card numbers are picked out of it in Python.
_DIGIT_RUN_RE = re.compile(r"(?<![\w-])(?<!\d\.)(?=\d(?:[ -]?\d){12})\d+(?:[ -]\d+)*(?!\w|\.\d)", re.ASCII)
_DIGIT_GROUP_RE = re.compile(r"\d+", re.ASCII)
_SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])", re.ASCII)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\w)", re.ASCII)

# RE2 (pyarrow.compute) filters, one per kind, in masking order. Each is looser than its exact pattern above:
# it matches every line that pattern could change.
_KIND_FILTERS = {
    EMAIL: r"[\w.%+-]@[A-Za-z0-9]",
    CREDIT_CARD: r"(?:^|\W)[2-6](?:[ -]?\d){12}",  # 13+ digits from a group start with an issuer's first digit
    SSN: r"\d{3}-\d{2}-\d{4}",
    IP: r"\d\.\d{1,3}\.\d{1,3}\.\d",
}
_ANY_KIND_FILTER = "|".join(_KIND_FILTERS.values())

# The email and IPv4 patterns for RE2, which has no look-arounds: the character before and the one(s) after a
# match are consumed as groups 1 and 3 and written back. A consumed character can no longer be the context of
# the next match, so rows where an item directly follows another one's consumed character (``_ADJACENT``: a
# superset of those rows) are masked from their original text by the exact Python pattern instead.
_W = "A-Za-z0-9_"
_EMAIL_CORE = rf"[{_W}.%+-]+@[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}"
_IP_CORE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_RE2_KINDS = {
    EMAIL: rf"(^|[^{_W}.%+-])({_EMAIL_CORE})([^{_W}-]|$)",
    IP: rf"(^|[^{_W}.])({_IP_CORE})(\.[^{_W}]|\.$|[^{_W}.]|$)",
}
_ADJACENT = {
    EMAIL: rf"{_EMAIL_CORE}[^{_W}-]{_EMAIL_CORE}",
    IP: rf"{_IP_CORE}(?:\.[^{_W}]|[^{_W}.]){_IP_CORE}",
}
_EXACT = {EMAIL: _EMAIL_RE, IP: _IPV4_RE}

_MAX_CARD_DIGITS = 19
_CARD_IINS = (  # (lowest, highest issuer prefix, both of one length; allowed card lengths)
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("34", "34", (15,)),  # Amex
    ("37", "37", (15,)),  # Amex
    ("6011", "6011", range(16, 20)),  # Discover
    ("644", "649", range(16, 20)),  # Discover
    ("65", "65", range(16, 20)),  # Discover
    ("62", "62", range(16, 20)),  # UnionPay (incl. Discover co-branded 622126-622925)
    ("3528", "3589", range(16, 20)),  # JCB
    ("300", "305", range(14, 20)),  # Diners Club
    ("36", "36", range(14, 20)),  # Diners Club
    ("38", "39", range(14, 20)),  # Diners Club
)
_MIN_CARD_GROUP = 3  # in a separated number every group has at least this many digits ("4111 1111 ...")
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    total = sum(int(d) for d in digits[-1::-2]) + sum(_LUHN_DOUBLED[int(d)] for d in digits[-2::-2])
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """True if ``digits`` (digits only) has a known issuer prefix and length and passes the Luhn check."""
    n = len(digits)
    return any(
        n in lengths and lo <= digits[: len(lo)] <= hi for lo, hi, lengths in _CARD_IINS
    ) and _luhn_ok(digits)


def _card_spans(groups: list[re.Match]) -> list[tuple[int, int]]:
    """Character spans of the card numbers in a run of digit groups, left to right, longest first."""
    spans, i = [], 0
    while i < len(groups):
        windows, digits = [], ""  # (last group, digits) of the windows starting at group i, shortest first
        for j in range(i, len(groups)):
            if j > i and min(len(groups[i].group()), len(groups[j].group())) < _MIN_CARD_GROUP:
                break
            digits += groups[j].group()
            if len(digits) > _MAX_CARD_DIGITS:
                break
            windows.append((j, digits))
        for j, digits in reversed(windows):
            if is_card_number(digits):
                spans.append((groups[i].start(), groups[j].end()))
                i = j
                break
        i += 1
    return spans


class PIIMasker:
    """Replaces emails, IPv4 addresses, card numbers and SSNs with fixed placeholders.

    Pass a ``collections.Counter`` as ``stats`` to get the number of masked items per kind
    (keys ``email``, ``credit_card``, ``ssn``, ``ip``) added to it.
    """

    def mask(self, text: str, stats: Counter | None = None) -> str:
        """Mask one line of text."""
        return _mask(text, Counter() if stats is None else stats, email="@" in text)

    def mask_array(self, arr: pa.Array | pa.ChunkedArray, stats: Counter | None = None) -> pa.Array:
        """Mask a string column; nulls stay null. Same result as ``mask`` on each row."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        candidates = pc.fill_null(pc.match_substring_regex(arr, _ANY_KIND_FILTER), False)
        subset = arr.filter(candidates)
        if not len(subset):
            return arr
        counts = Counter() if stats is None else stats
        subset = _mask_re2(EMAIL, subset, counts)
        # Cards and SSNs need Python (Luhn, SSN rules): only on the rows their filters let through.
        digits = pc.or_(pc.match_substring_regex(subset, _KIND_FILTERS[CREDIT_CARD]),
                        pc.match_substring_regex(subset, _KIND_FILTERS[SSN]))
        if pc.any(digits).as_py():
            rows = subset.filter(digits)
            flags = [pc.match_substring_regex(rows, _KIND_FILTERS[kind]).to_pylist() for kind in (CREDIT_CARD, SSN)]
            masked = [_mask(row, counts, email=False, card=c, ssn=s, ip=False)
                      for row, c, s in zip(rows.to_pylist(), *flags)]
            subset = pc.replace_with_mask(subset, digits, pa.array(masked, type=arr.type))
        subset = _mask_re2(IP, subset, counts)
        return pc.replace_with_mask(arr, candidates, subset)


def _mask_re2(kind: str, texts: pa.Array, counts: Counter) -> pa.Array:
    """Mask one kind in a whole column with its RE2 pattern (see ``_RE2_KINDS``)."""
    pattern = _RE2_KINDS[kind]
    found = pc.count_substring_regex(texts, pattern)
    if not pc.any(pc.greater(found, 0)).as_py():
        return texts
    exact = pc.match_substring_regex(texts, _ADJACENT[kind])
    counts[kind] += pc.sum(pc.filter(found, pc.invert(exact))).as_py() or 0
    out = pc.replace_substring_regex(texts, pattern, rf"\1{PLACEHOLDERS[kind]}\3")
    if pc.any(exact).as_py():
        rows = [_replace(kind, _EXACT[kind], text, counts) for text in pc.filter(texts, exact).to_pylist()]
        out = pc.replace_with_mask(out, exact, pa.array(rows, type=out.type))
    return out


def _mask(text: str, counts: Counter, *, email=True, card=True, ssn=True, ip=True) -> str:
    """Apply the patterns in a fixed order (emails first: they may hold digits); skip kinds ruled out by a filter."""
    if email:
        text = _replace(EMAIL, _EMAIL_RE, text, counts)
    if card:
        text = _DIGIT_RUN_RE.sub(lambda m: _mask_cards(m.group(), counts), text)
    if ssn:
        text = _replace(SSN, _SSN_RE, text, counts)
    if ip:
        text = _replace(IP, _IPV4_RE, text, counts)
    return text


def _replace(kind: str, pattern: re.Pattern, text: str, counts: Counter) -> str:
    text, n = pattern.subn(PLACEHOLDERS[kind], text)
    if n:
        counts[kind] += n
    return text


def _mask_cards(run: str, counts: Counter) -> str:
    spans = _card_spans(list(_DIGIT_GROUP_RE.finditer(run)))
    for start, end in reversed(spans):
        run = run[:start] + PLACEHOLDERS[CREDIT_CARD] + run[end:]
    if spans:
        counts[CREDIT_CARD] += len(spans)
    return run
