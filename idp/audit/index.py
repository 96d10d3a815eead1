"""The lookup index: an embedded SQLite file derived from the trail's log files.

The index is built by whoever reads (``idp audit lookup``, ``/cloudtrail``), never by the
processes that write records: writers keep one append and one hash update per record, and
the index is a cache that can be deleted and rebuilt from the logs at any time.  Each
:meth:`AuditIndex.refresh` reads only the bytes appended to each log file since the last one
(an offset per file) and forgets events older than the retention (CloudTrail's event history
keeps 90 days).  Keys are the lookup attributes of CloudTrail's ``LookupEvents``
(``Username``, ``EventName``, ``EventSource``, ``ReadOnly``, ``AccessKeyId``,
``ResourceName``, ``ResourceType``, ``EventId``), each ``(kind, value, time)`` row indexed.
"""

from __future__ import annotations

import calendar
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ATTRIBUTES = ("Username", "EventName", "EventSource", "ReadOnly", "AccessKeyId",
              "ResourceName", "ResourceType", "EventId")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, t INTEGER NOT NULL,
                                   record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_t ON events (t, id);
CREATE TABLE IF NOT EXISTS attrs (kind TEXT NOT NULL, value TEXT NOT NULL, t INTEGER NOT NULL,
                                  event INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS attrs_kvt ON attrs (kind, value, t, event);
CREATE INDEX IF NOT EXISTS attrs_event ON attrs (event);
"""


def epoch(value: str) -> int:
    """``YYYY-MM-DDTHH:MM:SSZ`` → Unix time."""
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def username(record: Mapping[str, Any]) -> str:
    """CloudTrail's ``Username``: the user's name, the role session of an assumed role."""
    ident = record.get("userIdentity") or {}
    name = str(ident.get("userName") or "")
    if name.startswith("arn:") and ":assumed-role/" in name:
        return name.rsplit("/", 1)[-1]
    return name


def access_key_id(record: Mapping[str, Any]) -> str:
    """The access key that signed the request, else the one the event issued."""
    ident = record.get("userIdentity") or {}
    extra = record.get("additionalEventData") or {}
    return str(ident.get("accessKeyId") or (extra.get("accessKeyId")
                                            if isinstance(extra, Mapping) else "") or "")


def attributes(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(kind, value)`` pairs a record is found by."""
    pairs = [("EventName", str(record.get("eventName", ""))),
             ("EventSource", str(record.get("eventSource", ""))),
             ("ReadOnly", "true" if record.get("readOnly") else "false"),
             ("EventId", str(record.get("eventID", "")))]
    user = username(record)
    ident = record.get("userIdentity") or {}
    if user:
        pairs.append(("Username", user))
    full = str(ident.get("userName") or "")
    if full and full != user:
        pairs.append(("Username", full))
    akid = access_key_id(record)
    if akid:
        pairs.append(("AccessKeyId", akid))
    for res in record.get("resources") or []:
        if isinstance(res, Mapping) and res.get("ARN"):
            pairs.append(("ResourceName", str(res["ARN"])))
            if res.get("type"):
                pairs.append(("ResourceType", str(res["type"])))
    return pairs


@dataclass(frozen=True)
class Query:
    """What to look for: every ``(kind, value)`` of ``attributes`` must match (CloudTrail
    allows one; the CLI combines several), events in ``[start, end]``, newest first."""

    attributes: Sequence[tuple[str, str]] = ()
    start: float | None = None
    end: float | None = None
    limit: int = 50
    after: tuple[int, int] | None = None  # (time, id) of the last event of the previous page


class AuditIndex:
    """The index of one trail folder, in ``path`` (``<trail>/index.sqlite`` by default)."""

    def __init__(self, trail: Path, path: Path | None = None, *, retention_days: int = 90,
                 clock: Any = time.time, min_refresh: float = 0.25) -> None:
        self.trail = trail
        self.path = path or trail / "index.sqlite"
        self.retention = retention_days * 86400
        self._clock = clock
        self._min_refresh = min_refresh
        self._last_refresh = -1e18
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        try:
            self.path.chmod(0o600)
        except OSError:
            pass

    def close(self) -> None:
        self._db.close()

    # -- building ---------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> int:
        """Index what was appended to the log files since the last refresh (at most once per
        ``min_refresh`` seconds unless forced); return how many events were added."""
        with self._lock:
            now = self._clock()
            if not force and now - self._last_refresh < self._min_refresh:
                return 0
            self._last_refresh = now
            cutoff = int(now - self.retention)
            added = 0
            self._db.execute("BEGIN IMMEDIATE")  # one indexer at a time across processes
            try:
                known = dict(self._db.execute("SELECT path, offset FROM files").fetchall())
                for rel, size in self._log_files():
                    offset = known.get(rel, 0)
                    if size > offset:
                        added += self._index_file(rel, offset, cutoff)
                self._db.execute("DELETE FROM attrs WHERE event IN "
                                 "(SELECT id FROM events WHERE t < ?)", (cutoff,))
                self._db.execute("DELETE FROM events WHERE t < ?", (cutoff,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return added

    def _log_files(self) -> Iterator[tuple[str, int]]:
        logs = self.trail / "logs"
        if not logs.is_dir():
            return
        with os.scandir(logs) as streams:
            for stream in streams:
                if not stream.is_dir():
                    continue
                with os.scandir(stream.path) as files:
                    for f in files:
                        if f.name.endswith(".jsonl"):
                            yield f"logs/{stream.name}/{f.name}", f.stat().st_size

    def _index_file(self, rel: str, offset: int, cutoff: int) -> int:
        with open(self.trail / rel, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next refresh
        rows: list[tuple[int, str, dict[str, Any]]] = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
                t = epoch(record["eventTime"])
            except (ValueError, KeyError, TypeError):
                continue
            if t >= cutoff:
                rows.append((t, line.decode(), record))
        cur = self._db.cursor()
        # ids assigned here (this transaction holds the write lock): two bulk inserts per file
        base = cur.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0] + 1
        cur.executemany("INSERT INTO events (id, t, record) VALUES (?, ?, ?)",
                        [(base + i, t, text) for i, (t, text, _) in enumerate(rows)])
        cur.executemany("INSERT INTO attrs (kind, value, t, event) VALUES (?, ?, ?, ?)",
                        [(k, v, t, base + i) for i, (t, _, record) in enumerate(rows)
                         for k, v in attributes(record)])
        cur.execute("INSERT INTO files (path, offset) VALUES (?, ?) ON CONFLICT(path) DO "
                    "UPDATE SET offset = excluded.offset", (rel, offset + end))
        return len(rows)

    # -- looking up -------------------------------------------------------------------------

    def lookup(self, query: Query) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """One page of events, newest first, and the position after its last event (``None``
        when there is no more)."""
        self.refresh()
        now = self._clock()
        start = int(max(query.start if query.start is not None else 0, now - self.retention))
        end = int(query.end) if query.end is not None else 2**62
        params: list[Any] = []
        if query.attributes:
            kind, value = query.attributes[0]
            sql = ("SELECT a.t, a.event, e.record FROM attrs a JOIN events e ON e.id = a.event "
                   "WHERE a.kind = ? AND a.value = ? AND a.t BETWEEN ? AND ?")
            params += [kind, value, start, end]
            tcol, icol = "a.t", "a.event"
            for kind, value in query.attributes[1:]:
                sql += (" AND EXISTS (SELECT 1 FROM attrs b WHERE b.event = a.event "
                        "AND b.kind = ? AND b.value = ?)")
                params += [kind, value]
        else:
            sql = "SELECT e.t, e.id, e.record FROM events e WHERE e.t BETWEEN ? AND ?"
            params += [start, end]
            tcol, icol = "e.t", "e.id"
        if query.after is not None:
            sql += f" AND ({tcol} < ? OR ({tcol} = ? AND {icol} < ?))"
            params += [query.after[0], query.after[0], query.after[1]]
        sql += f" ORDER BY {tcol} DESC, {icol} DESC LIMIT ?"
        params.append(query.limit + 1)
        rows = self._db.execute(sql, params).fetchall()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        events = [json.loads(r[2]) for r in rows]
        return events, ((rows[-1][0], rows[-1][1]) if more and rows else None)

    def events(self, start: float, end: float | None = None,
               names: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Every indexed event in ``[start, end]``, oldest first (only ``names`` if given)."""
        self.refresh()
        hi = int(end) if end is not None else 2**62
        if names:
            marks = ",".join("?" * len(names))
            rows = self._db.execute(
                "SELECT e.record FROM attrs a JOIN events e ON e.id = a.event WHERE "
                f"a.kind = 'EventName' AND a.value IN ({marks}) AND a.t BETWEEN ? AND ? "
                "ORDER BY a.t, a.event", [*names, int(start), hi])
        else:
            rows = self._db.execute("SELECT record FROM events WHERE t BETWEEN ? AND ? "
                                    "ORDER BY t, id", (int(start), hi))
        for (text,) in rows:
            yield json.loads(text)
