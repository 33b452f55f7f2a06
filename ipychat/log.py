"""The log: every answer of ``%%chat`` and the panel, in one SQLite file.

Where it lives: ``$IPYCHAT_HOME/log.db``, else ``ipychat/log.db`` in the
Jupyter data directory. A row is written once, after the answer ended (the
stream never waits for the disk), by a connection opened for that write:
a file made read-only, replaced or removed meanwhile is noticed at once.
WAL mode lets readers and one writer work side by side; kernels that write
at the same moment wait for each other (busy timeout, then retries), so
none loses a row.

Keys, cookies and proxy passwords never reach the file: options hold body
options only, URLs lose their credentials, and every text is scrubbed of
the secrets the caller names and of those in the environment.

From Python::

    import ipychat.log
    ipychat.log.entries(limit=5)                  # the last five, oldest first
    ipychat.log.entries(search="decorators")      # prompts and answers
    ipychat.log.export("answers.jsonl")           # or .md
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from . import errors
from .answer import COMPLETE, Answer
from .logrows import COLUMNS, Entry, entry_of, env_secrets, row_of

#: 2: ``rounds`` (an answer's tool calls, JSON), added to a version 1 log in place.
SCHEMA_VERSION = 2
#: Seconds a writer waits for another one (busy timeout and retries together).
BUSY_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,             -- when it was asked, UTC, YYYY-MM-DD HH:MM:SS
    notebook TEXT,                  -- JPY_SESSION_NAME, else the kernel's connection file
    provider TEXT, model TEXT, base_url TEXT,
    messages TEXT,                  -- JSON: what was sent
    options TEXT,                   -- JSON: body options only
    prompt TEXT, text TEXT, reasoning TEXT,
    input_tokens INTEGER, output_tokens INTEGER,
    finish_reason TEXT, first_token_s REAL, duration_s REAL,
    status TEXT, error TEXT,
    conversation TEXT,              -- Conversation.id, NULL for a one-off
    key TEXT,                       -- Answer.key(): what replay looks up
    rounds TEXT                     -- JSON: the model turns and tool calls, NULL without
);
CREATE INDEX IF NOT EXISTS answers_by_key ON answers (key, status);
CREATE INDEX IF NOT EXISTS answers_by_notebook ON answers (notebook, id);
"""
_FTS = ("CREATE VIRTUAL TABLE IF NOT EXISTS answers_fts USING fts5("
        "prompt, text, content='answers', content_rowid='id')")


class LogError(Exception):
    """The log could not be read or written; the message is one line."""


def log_path() -> Path:
    """``$IPYCHAT_HOME/log.db``, else ``<Jupyter data dir>/ipychat/log.db``."""
    home = os.environ.get("IPYCHAT_HOME")
    if home:
        return Path(home).expanduser() / "log.db"
    return _jupyter_data_dir() / "ipychat" / "log.db"


def _jupyter_data_dir() -> Path:
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:  # no Jupyter here (plain IPython): its Linux default
        if os.environ.get("JUPYTER_DATA_DIR"):
            return Path(os.environ["JUPYTER_DATA_DIR"]).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(xdg) / "jupyter"
    return Path(jupyter_data_dir())


