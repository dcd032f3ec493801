"""Mask PII (emails, IPv4 and IPv6 addresses, payment card numbers, US SSNs) in log text before it is stored.

Two modes (``LOGPILOT_PII_MODE``, see ``pseudonym.py``): ``redact`` writes a fixed placeholder per kind
(``<EMAIL_REDACTED>``), ``pseudonymize`` a keyed token per value (``<EMAIL:3f9a1c2b7d0e>``).

``PIIMasker.mask`` handles one line; ``PIIMasker.mask_array`` handles an Arrow column: an RE2 prefilter picks
the rows that may hold PII; in ``redact`` mode plain ASCII emails and IPv4 addresses are masked there with RE2
(``_RE2_KINDS``), and only rows that need the exact rules go through Python: cards (Luhn), SSNs, IPv6, emails
that are not plain ASCII ``a@b.tld`` (IDN, full-width ``＠``, ``%40``, a host without dots), IPv4 look-alikes
after a version marker (``Chrome/120.0.0.0``, ``version 0.0.0.6``), and items that directly follow each other.
In ``pseudonymize`` mode the rows that this redaction changes go through Python (a token per value). Both paths
give identical output row by row, in the same order of kinds.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections import Counter
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.privacy.pseudonym import KEY_ENV, KEY_FILE_ENV, PSEUDONYMIZE, TOKEN_HEX, PseudonymKeys, pii_mode

EMAIL, CREDIT_CARD, SSN, IPV6, IP = "email", "credit_card", "ssn", "ipv6", "ip"
PLACEHOLDERS = {
    EMAIL: "<EMAIL_REDACTED>",
    CREDIT_CARD: "<CC_REDACTED>",
    SSN: "<SSN_REDACTED>",
    IPV6: "<IPV6_REDACTED>",
    IP: "<IP_REDACTED>",
}
#: What the masker writes in either mode (RE2 and Python): mining treats it as a variable.
MASKED_VALUE = rf"<(?:EMAIL|CC|SSN|IPV6|IP)(?:_REDACTED|:[0-9a-f]{{{TOKEN_HEX}}})>"

# -- exact (Python) patterns -------------------------------------------------------------------------------------
# Emails, Unicode-aware: IDN local parts and domains, "@", full-width "＠" or URL-encoded "%40", a dotted domain
# with a letter TLD or a single host label ("ops@mailhost"; not a Java identity hash such as "Foo@1a2b3c" nor an
# image digest "app@sha256:..."). U+FFFD counts as a letter: undecodable bytes arrive replacement-decoded.
_LOCAL = r"[\w.%+\-\ufffd]"
_LABEL = r"(?:[^\W_]|[\-\ufffd])"
_EMAIL_RE = re.compile(
    rf"(?<!{_LOCAL}){_LOCAL}+(?:@|\uff20|%40)(?:"
    rf"[^\W_]{_LABEL}*(?:\.{_LABEL}+)*\.[^\W\d_]{{2,}}(?!{_LABEL})"
    rf"|(?![0-9a-fA-F]*\d[0-9a-fA-F]*(?!{_LABEL}))[^\W\d_]{_LABEL}*(?![\w\-]|\.\w|:[0-9a-fA-F]{{16}}))"
)
# A run of 13+ digits in groups joined by single spaces or dashes; card numbers are picked out of it in Python.
_DIGIT_RUN_RE = re.compile(r"(?<![\w-])(?<!\d\.)(?=\d(?:[ -]?\d){12})\d+(?:[ -]\d+)*(?!\w|\.\d)", re.ASCII)
_DIGIT_GROUP_RE = re.compile(r"\d+", re.ASCII)
_SSN_AREA, _SSN_GROUP, _SSN_SERIAL = r"(?!000|666|9)\d{3}", r"(?!00)\d{2}", r"(?!0000)\d{4}"
_SSN_RES = (  # dashed anywhere; dashed, spaced or bare right after an "SSN" / "social security (number)" label
    re.compile(rf"(?<![\w-]){_SSN_AREA}-{_SSN_GROUP}-{_SSN_SERIAL}(?![\w-])", re.ASCII),
    re.compile(rf"(?<![a-z])(?:ssn|social[\s_-]?security)(?:[\s_-]?(?:number|num|no|nr))?(?![a-z])"
               rf"[\s:=#\"'()\[\].-]{{0,5}}({_SSN_AREA}([ -]?){_SSN_GROUP}\2{_SSN_SERIAL})(?![\w-])",
               re.ASCII | re.IGNORECASE),
)
_IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?"
                      r"(?![\w:]|\.\w)", re.ASCII)
_OCTET = r"(?:25[0-5]|2[0-4]\d|[01]?\d?\d)"  # leading zeros included: 010.020.030.040
_IPV4_RE = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\w)", re.ASCII)
# A version, not an address, when it directly follows a user-agent product token ("Chrome/", "curl/"; not any
# "name/": Java prints addresses as "host/10.0.0.1") or a version word ("wcp.dll version 0.0.0.6").
_UA_PRODUCTS = ("mozilla|applewebkit|webkit|chrome|chromium|headlesschrome|crios|firefox|fxios|safari|version|edge?"
                "|edga|edgios|opr|opera|yabrowser|samsungbrowser|ucbrowser|brave|vivaldi|gecko|trident|mobile|curl"
                "|wget|okhttp|python-requests|go-http-client|java|dalvik|cfnetwork|darwin|electron|postmanruntime|node")
_VERSION_WORDS = "version|ver|rev|revision|build|firmware"
_VERSION_BEFORE = re.compile(rf"(?:(?<![\w.+-])(?:{_UA_PRODUCTS})/|(?<![A-Za-z])(?:{_VERSION_WORDS})[\s:=]{{0,3}})\Z",
                             re.ASCII | re.IGNORECASE)
_VERSION_WINDOW = 80

# RE2 (pyarrow.compute) filters, one per kind, in masking order. Each is looser than its exact pattern above:
# it matches every line that pattern could change.
_NON_ASCII = r"\x{80}-\x{10ffff}"
_V6_START = r"(?:^|[^\w:])"
_KIND_FILTERS = {
    EMAIL: rf"[\w.%+{_NON_ASCII}-](?:@|\x{{ff20}}|%40)[A-Za-z0-9{_NON_ASCII}]",
    # 13+ digits from a group start with an issuer's first digit, inside a digit run that starts after neither a
    # word character nor a dash (as ``_DIGIT_RUN_RE``): "blk_-6952295868487656571" is no candidate
    CREDIT_CARD: r"(?:^|[^\w-])(?:\d+[ -])*[2-6](?:[ -]?\d){12}",
    SSN: r"\d{3}-\d{2}-\d{4}|(?i:ssn|social[\s_-]?security)",
    IPV6: rf"{_V6_START}(?:[0-9A-Fa-f]{{0,4}}:){{0,6}}[0-9A-Fa-f]{{0,4}}::"
          rf"|{_V6_START}(?:[0-9A-Fa-f]{{1,4}}:){{6}}(?:[0-9A-Fa-f]{{1,4}}:[0-9A-Fa-f]|\d)",
    IP: r"\d\.\d{1,3}\.\d{1,3}\.\d",
}
_ANY_KIND_FILTER = "|".join(_KIND_FILTERS.values())
_PYTHON_KINDS = (CREDIT_CARD, SSN, IPV6)

# The email and IPv4 patterns for RE2, which has no look-arounds: the character before and the one(s) after a
# match are consumed as groups 1 and 3 and written back. They cover plain ASCII emails with a dotted domain and
# IPv4 addresses; rows that need more (``_EXACT_ROWS``, a superset of those rows) are masked from their text by
# the exact Python pattern instead: items directly after another one's consumed character, and the cases above.
_W = "A-Za-z0-9_"
_EMAIL_CORE = rf"[{_W}.%+-]+@[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}"
_IP_CORE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_RE2_KINDS = {
    EMAIL: rf"(^|[^{_W}.%+-])({_EMAIL_CORE})([^A-Za-z0-9-]|$)",
    IP: rf"(^|[^{_W}.])({_IP_CORE})(\.[^{_W}]|\.$|[^{_W}.]|$)",
}
_EXACT_ROWS = {
    EMAIL: "|".join((
        rf"{_EMAIL_CORE}[^A-Za-z0-9-]{_EMAIL_CORE}",  # adjacent
        r"\x{ff20}|%40",
        rf"[{_NON_ASCII}][{_W}.%+-]*@|@[{_W}.-]*[{_NON_ASCII}]",  # IDN
        rf"[{_W}.%+-]@[A-Za-z][A-Za-z0-9-]*(?:[^{_W}.-]|\.[^{_W}]|\.?$)",  # a host without dots
    )),
    IP: "|".join((
        rf"{_IP_CORE}(?:\.[^{_W}]|[^{_W}.]){_IP_CORE}",  # adjacent
        rf"(?i:{_UA_PRODUCTS})/\d|(?:^|[^A-Za-z])(?i:{_VERSION_WORDS})[\s:=]{{0,3}}\d",  # versions
    )),
}

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
    """Replaces emails, IP addresses, card numbers and SSNs with placeholders (``redact``) or keyed tokens
    (``pseudonymize``); ``mode`` defaults to ``LOGPILOT_PII_MODE``, ``keys`` to ``PseudonymKeys.load()``.

    Pass a ``collections.Counter`` as ``stats`` to get the number of masked items per kind
    (keys ``email``, ``credit_card``, ``ssn``, ``ipv6``, ``ip``) added to it.
    """

    def __init__(self, mode: str | None = None, keys: PseudonymKeys | None = None):
        self.mode = mode or pii_mode()
        self._token = None
        if self.mode == PSEUDONYMIZE:
            self._token = lru_cache(maxsize=1 << 16)((keys or PseudonymKeys.load()).token)

    def mask(self, text: str, stats: Counter | None = None) -> str:
        """Mask one line of text."""
        email = "@" in text or "\uff20" in text or "%40" in text
        return _mask(text, Counter() if stats is None else stats, self._token, email=email)

    def mask_array(self, arr: pa.Array | pa.ChunkedArray, stats: Counter | None = None) -> pa.Array:
        """Mask a string column; nulls stay null. Same result as ``mask`` on each row."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        candidates = pc.fill_null(pc.match_substring_regex(arr, _ANY_KIND_FILTER), False)
        subset = arr.filter(candidates)
        if not len(subset):
            return arr
        counts = Counter() if stats is None else stats
        if self._token is None:
            return pc.replace_with_mask(arr, candidates, _redact_column(subset, counts))
        # Pseudonyms: the rows that redaction changes are exactly the rows with PII; only they go through Python.
        changed = pc.fill_null(pc.not_equal(_redact_column(subset, Counter()), subset), False)
        rows = [self.mask(row, counts) for row in subset.filter(changed).to_pylist()]
        subset = pc.replace_with_mask(subset, changed, pa.array(rows, type=arr.type))
        return pc.replace_with_mask(arr, candidates, subset)

    def mask_distinct(self, arr: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Mask a column of few distinct values (sources, components) once per distinct value."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not len(arr):
            return arr
        encoded = pc.dictionary_encode(arr)
        return pc.take(self.mask_array(encoded.dictionary), encoded.indices)


@lru_cache(maxsize=8)
def _masker_for(mode: str, key: str | None, key_file: str | None) -> PIIMasker:
    return PIIMasker(mode)


def default_masker() -> PIIMasker:
    """A shared masker for the mode and key in force now (``LOGPILOT_PII_MODE``, the pseudonym key settings)."""
    return _masker_for(pii_mode(), os.environ.get(KEY_ENV), os.environ.get(KEY_FILE_ENV))


def _redact_column(subset: pa.Array, counts: Counter) -> pa.Array:
    """The redact path over candidate rows: RE2 for plain emails and IPv4, Python where the filters say so."""
    subset = _mask_re2(EMAIL, subset, counts)
    # Cards, SSNs and IPv6 need Python (Luhn, SSN rules, address checks): only on rows their filters pass.
    flags = [pc.match_substring_regex(subset, _KIND_FILTERS[kind]) for kind in _PYTHON_KINDS]
    python = pc.or_(pc.or_(flags[0], flags[1]), flags[2])
    if pc.any(python).as_py():
        rows = subset.filter(python)
        per_kind = [pc.filter(flag, python).to_pylist() for flag in flags]
        masked = [_mask(row, counts, None, email=False, card=c, ssn=s, ipv6=v, ip=False)
                  for row, c, s, v in zip(rows.to_pylist(), *per_kind)]
        subset = pc.replace_with_mask(subset, python, pa.array(masked, type=subset.type))
    return _mask_re2(IP, subset, counts)


def _mask_re2(kind: str, texts: pa.Array, counts: Counter) -> pa.Array:
    """Mask one kind in a whole column with its RE2 pattern (see ``_RE2_KINDS``)."""
    pattern = _RE2_KINDS[kind]
    found = pc.count_substring_regex(texts, pattern)
    exact = pc.match_substring_regex(texts, _EXACT_ROWS[kind])
    if not pc.any(pc.or_(pc.greater(found, 0), exact)).as_py():
        return texts
    counts[kind] += pc.sum(pc.filter(found, pc.invert(exact))).as_py() or 0
    out = pc.replace_substring_regex(texts, pattern, rf"\1{PLACEHOLDERS[kind]}\3")
    if pc.any(exact).as_py():
        replace = _replace_ip if kind == IP else _replace_email
        rows = [replace(text, counts, None) for text in pc.filter(texts, exact).to_pylist()]
        out = pc.replace_with_mask(out, exact, pa.array(rows, type=out.type))
    return out


def _mask(text: str, counts: Counter, token, *, email=True, card=True, ssn=True, ipv6=True, ip=True) -> str:
    """Apply the patterns in a fixed order (emails first: they may hold digits; IPv6 before IPv4: it may end in
    one); skip kinds ruled out by a filter or by a character they need. ``token(kind, value)`` gives pseudonyms;
    None redacts."""
    if email:
        text = _replace_email(text, counts, token)
    if card:
        text = _DIGIT_RUN_RE.sub(lambda m: _mask_cards(m.group(), counts, token), text)
    if ssn:
        text = _replace_ssn(text, counts, token)
    if ipv6 and text.count(":") >= 2:
        text = _replace_checked(IPV6, _IPV6_RE, text, counts, token, _is_ipv6)
    if ip and text.count(".") >= 3:
        text = _replace_ip(text, counts, token)
    return text


def _replace(kind: str, pattern: re.Pattern, text: str, counts: Counter, token) -> str:
    repl = PLACEHOLDERS[kind] if token is None else (lambda m: token(kind, m.group()))
    text, n = pattern.subn(repl, text)
    if n:
        counts[kind] += n
    return text


def _replace_checked(kind: str, pattern: re.Pattern, text: str, counts: Counter, token, check) -> str:
    """Replace the matches for which ``check(match)`` holds."""
    def repl(m: re.Match) -> str:
        if not check(m):
            return m.group()
        counts[kind] += 1
        return PLACEHOLDERS[kind] if token is None else token(kind, m.group())
    return pattern.sub(repl, text)


def _replace_email(text: str, counts: Counter, token) -> str:
    return _replace(EMAIL, _EMAIL_RE, text, counts, token)


def _replace_ip(text: str, counts: Counter, token) -> str:
    return _replace_checked(IP, _IPV4_RE, text, counts, token, _not_a_version)


def _not_a_version(m: re.Match) -> bool:
    start = m.start()
    return not (start and _VERSION_BEFORE.search(m.string, max(0, start - _VERSION_WINDOW), start))


def _is_ipv6(m: re.Match) -> bool:
    """A real address with a digit in it ("fe80::1", not "dead::beef" or a bare "::")."""
    value = m.group()
    if not any(ch.isdigit() for ch in value):
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _replace_ssn(text: str, counts: Counter, token) -> str:
    if "-" in text:
        text = _replace(SSN, _SSN_RES[0], text, counts, token)
    lower = text.lower()
    if "ssn" not in lower and "social" not in lower:
        return text

    def labelled(m: re.Match) -> str:
        counts[SSN] += 1
        value = m.group(1)
        masked = PLACEHOLDERS[SSN] if token is None else token(SSN, value)
        return m.group()[: m.start(1) - m.start()] + masked
    return _SSN_RES[1].sub(labelled, text)


def _mask_cards(run: str, counts: Counter, token) -> str:
    spans = _card_spans(list(_DIGIT_GROUP_RE.finditer(run)))
    for start, end in reversed(spans):
        value = run[start:end]
        run = run[:start] + (PLACEHOLDERS[CREDIT_CARD] if token is None else token(CREDIT_CARD, value)) + run[end:]
    if spans:
        counts[CREDIT_CARD] += len(spans)
    return run
