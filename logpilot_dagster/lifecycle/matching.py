"""What a right-to-be-forgotten request matches, and how a match is re-masked.

A request names one subject: ``email`` (its pseudonym tokens under every key, and the literal address in case it
leaked), ``value`` (any literal, plus its tokens when it is itself a PII value), ``subject_id`` (a whole-word
identifier) or a ``service`` time range (rows deleted, nothing matched). :class:`Matcher` turns it into
needles, each with an exact Python pattern (replacement, byte checks) and a looser RE2 pattern (DuckDB and
``pyarrow.compute`` prefilters: every text the exact pattern changes also matches it).

A **subject id** is a run of characters that is neither preceded nor followed by an ASCII letter, digit, ``_`` or
``-``: ``u-4821`` matches in ``user=u-4821;`` and ``"u-4821"``, not in ``u-48210`` or ``xu-4821``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.privacy.pii import PLACEHOLDERS, PIIMasker
from logpilot_dagster.privacy.pseudonym import PSEUDONYMIZE, PseudonymKeys, normalise, pii_mode

PURGED = "<PURGED>"
MIN_LITERAL = 4
_ID_CHARS = r"A-Za-z0-9_\-"
_EMAIL_BEFORE, _EMAIL_AFTER = r"A-Za-z0-9_.%+\-", r"A-Za-z0-9_\-"


@dataclass(frozen=True)
class PurgeRequest:
    """Exactly one of ``email``, ``value``, ``subject_id`` or ``service`` (with ``start``/``end``, UTC,
    half-open) is set."""

    email: str | None = None
    value: str | None = None
    subject_id: str | None = None
    service: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("email", "value", "subject_id", "service") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of --email, --value, --subject-id or --service")
        if self.service and not (self.start and self.end and self.start < self.end):
            raise ValueError("--service needs --from and --to with from < to")
        literal = self.value or self.subject_id
        if literal is not None and len(literal.strip()) < MIN_LITERAL:
            raise ValueError(f"a value or subject id needs at least {MIN_LITERAL} characters (a shorter one "
                             "would re-mask text everywhere); try --dry-run first")
        if self.subject_id and re.search(f"[^{_ID_CHARS}.:@/]", self.subject_id):
            raise ValueError("a subject id is one word: letters, digits and _ - . : @ / only")

    @property
    def kind(self) -> str:
        return next(k for k in ("email", "value", "subject_id", "service") if getattr(self, k))

    @property
    def subject(self) -> str:
        """The requested value (never stored: see :meth:`fingerprint`)."""
        if self.service:
            return f"{self.service}|{self.start.isoformat()}|{self.end.isoformat()}"
        return getattr(self, self.kind)

    def fingerprint(self, keys: PseudonymKeys) -> str:
        """A keyed hash of the request under the current pseudonym key: receipts can be matched to a later
        request for the same subject, but nobody without the key can test a guess against them."""
        subject = normalise("email", self.subject) if self.email else self.subject
        return hmac.new(keys.keys[0], f"purge|{self.kind}|{subject}".encode(), hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True)
class Needle:
    label: str  # 'token', 'literal' or 'subject_id' (never the value)
    exact: re.Pattern
    re2: str
    placeholder: str
    core: str  # lower-case text every match contains (a cheap prefilter before the regex)


def _bounded(escaped: str, before: str, after: str, flags: str = "") -> tuple[str, str]:
    """(Python pattern with look-arounds, RE2 pattern with the context consumed) for a bounded literal."""
    python = f"(?<![{before}]){escaped}(?![{after}])"
    re2 = f"{flags}(^|[^{before}]){escaped}([^{after}]|$)"
    return python, re2


_LABELS = {"EMAIL": "email", "CC": "credit_card", "SSN": "ssn", "IP": "ip", "IPV6": "ipv6"}
_WHOLE_ITEM = re.compile(r"<([A-Z0-9]+)(?:_REDACTED|:[0-9a-f]+)>")


def pii_kind(value: str) -> str | None:
    """The masker's kind when ``value`` as a whole is one PII item (its tokens are then searched too)."""
    item = _WHOLE_ITEM.fullmatch(PIIMasker().mask(value.strip()))
    return _LABELS.get(item.group(1)) if item else None


