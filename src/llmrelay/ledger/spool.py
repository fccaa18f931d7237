"""The ledger's spool folder (`LLMRELAY_HOME/spool/`): where rows go while the database cannot take them.

Each process appends to its own `<pid>-<time>-<n>.part` (fsync'ed after every write); when it switches back to
the database it renames the file to `.jsonl`, and any process may then claim it (an atomic rename to
`.replay-<pid>`: two claimers cannot both win), replay it and delete it, or give it back as `.jsonl` when the
replay must wait.  A `.part` or `.replay-<pid>` of a dead process is claimable too, as is one with our own pid
that no live recorder of this process holds (an earlier run: a container's server is pid 1 every time).
What can never be inserted is set aside, one JSON line each, in `rejected.ndjson` for a person to look at.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .rows import RowCodec

REJECTED = "rejected.ndjson"
_HELD: set[Path] = set()
"""Spool files a live recorder of this process is writing (`.part`) or replaying (`.replay-<pid>`)."""
_SEQ = itertools.count(1)


class Spool:
    def __init__(self, folder: Path, rows: RowCodec) -> None:
        self.folder = folder
        self._rows = rows
        self._path: Path | None = None

    @property
    def writing(self) -> bool:
        """A file of this process is open for appending (the database was away)."""
        return self._path is not None

    def append(self, rows: list[tuple]) -> None:
        """Append `rows` to this process's file, fsync'ed before returning (raises OSError: no room, no folder)."""
        if self._path is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._path = self.folder / f"{os.getpid()}-{int(time.time())}-{next(_SEQ)}.part"
            _HELD.add(self._path)
        data = "".join(self._rows.to_json(r) + "\n" for r in rows).encode()
        with open(self._path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        """Done appending: the file becomes `.jsonl`, for whoever replays it."""
        path, self._path = self._path, None
        if path is not None:
            if path.exists():
                path.rename(path.with_suffix(".jsonl"))
            _HELD.discard(path)

    def first_row(self) -> tuple | None:
        """The first row of the file being appended to (the database probe writes it again), if readable."""
        if self._path is None:
            return None
        try:
            with open(self._path, encoding="utf-8") as f:
                return self._rows.from_json(f.readline())
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError):  # gone or unreadable: probe by replaying
            return None

    def reject(self, line: str, reason: str) -> Path:
        """Set aside what can never be inserted, where a person can look at it."""
        path = self.folder / REJECTED
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"reason": reason, "line": line}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return path

    def claimable(self) -> list[Path]:
        """The files waiting for a replay, oldest first, then those left by dead processes."""
        if not self.folder.is_dir():
            return []
        files = sorted(self.folder.glob("*.jsonl"))
        me = os.getpid()
        for stale in sorted([*self.folder.glob("*.part"), *self.folder.glob("*.replay-*")]):
            owner = stale.name.split("-", 1)[0] if stale.suffix == ".part" else stale.suffix.rsplit("-", 1)[-1]
            pid = int(owner) if owner.isdigit() else 0
            if (pid == me and stale not in _HELD) or (pid != me and not _alive(pid)):
                files.append(stale)
        return files

    def claim(self, path: Path) -> Path | None:
        """Take `path` for a replay by this process (None: another process took it first)."""
        claimed = path.with_name(f"{path.name.split('.', 1)[0]}.replay-{os.getpid()}")
        _HELD.add(claimed)
        try:
            path.rename(claimed)
        except OSError:
            _HELD.discard(claimed)
            return None
        return claimed

    def release(self, claimed: Path, replayed: bool) -> None:
        """A claimed file's replay ended: deleted when every row went in, else given back for later."""
        _HELD.discard(claimed)
        if replayed:
            claimed.unlink()
        else:
            claimed.rename(claimed.with_name(claimed.name.split(".", 1)[0] + ".jsonl"))

    def batches(self, path: Path, size: int, bad: Callable[[str, Exception], None]) -> Iterator[list[tuple]]:
        """The rows of `path`, `size` at a time; a line that does not parse (a write a crash cut short) goes to
        `bad` instead."""
        batch: list[tuple] = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    batch.append(self._rows.from_json(line))
                except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                    bad(line.rstrip("\n"), exc)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file()) if self.folder.is_dir() else []

    def problem(self) -> str | None:
        """Why rows could not be kept here now (None: they could): the folder takes no file (not writable, or
        its disk is full).  Writes and removes a small scratch file."""
        probe = self.folder / f".probe-{os.getpid()}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"\n" * 4096)  # a disk with no room for one block refuses this
            probe.unlink()
        except OSError as exc:
            return "spool-disk-full" if exc.errno == errno.ENOSPC else "spool-not-writable"
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