class Log:
    """The log file at ``path`` (default ``log_path()``)."""

    def __init__(self, path=None, timeout: Optional[float] = None):
        self.path = Path(path) if path is not None else log_path()
        self.timeout = BUSY_TIMEOUT if timeout is None else timeout

    # -- writing ----------------------------------------------------------------

    def write(self, answer: Answer, notebook: Optional[str] = None,
              secrets: Sequence[str] = ()) -> int:
        """Add ``answer`` as a row; returns its id. Raises ``LogError``."""
        row = row_of(answer, notebook, [*secrets, *env_secrets()])
        names = ", ".join(COLUMNS)
        marks = ", ".join("?" * len(COLUMNS))

        def insert(db):
            found = db.execute(f"INSERT INTO answers ({names}) VALUES ({marks})", row).lastrowid
            if _has_fts(db):
                db.execute("INSERT INTO answers_fts (rowid, prompt, text) VALUES (?, ?, ?)",
                           (found, row[7], row[8]))
            return found

        return self._write(insert)

    def clear(self) -> int:
        """Empty the log (the file stays, with its schema); returns how many rows went."""
        if not self.path.exists():
            return 0

        def empty(db):
            gone = db.execute("SELECT count(*) FROM answers").fetchone()[0]
            db.execute("DELETE FROM answers")
            if _has_fts(db):
                db.execute("INSERT INTO answers_fts (answers_fts) VALUES ('delete-all')")
            return gone

        gone = self._write(empty)
        with self._connection() as db:  # cleared means gone from the file too
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return gone

    def _write(self, work):
        if self.path.exists() and not os.access(self.path, os.W_OK):
            # SQLite would reuse a descriptor opened before the file became
            # read-only (the idle connection below keeps one) and write anyway.
            raise LogError(self._say("attempt to write a readonly database"))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self._connection(deadline) as db:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(db)
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                _keep_open(self.path)
                return result
            except sqlite3.OperationalError as err:
                # The busy handler does not cover every case (a WAL being
                # recovered, the first switch to WAL): wait a little, retry.
                if not _busy(err) or time.monotonic() >= deadline:
                    raise LogError(self._say(err)) from None
                time.sleep(0.02)
            except (sqlite3.Error, OSError) as err:
                raise LogError(self._say(err)) from None

    # -- reading ----------------------------------------------------------------

    def entries(self, limit: Optional[int] = 20, search: Optional[str] = None,
                notebook: Optional[str] = None) -> List[Entry]:
        """The last ``limit`` answers (None: all), oldest first; ``search``: only
        those whose prompt or answer holds every word of it; ``notebook``: only its."""
        where, params = [], []
        if notebook is not None:
            where.append("a.notebook = ?")
            params.append(notebook)
        with self._reading() as db:
            if db is None:
                return []
            join = ""
            if search and search.split():
                join, clause, words = _search_clause(db, search)
                where.append(clause)
                params += words
            sql = (f"SELECT a.* FROM answers a{join}"
                   f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY a.id DESC")
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            rows = db.execute(sql, params).fetchall()
        return [entry_of(row) for row in reversed(rows)]

    def find(self, key: str) -> Optional[Entry]:
        """The latest complete answer with this ``Answer.key()``, or None."""
        with self._reading() as db:
            if db is None:
                return None
            row = db.execute("SELECT * FROM answers WHERE key = ? AND status = ? "
                             "ORDER BY id DESC LIMIT 1", (key, COMPLETE)).fetchone()
        return entry_of(row) if row else None

    def last_conversation(self, notebook: str) -> List[Entry]:
        """The complete turns of ``notebook``'s latest conversation, oldest first."""
        with self._reading() as db:
            if db is None:
                return []
            found = db.execute("SELECT conversation FROM answers WHERE notebook = ? AND "
                               "conversation IS NOT NULL ORDER BY id DESC LIMIT 1",
                               (notebook,)).fetchone()
            if found is None:
                return []
            rows = db.execute("SELECT * FROM answers WHERE conversation = ? AND status = ? "
                              "ORDER BY id", (found[0], COMPLETE)).fetchall()
        return [entry_of(row) for row in rows]

    def count(self) -> int:
        with self._reading() as db:
            return 0 if db is None else db.execute("SELECT count(*) FROM answers").fetchone()[0]

    @contextlib.contextmanager
    def _reading(self):
        """A connection for reading; None when there is no log yet (none is made)."""
        if not self.path.exists():
            yield None
            return
        try:
            with self._connection() as db:
                yield db
        except (sqlite3.Error, OSError) as err:
            raise LogError(self._say(err)) from None

    @contextlib.contextmanager
    def _connection(self, deadline: Optional[float] = None):
        wait = self.timeout if deadline is None else max(0.05, deadline - time.monotonic())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), timeout=wait, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            # WAL with NORMAL: a commit does not wait for the disk; a power cut
            # may lose the last rows, a crashed kernel loses none.
            db.execute("PRAGMA synchronous = NORMAL")
            _ensure_schema(db)
            yield db
        finally:
            db.close()

    def _say(self, err: BaseException) -> str:
        return f"{errors.one_line(str(err)) or type(err).__name__} ({self.path})"