@dataclass
class Matcher:
    needles: list[Needle] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def for_request(cls, request: PurgeRequest, keys: PseudonymKeys | None) -> "Matcher":
        m = cls()
        if request.service:
            return m
        mode = pii_mode()
        if request.subject_id:
            python, re2 = _bounded(re.escape(request.subject_id), _ID_CHARS, _ID_CHARS)
            m._add("subject_id", python, re2, PURGED, request.subject_id)
            return m
        literal = request.email or request.value
        kind = "email" if request.email else pii_kind(literal)
        if request.email:
            if pii_kind(normalise("email", literal)) != "email":
                raise ValueError("--email needs an email address")
            address = normalise("email", literal)
            for spelling in (address, address.replace("@", "%40")):
                python, re2 = _bounded(re.escape(spelling), _EMAIL_BEFORE, _EMAIL_AFTER, "(?i)")
                m._add("literal", "(?i)" + python, re2, PLACEHOLDERS["email"], spelling)
        else:
            m._add("literal", re.escape(literal), re.escape(literal), PLACEHOLDERS.get(kind, PURGED), literal)
        if kind and keys is not None:
            for token in keys.tokens(kind, literal):
                m.tokens.append(token)
                m._add("token", re.escape(token), re.escape(token), PLACEHOLDERS[kind], token)
        if kind and mode != PSEUDONYMIZE:
            m.notes.append(f"LOGPILOT_PII_MODE={mode}: {kind} values are stored as {PLACEHOLDERS[kind]}, so "
                           "nothing stored links to this subject; scanned for the literal value (leaks, landing "
                           "zone) and for tokens from any earlier pseudonymize run")
        return m

    def _add(self, label: str, python: str, re2: str, placeholder: str, core: str) -> None:
        self.needles.append(Needle(label, re.compile(python), re2, placeholder, core.lower()))

    @property
    def empty(self) -> bool:
        return not self.needles

    @property
    def re2(self) -> str:
        """One RE2 prefilter for every needle (never matches when there are none)."""
        return "|".join(f"(?:{n.re2})" for n in self.needles) or r"[^\s\S]"

    def sql_where(self, columns: list[tuple[str, str]]) -> str:
        """A DuckDB condition: a (name, type) column, VARCHAR or VARCHAR[], holds a match. Takes the RE2
        prefilter as ``$pattern``; a substring test of the needles' cores runs first (cheaper than RE2)."""
        cores = " OR ".join("contains(lower(@), '" + n.core.replace("'", "''") + "')" for n in self.needles)
        conditions = []
        for name, kind in columns:
            if kind not in ("VARCHAR", "VARCHAR[]"):
                continue
            quoted = '"' + name.replace('"', '""') + '"'
            text = f"array_to_string({quoted}, chr(10))" if kind == "VARCHAR[]" else quoted
            conditions.append(f"(({cores.replace('lower(@)', f'lower({text})')}) AND regexp_matches({text}, $pattern))")
        return " OR ".join(conditions) if conditions and self.needles else "false"

    def found_in(self, text: str | None) -> bool:
        return bool(text) and any(n.exact.search(text) for n in self.needles)

    def replace(self, text: str | None) -> str | None:
        """``text`` with every match replaced by its placeholder."""
        if not text:
            return text
        for needle in self.needles:
            text = needle.exact.sub(needle.placeholder, text)
        return text

    def found_in_bytes(self, data: bytes) -> bool:
        """Raw bytes (any file): the needles' exact patterns over its UTF-8 (or replacement-decoded) text."""
        return self.found_in(data.decode("utf-8", errors="replace"))

    def mask_array(self, arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
        """A string or list<string> column with matches re-masked, and which rows changed (None: none)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            values, changed = self.mask_array(arr.flatten())
            if changed is None:
                return arr, None
            offsets = pc.subtract(arr.offsets, arr.offsets[0])
            rebuilt = type(arr).from_arrays(offsets, values, mask=arr.is_null())
            parents = pc.list_parent_indices(arr).filter(changed).to_pylist()
            rows = [False] * len(arr)
            for i in parents:
                rows[i] = True
            return rebuilt, pa.array(rows)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or self.empty:
            return arr, None
        hits = pc.fill_null(pc.match_substring_regex(arr, self.re2), False)
        if not pc.any(hits).as_py():
            return arr, None
        new = pc.replace_with_mask(arr, hits, pa.array([self.replace(t) for t in arr.filter(hits).to_pylist()],
                                                       type=arr.type))
        changed = pc.fill_null(pc.not_equal(arr, new), False)
        return (new, changed) if pc.any(changed).as_py() else (arr, None)

    def mask_table(self, table: pa.Table) -> tuple[pa.Table, int]:
        """Every text column of ``table`` re-masked; returns the new table and how many rows changed."""
        touched = None
        for i, name in enumerate(table.column_names):
            column, changed = self.mask_array(table.column(i))
            if changed is not None:
                table = table.set_column(i, table.schema.field(i), column)
                touched = changed if touched is None else pc.or_(touched, changed)
        return table, int(pc.sum(touched).as_py()) if touched is not None else 0
