"""Run history: every generate, compare and variations run in SQLite (WAL) beside the videos."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.gallery_export import JSON_FIELDS, write_runs
from pipeline.records import RewriteInfo, to_json

DB_NAME = "runs.sqlite3"
SCHEMA_VERSION = 1
KINDS = ("generate", "compare", "variations", "variation")  # variation: a preview re-rendered at full settings
STATUSES = ("running", "completed", "failed", "expired")
VOTES = ("raw", "rewritten", "tie")
MAX_LIST = 1000  # one page of /runs; enough for a history view, small enough to send at once
BUSY_TIMEOUT_MS = 10_000  # another process (CLI beside the app) may hold the write lock briefly

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    session TEXT,             -- gr.Request.session_hash, "cli", or NULL
    owner TEXT NOT NULL,      -- host:pid:start of the process running it, to find interrupted runs
    prompt TEXT NOT NULL,
    rewritten TEXT,
    prompt_used TEXT,
    video_preset TEXT NOT NULL,
    seed INTEGER,
    seeds TEXT NOT NULL,      -- JSON list; several for variations
    settings TEXT NOT NULL,   -- JSON
    rewrite TEXT NOT NULL,    -- JSON: a RewriteInfo (pipeline.records): rewriter, template, seed, fallback
    files TEXT NOT NULL,      -- JSON role -> path; filled only once every file is in place
    planned TEXT NOT NULL,    -- JSON list of final paths the run will write; removed if it is interrupted
    timings TEXT NOT NULL,    -- JSON
    parent_id INTEGER,        -- the preview batch of a variation, or the run a re-run repeats
    vote TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_session ON runs (session, id);
"""


@dataclass(frozen=True)
class RunStart:
    """What is known about a run before any model runs."""

    kind: str
    prompt: str
    video_preset: str
    seed: int | None
    settings: dict
    session: str | None = None
    rewritten: str | None = None
    seeds: tuple[int, ...] = ()
    rewrite: RewriteInfo = field(default_factory=RewriteInfo)
    planned: tuple[str, ...] = ()  # final paths this run may create
    parent_id: int | None = None


@dataclass(frozen=True)
class Run:
    """One row of the history, as the UI, API and exports see it (the session id stays private)."""

    id: int
    kind: str
    status: str
    created: float
    finished: float | None
    prompt: str
    rewritten: str | None
    prompt_used: str | None
    video_preset: str
    seed: int | None
    seeds: tuple[int, ...]
    settings: dict
    rewrite: RewriteInfo
    files: dict
    timings: dict
    parent_id: int | None
    vote: str | None
    error: str | None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["rewrite"] = to_json(self.rewrite)
        return data


@dataclass(frozen=True)
class VoteSummary:
    raw: int
    rewritten: int
    tie: int
    pairs: int  # completed compare runs, voted or not

    @property
    def win_rate(self) -> float | None:
        """Share of decisive votes (ties left out) that preferred the rewritten prompt."""
        decisive = self.raw + self.rewritten
        return self.rewritten / decisive if decisive else None

    def to_dict(self) -> dict:
        return {**asdict(self), "win_rate": self.win_rate}