# -- keeping the file open --------------------------------------------------------

#: One idle connection per log file for the life of the process. While one is
#: open, closing a writer's connection does not checkpoint the WAL, which costs
#: two fsyncs: measured 16 ms a write on a busy disk without it, 0.14 ms with it.
#: Writers still open their own connection, so a file made read-only, replaced
#: or removed is noticed at the next write.
_keepers: dict = {}
_keepers_lock = threading.Lock()


def _keep_open(path: Path) -> None:
    try:
        inode = path.stat().st_ino
    except OSError:
        return
    with _keepers_lock:
        kept = _keepers.get(str(path))
        if kept is not None and kept[0] == inode:
            return
        if kept is not None:  # the file was replaced: let go of the old one
            kept[1].close()
        db = sqlite3.connect(str(path), check_same_thread=False)
        try:
            db.execute("PRAGMA user_version").fetchone()  # opens the file
        except sqlite3.Error:
            db.close()
            return
        _keepers[str(path)] = (inode, db)


# -- schema and search --------------------------------------------------------------

def _ensure_schema(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    db.execute("PRAGMA journal_mode = WAL")  # persistent: set once, by the first writer
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            for statement in _SCHEMA.split(";"):  # executescript would COMMIT first
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(answers)")}
            if "rounds" not in columns:  # a version 1 log: its rows had no tool calls
                db.execute("ALTER TABLE answers ADD COLUMN rounds TEXT")
            if fts5_available():
                db.execute(_FTS)
                db.execute("INSERT INTO answers_fts (answers_fts) VALUES ('rebuild')")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _has_fts(db: sqlite3.Connection) -> bool:
    if not fts5_available():
        return False
    found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'answers_fts'").fetchone()
    return found is not None


_fts5: Optional[bool] = None


def fts5_available() -> bool:
    """Whether this Python's SQLite has FTS5 (most builds do)."""
    global _fts5
    if _fts5 is None:
        probe = sqlite3.connect(":memory:")
        try:
            probe.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
            _fts5 = True
        except sqlite3.Error:
            _fts5 = False
        finally:
            probe.close()
    return _fts5


def _search_clause(db, search: str):
    """(join, condition, parameters): every word, as a word prefix with FTS5,
    else as a substring of the prompt or the answer."""
    words = search.split()
    if _has_fts(db):
        query = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
        return " JOIN answers_fts f ON f.rowid = a.id", "answers_fts MATCH ?", [query]
    either = "(coalesce(a.prompt, '') || ' ' || coalesce(a.text, '')) LIKE ? ESCAPE '\\'"
    like = " AND ".join([either] * len(words))
    escaped = [re.sub(r"([\\%_])", r"\\\1", word) for word in words]
    return "", f"({like})", [f"%{word}%" for word in escaped]


def _busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


# -- the default log, for Python users -------------------------------------------

def entries(limit: Optional[int] = 20, search: Optional[str] = None,
            notebook: Optional[str] = None, path=None) -> List[Entry]:
    """The last ``limit`` logged answers (None: all), oldest first; see ``Log.entries``."""
    return Log(path).entries(limit, search, notebook)


def export(target, entries: Optional[Iterable[Entry]] = None, path=None) -> int:
    """Write ``entries`` (default: the whole log) to ``target``: Markdown for
    ``.md``, JSON Lines for ``.jsonl``. Returns how many were written."""
    from .logexport import write

    chosen = Log(path).entries(limit=None) if entries is None else list(entries)
    return write(Path(target), chosen)


def clear(path=None) -> int:
    """Empty the log; returns how many answers went."""
    return Log(path).clear()


__all__ = ["Entry", "Log", "LogError", "clear", "entries", "export", "fts5_available",
           "log_path"]
