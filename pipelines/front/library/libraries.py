"""Which library a result goes into and a person looks in.

With an outputs folder, one library over it serves everyone, and each signed-in person sees only their
own images in it. Without one (a public demo), nothing is written to disk: each browser session gets a
library in memory of its own, gone when the session ends (or when it is the least recently used of more
than `max_sessions`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from .index import Library

MAX_SESSIONS = 64  # libraries in memory kept at once; the least recently used session's goes first


class Libraries:
    def __init__(self, outputs: str | Path = "", *, max_sessions: int = MAX_SESSIONS):
        self._shared = Library.open(outputs) if outputs else None  # opening adds PNGs the index lacks
        self._sessions: OrderedDict[str, Library] = OrderedDict()
        self._lock = threading.Lock()
        self.max_sessions = max_sessions

    @property
    def persistent(self) -> bool:
        """True when results are kept in the outputs folder; False when each session's live in memory."""
        return self._shared is not None

    @property
    def notices(self) -> list[str]:
        """What opening the outputs folder's library found and did (an index rebuilt, PNGs added)."""
        return list(self._shared.notices) if self._shared is not None else []

    def of(self, session: str | None) -> Library | None:
        """The library a session's results go into: the outputs folder's, or the session's own in memory
        (None for work with no session and no outputs folder: nothing is kept)."""
        if self._shared is not None:
            return self._shared
        if not session:
            return None
        with self._lock:
            library = self._sessions.pop(session, None) or Library.in_memory()
            self._sessions[session] = library  # the most recently used last
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)  # not closed: a request of that session may still hold it
            return library

    def forget(self, session: str | None) -> None:
        """A browser session ended: its library in memory goes with it."""
        with self._lock:
            self._sessions.pop(session or "", None)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        with self._lock:
            self._sessions.clear()