class Gallery:
    """The run database in `folder`; safe to share between threads and processes."""

    def __init__(self, folder: Path, recover: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / DB_NAME
        self._write_lock = threading.Lock()  # writers in this process queue here, not on SQLite's busy loop
        self._owner = _process_owner(os.getpid())
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if recover:
            self.recover()

    # -- recording ---------------------------------------------------------------------------------
    def begin(self, start: RunStart) -> int:
        """Insert the run as 'running' (committed) and return its id."""
        if start.kind not in KINDS:
            raise ValueError(f"unknown run kind {start.kind!r}; one of {', '.join(KINDS)}")
        for path in start.planned:  # an interrupted run removes its planned files: never someone else's
            if Path(path).exists():
                raise FileExistsError(f"{path} exists; refusing to overwrite it")
        row = {
            "kind": start.kind,
            "status": "running",
            "created": time.time(),
            "session": start.session,
            "owner": self._owner,
            "prompt": start.prompt,
            "rewritten": start.rewritten,
            "video_preset": start.video_preset,
            "seed": start.seed,
            "seeds": _dump(list(start.seeds)),
            "settings": _dump(start.settings),
            "rewrite": _dump(to_json(start.rewrite)),
            "files": "{}",
            "planned": _dump([str(p) for p in start.planned]),
            "timings": "{}",
            "parent_id": start.parent_id,
        }
        with self._write() as db:
            cur = db.execute(
                f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
            )
            return int(cur.lastrowid)

    def complete(
        self,
        run_id: int,
        files: Mapping[str, str | Path],
        *,
        prompt_used: str | None,
        rewritten: str | None = None,
        timings: Mapping | None = None,
        rewrite: RewriteInfo | None = None,
    ) -> None:
        """Mark a run completed; call only once every file it names is in place."""
        missing = [str(p) for p in files.values() if not Path(p).exists()]
        if missing:
            raise FileNotFoundError(f"run {run_id} cannot complete: missing {', '.join(missing)}")
        stored = {role: self._relative(p) for role, p in files.items()}
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status='completed', finished=?, files=?, prompt_used=?, rewritten=?, timings=?, "
                "rewrite=COALESCE(?, rewrite), planned='[]' WHERE id=? AND status='running'",
                (
                    time.time(),
                    _dump(stored),
                    prompt_used,
                    rewritten,
                    _dump(dict(timings or {})),
                    _dump(to_json(rewrite)) if rewrite is not None else None,
                    run_id,
                ),
            )

    def fail(self, run_id: int, error: str) -> None:
        """Remove whatever final files a running run had written, then mark it failed (in that order: a
        crash in between leaves it 'running', and the next start finishes the job)."""
        with self._connect() as db:
            row = db.execute("SELECT planned FROM runs WHERE id=? AND status='running'", (run_id,)).fetchone()
        if row is None:
            return
        _remove_planned(json.loads(row["planned"]))
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status='failed', finished=?, error=?, planned='[]' WHERE id=? AND status='running'",
                (time.time(), error[:500], run_id),
            )

    @contextlib.contextmanager
    def recording(self, start: RunStart) -> Iterator[int]:
        """`with gallery.recording(start) as run_id:` ... `gallery.complete(run_id, ...)`; errors fail it."""
        run_id = self.begin(start)
        try:
            yield run_id
        except BaseException as err:
            self.fail(run_id, _describe(err))
            raise
        self.fail(run_id, "ended without a result")  # a no-op once completed

    def recover(self) -> int:
        """Mark runs whose process is gone as failed and remove their unfinished files."""
        with self._connect() as db:
            rows = db.execute("SELECT id, owner FROM runs WHERE status='running'").fetchall()
        dead = [row["id"] for row in rows if not _owner_alive(row["owner"])]
        for run_id in dead:
            self.fail(run_id, "interrupted: the process stopped before the run finished")
        self.expire_missing()
        return len(dead)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, run_id: object, session: str | None = None) -> Run:
        """One run by id; `session` (when not None) hides other sessions' runs."""
        run_id = parse_run_id(run_id)
        sql, args = "SELECT * FROM runs WHERE id=?", [run_id]
        if session is not None:
            sql, args = sql + " AND session=?", [*args, session]
        with self._connect() as db:
            row = db.execute(sql, args).fetchone()
        if row is None:
            raise ValueError(f"There is no run {run_id}.")
        return _to_run(row)

    def list(self, query: str = "", limit: int = 50, session: str | None = None) -> list[Run]:
        """Runs newest first, filtered by text in the prompts, kind, status or preset (or an id/seed)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIST}, got {limit!r}.")
        return self._select(query, limit, session)

    def _select(self, query: str, limit: int | None, session: str | None) -> list[Run]:
        if not isinstance(query, str):
            raise ValueError("The filter must be text.")
        where, args = [], []
        if session is not None:
            where.append("session=?")
            args.append(session)
        for word in query.split():
            like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            text = " OR ".join(
                f"{col} LIKE ? ESCAPE '\\'" for col in ("prompt", "rewritten", "kind", "status", "video_preset")
            )
            number = " OR id=? OR seed=?" if word.isdigit() else ""
            where.append(f"({text}{number})")
            args += [like] * 5 + ([int(word)] * 2 if word.isdigit() else [])
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            return [_to_run(row) for row in db.execute(sql, [*args, -1 if limit is None else limit]).fetchall()]

    def summary(self, session: str | None = None) -> VoteSummary:
        sql = "SELECT vote, COUNT(*) AS n FROM runs WHERE kind='compare' AND status='completed'"
        args: list = []
        if session is not None:
            sql, args = sql + " AND session=?", [session]
        with self._connect() as db:
            counts = {row["vote"]: row["n"] for row in db.execute(sql + " GROUP BY vote", args)}
        return VoteSummary(counts.get("raw", 0), counts.get("rewritten", 0), counts.get("tie", 0), sum(counts.values()))

    def file(self, stored: str) -> Path:
        """The path of a file named in a run's `files` (stored relative to the gallery folder when inside it)."""
        path = Path(stored)
        return path if path.is_absolute() else self.folder / path

    # -- changing ----------------------------------------------------------------------------------
    def vote(self, run_id: object, choice: object, session: str | None = None) -> Run:
        """Record which side of a compare pair is better: raw, rewritten or tie (a new vote replaces the old)."""
        if not isinstance(choice, str) or choice.strip().lower() not in VOTES:
            raise ValueError(f"A vote must be one of {', '.join(VOTES)}, got {choice!r}.")
        run = self.get(run_id, session)
        if run.kind != "compare":
            raise ValueError(f"Run {run.id} is a {run.kind} run; only compare pairs take votes.")
        if run.status != "completed":
            raise ValueError(f"Run {run.id} is {run.status}; only completed pairs take votes.")
        with self._write() as db:
            db.execute("UPDATE runs SET vote=? WHERE id=?", (choice.strip().lower(), run.id))
        return self.get(run.id, session)

    def delete(self, run_id: object, session: str | None = None) -> list[Path]:
        """Delete a finished run and its files; returns the files removed. Files go first: a crash in between
        leaves a row whose files are missing, which the next start marks expired."""
        run = self.get(run_id, session)
        if run.status == "running":
            raise ValueError(f"Run {run.id} is still running; stop it first.")
        removed = _remove(self._own(run.files.values()))
        with self._write() as db:
            db.execute("DELETE FROM runs WHERE id=?", (run.id,))
        return removed

    def _own(self, stored) -> list[Path]:
        """The stored files that lie in this gallery's folder: the only ones delete and cleanup remove (a CLI
        run written elsewhere with --out keeps its files)."""
        folder = self.folder.resolve()
        return [path for path in map(self.file, stored) if path.resolve().is_relative_to(folder)]

    def expire(self, run_ids: list[int], reason: str) -> None:
        """Mark runs expired: their files were removed (by a cleanup policy or by hand)."""
        with self._write() as db:
            db.executemany(
                "UPDATE runs SET status='expired', error=? WHERE id=? AND status='completed'",
                [(reason, i) for i in run_ids],
            )

    def expire_missing(self) -> int:
        """Cleanup pass: completed runs with any file gone are marked expired, never left dangling."""
        with self._connect() as db:
            rows = db.execute("SELECT id, files FROM runs WHERE status='completed'").fetchall()
        gone = [row["id"] for row in rows if any(not self.file(p).exists() for p in json.loads(row["files"]).values())]
        self.expire(gone, "files missing")
        return len(gone)

    def expire_older_than(self, seconds: float, now: float | None = None) -> int:
        """Cleanup policy: remove the files of runs older than `seconds` and mark those runs expired."""
        cutoff = (time.time() if now is None else now) - seconds
        with self._connect() as db:
            rows = db.execute("SELECT id, files FROM runs WHERE status='completed' AND created<?", (cutoff,)).fetchall()
        for row in rows:
            _remove(self._own(json.loads(row["files"]).values()))
        self.expire([row["id"] for row in rows], "removed by the age policy")
        return len(rows)

    def export(self, fmt: str, dest: Path, session: str | None = None, query: str = "") -> Path:
        """Write every matching run (oldest first) as CSV or JSONL to `dest`, which must not exist."""
        runs = [run.to_dict() for run in reversed(self._select(query, None, session))]
        return write_runs(runs, list(Run.__dataclass_fields__), fmt, dest)

    # -- connections -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection per operation: nothing is shared between threads."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed on success and rolled back on error."""
        with self._write_lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _relative(self, path: str | Path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.folder.resolve()))
        except ValueError:
            return str(path)


