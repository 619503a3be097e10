"""Incremental cursors, compared by what they mean: instants as instants, numbers as numbers.

Text order gets cursors wrong: `10:00:00.250Z` sorts before `10:00:00Z`, an offset such as
`+02:00` is ignored, and "1000" sorts before "999". Each value is turned into a key instead:

- int, float and Decimal are numbers; so are strings of digits ("1000") and decimal
  strings ("-12.5", "1e3"), compared exactly;
- other strings are ISO-8601 times (`datetime.fromisoformat`: `Z` or an offset, `T` or a
  space, fractional seconds of any precision, a date alone) or, failing that, RFC 2822
  (`Tue, 05 Jan 2026 10:00:00 GMT`);
- datetime and date objects are taken as they are.

Times with an offset compare as instants. Times without one compare among themselves, and
mixing the two is an error: nobody can say which is later. A date alone is midnight, in
UTC among times with an offset. Anything else (true/false, "yesterday", a number among
timestamps) raises IncrementalError: a record is never dropped, nor a cursor moved, on a
guess. The cursor keeps the value as the API wrote it, so it goes back in the API's format.

A read's cursor never passes its signpost (`CursorTracker.set_signpost`): the moment the
read began, less the resource's `incremental.lag`. A record changed after its page was
read has a later time than that; had a later record moved the cursor past it, the next
read would never ask for it again. Values at or past the signpost are read and kept but
do not move the cursor, so the next read starts before them. Only times with a UTC offset
(and dates alone) are held to it: a time without an offset, or a number, says nothing
that can be put beside a clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from interlink.errors import IncrementalError

from ._api_clock import stored_time
from ._page import Record
from ._selectors import _DOTTED, MISSING, compile_selector

__all__ = ["READ_FIELDS", "CursorTracker", "cursor_key", "higher_cursor"]

READ_FIELDS = ("signpost", "seen_to")
"""What a checkpoint keeps of the incremental read (`CursorTracker.checkpoint_fields`)."""

_FUTURE = timedelta(days=1)
"""How far past its start a read must see a value for a warning (records dated ahead)."""

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Python keeps microseconds; digits past the sixth are kept beside the datetime.
_FINE_FRACTION = re.compile(r"[.,]\d{6}(\d+)")
_EXTRA_DIGITS = 18


class _Unreadable(ValueError):
    """A value that is neither a time nor a number."""


class _Instant(datetime):
    """A datetime that also knows digits past the microsecond, or that it was a date alone.

    Only such rare values are built as `_Instant`; every other time stays a plain datetime,
    whose comparisons run in C. Python gives a subclass's reflected comparison priority, so
    `plain < fine` comes here too.
    """

    extra: int
    date_only: bool

    def _pair(self, other: datetime) -> tuple[datetime, int]:
        plain = datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
            tzinfo=self.tzinfo,
        )
        if self.date_only and other.tzinfo is not None:
            plain = plain.replace(tzinfo=UTC)
        return plain, self.extra

    def _pairs(self, other: Any) -> tuple[tuple[datetime, int], tuple[datetime, int]] | None:
        if not isinstance(other, datetime):
            return None
        theirs = other._pair(self) if isinstance(other, _Instant) else (other, 0)
        return self._pair(other), theirs

    def __lt__(self, other: Any) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] < pairs[1]

    def __le__(self, other: Any) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] <= pairs[1]

    def __gt__(self, other: Any) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] > pairs[1]

    def __ge__(self, other: Any) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] >= pairs[1]

    def __eq__(self, other: object) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] == pairs[1]

    def __ne__(self, other: object) -> bool:
        pairs = self._pairs(other)
        return NotImplemented if pairs is None else pairs[0] != pairs[1]

    __hash__ = datetime.__hash__


def _instant(moment: datetime, *, extra: int = 0, date_only: bool = False) -> _Instant:
    fine = _Instant(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=moment.tzinfo,
    )
    fine.extra = extra
    fine.date_only = date_only
    return fine


def _text_key(text: str) -> Any:
    if len(text) >= 10 and text[4] == "-":
        pass  # YYYY-MM-DD...: straight to the time parser
    elif text.isascii() and text.isdigit():
        return int(text)
    elif _NUMBER.fullmatch(text):
        return Decimal(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise _Unreadable(text) from None
        return moment
    if len(text) > 26:
        fine = _FINE_FRACTION.search(text)
        if fine is not None:
            digits = fine.group(1)[:_EXTRA_DIGITS].ljust(_EXTRA_DIGITS, "0")
            return _instant(moment, extra=int(digits))
    if moment.tzinfo is None and ":" not in text and len(text) <= 10:
        return _instant(moment, date_only=True)
    return moment


def cursor_key(value: Any) -> Any:
    """The typed, comparable form of an incremental value (ValueError when it has none).

    Keys of one kind compare with `<`; keys of different kinds (a number and a time, a time
    with an offset and one without) raise TypeError when compared.
    """
    # It runs once per record: the usual ISO-8601 time (neither a date alone nor finer than
    # microseconds) goes straight to the C parser.
    if type(value) is str and 10 < len(value) < 27 and value[4] == "-":
        try:
            return _fromisoformat(value)
        except ValueError:
            pass
    return _key(value)


_fromisoformat = datetime.fromisoformat


def _key(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _text_key(value)
    if kind is int:
        return value
    if kind is float:
        if value != value:  # NaN compares with nothing
            raise _Unreadable(value)
        return value
    if kind is bool:
        raise _Unreadable(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return _instant(datetime(value.year, value.month, value.day), date_only=True)
    if isinstance(value, int | Decimal):
        return value
    raise _Unreadable(value)


def _on_a_clock(key: Any) -> bool:
    """Whether a cursor key is a moment a clock can be put beside: a time with a UTC
    offset, or a date alone (midnight UTC)."""
    if not isinstance(key, datetime):
        return False
    return key.tzinfo is not None or (isinstance(key, _Instant) and key.date_only)


def _kind(key: Any) -> str:
    if isinstance(key, datetime):
        if isinstance(key, _Instant) and key.date_only:
            return "a date"
        return "a time with a UTC offset" if key.tzinfo is not None else "a time without offset"
    return "a number"


def _compatible(kind: str, other: str) -> bool:
    if kind == other:
        return True
    # A date alone is midnight: it compares with times, with an offset or without.
    return "a date" in (kind, other) and "a number" not in (kind, other)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def higher_cursor(a: Any, b: Any, *, field: str = "the incremental field") -> Any:
    """The later of two cursor values (None counts as nothing), as it was written."""
    if a is None:
        return b
    if b is None:
        return a
    try:
        return b if cursor_key(b) > cursor_key(a) else a
    except (ValueError, TypeError):
        raise IncrementalError(
            f"{field}: cannot compare the cursor values {_show(a)} and {_show(b)}; "
            "they must be times of one kind (all with a UTC offset, or all without) or numbers"
        ) from None


class CursorTracker:
    """Follows the highest value of an incremental field (`updated_at`) across records.

    Values are compared typed (see the module docstring). With `keep_from` set, records
    below that value are dropped (client-side filtering for APIs that cannot filter). A
    record without the field at all is an IncrementalError (most likely a typo in
    `incremental.field`); a null value is fine and the record is kept.
    """

    def __init__(
        self,
        field: str,
        start: Any = None,
        *,
        keep_from: Any = None,
        primary_key: str = "id",
        lag: float = 0.0,
    ) -> None:
        self.field = field
        self.value = start
        """The highest value seen so far before the signpost, as the API wrote it: the
        cursor to read from next time."""
        self.seen_to = start
        """The highest value seen so far, past the signpost too, as the API wrote it."""
        self.signpost: datetime | None = None
        """The read's start less `lag` (UTC), once the first answer set it."""
        self.lag = lag
        self.keep_from = keep_from
        self.primary_key = primary_key
        self._select = compile_selector(field)
        # A JMESPath selector cannot tell a null from an absent key: only dotted paths check.
        self._dotted = bool(_DOTTED.match(field))
        self._best = self._start_key(start, "the cursor to start from")
        self._seen = self._best
        self._observed: Any = None  # the highest value the pages brought (not `start`)
        self._keep = self._start_key(keep_from, "the cursor to keep records from")

    @property
    def began(self) -> datetime | None:
        """When the read began, as its signpost says (None until it is set)."""
        if self.signpost is None:
            return None
        return self.signpost + timedelta(seconds=self.lag)

    def set_signpost(self, began: datetime) -> None:
        """The read began at `began` (an aware time), or earlier: values from `began - lag`
        on do not move the cursor. Only ever lowers a signpost already set (a resumed
        read's, a child read's preset one)."""
        signpost = began.astimezone(UTC) - timedelta(seconds=self.lag)
        if self.signpost is None or signpost < self.signpost:
            self.signpost = signpost

    def resume_from(self, checkpoint: dict[str, Any]) -> None:
        """Take the signpost and the highest value seen from the checkpoint of the read
        this one resumes (`checkpoint_fields`): a resumed read is the same read."""
        moment = stored_time(checkpoint.get("signpost"))
        if moment is not None:
            self.signpost = moment
        seen = checkpoint.get("seen_to")
        if seen is not None:
            try:
                key = cursor_key(seen)
                if self._seen is None or key > self._seen:
                    self._seen, self.seen_to = key, seen
            except (ValueError, TypeError):
                return  # not a value of this field: what the pages bring will do

    def held_back_note(self) -> str | None:
        """A warning when the read saw values more than a day past its signpost (records
        dated in the future): the cursor stays before them, so every read meets them again."""
        signpost, seen = self.signpost, self._observed
        if signpost is None or seen is None or not _on_a_clock(seen):
            return None
        if not seen > signpost + timedelta(seconds=self.lag) + _FUTURE:
            return None
        return (
            f"incremental.field {self.field!r}: records are dated after this read began "
            f"(the latest {_show(self.seen_to)}); the cursor stays before them, so each "
            "read reads them again"
        )

    def checkpoint_fields(self) -> dict[str, Any]:
        """What a checkpoint keeps of this read for `resume_from`."""
        if self.signpost is None:
            return {}
        return {"signpost": self.signpost.isoformat(), "seen_to": self.seen_to}

    def _start_key(self, value: Any, what: str) -> Any:
        if value is None:
            return None
        try:
            return cursor_key(value)
        except ValueError:
            raise IncrementalError(
                f"incremental.field {self.field!r}: {what} is {_show(value)}, which is "
                "neither an ISO-8601 time nor a number"
            ) from None

    def _where(self, record: Any, page: int | None) -> str:
        key = record.get(self.primary_key, MISSING) if isinstance(record, dict) else MISSING
        who = "a record" if key is MISSING else f"record {self.primary_key}={_show(key)}"
        return who if page is None else f"{who} on page {page}"

    def _absent(self, record: Any) -> bool:
        """Whether the field's path is absent, not merely null (or under a null parent)."""
        if not self._dotted:
            return False
        node = record
        for part in self.field.split("."):
            if node is None:
                return False
            if not isinstance(node, dict) or part not in node:
                return True
            node = node[part]
        return False

    def _missing(self, records: list[Record], values: list[Any], page: int | None) -> None:
        for record, value in zip(records, values, strict=True):
            if value is MISSING and self._absent(record):
                keys = ", ".join(list(record)[:10]) if isinstance(record, dict) else "no fields"
                raise IncrementalError(
                    f"incremental.field {self.field!r} is not in {self._where(record, page)} "
                    f"(it has: {keys}); check `incremental.field` (a null value is fine, an "
                    "absent field is not)"
                )

    def _unreadable(self, records: list[Record], values: list[Any], page: int | None) -> None:
        for record, value in zip(records, values, strict=True):
            if value is None or value is MISSING:
                continue
            try:
                cursor_key(value)
            except ValueError:
                raise IncrementalError(
                    f"incremental.field {self.field!r}: {self._where(record, page)} has "
                    f"{_show(value)}, which is neither an ISO-8601 time nor a number"
                ) from None

    def _mixed(self, records: list[Record], values: list[Any], page: int | None) -> None:
        """Name two values that cannot be compared (different kinds)."""
        seen: list[tuple[str, str]] = []
        if self._best is not None:
            seen.append((_kind(self._best), f"the cursor {_show(self.value)}"))
        if self._keep is not None:
            seen.append((_kind(self._keep), f"the cursor {_show(self.keep_from)}"))
        for record, value in zip(records, values, strict=True):
            if value is None or value is MISSING:
                continue
            kind = _kind(cursor_key(value))
            for other, where in seen:
                if not _compatible(kind, other):
                    raise IncrementalError(
                        f"incremental.field {self.field!r}: cannot compare {where} ({other}) "
                        f"with {_show(value)} of {self._where(record, page)} ({kind}); the "
                        "values must be times of one kind (all with a UTC offset, or all "
                        "without) or numbers"
                    )
            if all(kind != other for other, _ in seen):
                seen.append((kind, f"{_show(value)} of {self._where(record, page)}"))
        raise IncrementalError(  # pragma: no cover - a TypeError always has a culprit
            f"incremental.field {self.field!r}: values of different kinds on page {page}"
        )

    def observe(self, records: list[Record], page: int | None = None) -> list[Record]:
        """Take a page's records: move the cursor, return the records to keep."""
        select = self._select
        values = [select(record) for record in records]
        if MISSING in values:
            self._missing(records, values, page)
        key = cursor_key
        try:
            keys = [None if v is None or v is MISSING else key(v) for v in values]
        except ValueError:
            self._unreadable(records, values, page)
            raise  # pragma: no cover - _unreadable raised
        try:
            present = [key for key in keys if key is not None]
            if present:
                top: Any = max(present)
                if self._observed is None or top > self._observed:
                    self._observed = top
                seen = self._seen
                if seen is None or top > seen:
                    self._seen = top
                    self.seen_to = values[keys.index(top)]
                signpost = self.signpost
                if signpost is not None and _on_a_clock(top) and not top < signpost:
                    below = (k for k in present if _on_a_clock(k) and k < signpost)
                    top = max(below, default=None)
                best = self._best
                if top is not None and (best is None or top > best):
                    self._best = top
                    self.value = values[keys.index(top)]
            keep = self._keep
            if keep is None:
                return records
            return [r for r, k in zip(records, keys, strict=True) if k is None or not k < keep]
        except TypeError:
            self._mixed(records, values, page)
            raise  # pragma: no cover - _mixed raised
