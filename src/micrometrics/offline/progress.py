"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    """``Progress(total, "replay")``; ``advance()`` per item; ``close()`` clears the line."""

    WIDTH = 30

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = enabled if enabled is not None else bool(isatty and isatty())
        self.done = 0
        self._started = time.monotonic()
        self._drawn = self._started  # the first draw waits a moment: no rate from a single item

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        # Redraw at most 20 times a second: a terminal is slower than a fast metric.
        if now - self._drawn < 0.05 and self.done < self.total:
            return
        self._drawn = now
        filled = int(self.WIDTH * self.done / self.total) if self.total else self.WIDTH
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label:<8} [{bar}] {self.done}/{self.total}  {rate:5.1f}/s  eta {eta:4.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (self.WIDTH + 50) + "\r")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