def parse_run_id(value: object) -> int:
    """A run id from the UI or API: a positive whole number (floats such as 3.0 are accepted)."""
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        value = int(value.strip().lstrip("#"))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"A run id is a positive whole number, got {value!r}.")
    return value


def private_runs(environ: Mapping[str, str] | None = None) -> bool:
    """RR_PRIVATE_RUNS=1/0; unset: on when running on a Hugging Face Space (SPACE_ID is set)."""
    env = os.environ if environ is None else environ
    value = (env.get("RR_PRIVATE_RUNS") or "").strip().lower()
    if not value:
        return bool(env.get("SPACE_ID"))
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"RR_PRIVATE_RUNS must be 1 or 0, got {value!r}")


def _to_run(row: sqlite3.Row) -> Run:
    data = {k: row[k] for k in Run.__dataclass_fields__}
    for key in JSON_FIELDS:
        data[key] = json.loads(data[key])
    data["seeds"] = tuple(data["seeds"])
    data["rewrite"] = RewriteInfo.from_dict(data["rewrite"])
    return Run(**data)


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _describe(err: BaseException) -> str:
    from prompts.rewriter import Cancelled

    if isinstance(err, (Cancelled, KeyboardInterrupt)):
        return "stopped by the user"
    if type(err) is ValueError:  # a refusal written for the user: its message says it all
        return str(err)
    return f"{type(err).__name__}: {err}"


def _remove(paths: list[Path]) -> list[Path]:
    removed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _remove_planned(planned: list[str]) -> None:
    """Final files of an unfinished run, and the temporary parts its encoder left behind."""
    paths = [Path(p) for p in planned]
    parts = [part for p in paths if p.suffix == ".mp4" for part in p.parent.glob(f".{p.stem}.*.part.mp4")]
    _remove(paths + parts)


def _process_owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counting after the command name


def _owner_alive(owner: str) -> bool:
    host, pid_text, start = owner.rsplit(":", 2)
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's process: SQLite does not share across machines, so it is gone
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    return not start or _start_time(pid) in (None, start)
