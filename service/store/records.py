"""Converting between a job record (the dict the API answers) and its row: timestamps, cursors."""
from __future__ import annotations

import base64
import datetime as dt
import json


class BadCursor(ValueError):
    """A `cursor` this service did not hand out (422)."""


def parse_time(text: str | None) -> dt.datetime | None:
    """A record's ISO 8601 timestamp as an aware datetime (None stays None)."""
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


def show_time(value: dt.datetime | None) -> str | None:
    """A datetime as records show it: UTC, ISO 8601, milliseconds (protocol.now()'s form)."""
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def cursor_of(created: dt.datetime, key: str) -> str:
    """An opaque cursor after the item (created, key) in newest-first order."""
    raw = json.dumps([created.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def after(cursor: str) -> tuple[dt.datetime, str]:
    """The (created, key) a cursor names; BadCursor for anything else."""
    try:
        created, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return dt.datetime.fromisoformat(created).astimezone(dt.timezone.utc), str(key)
    except (ValueError, TypeError):
        raise BadCursor(f"cursor: {cursor[:40]!r} is not a cursor this service handed out (use next_cursor)") from None
