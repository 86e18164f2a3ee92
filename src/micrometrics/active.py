"""The runtime the call path reports to (``current()``), and one still being set up.

``instrument()`` sets up the OpenTelemetry side (the SDK's providers, the exporters, the runtime) on a
background thread when the application has not imported the OpenTelemetry SDK yet: importing and building
it is most of what ``instrument()`` would otherwise cost the application's start-up (about 55 ms here).
Everything a caller can get wrong is checked before ``instrument()`` returns; what is left cannot fail on
the caller's input. A call that comes before the set-up is done waits for it (bounded by ``WAIT_S``), so
that no call goes untraced; a ``fork()`` waits for it too, so that a child never inherits half of it.

This module is light on purpose: the call path, the instrumentors and ``instrument()`` read it before the
SDK is imported.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable

from micrometrics import callcontext, internal_errors

logger = logging.getLogger("micrometrics")

#: The longest a call (or a fork, or ``uninstrument()``) waits for the set-up before going on without it.
WAIT_S = 10.0

_current: Any = None
_pending: "Setup | None" = None


def current() -> Any:
    """The active runtime; while one is being set up, waits for it (None if it failed or took over ``WAIT_S``)."""
    runtime = _current
    if runtime is None:
        pending = _pending
        if pending is not None:
            return pending.wait()
        return _current  # the set-up sets the runtime before it clears _pending
    return runtime


def installed() -> bool:
    """A runtime is active or being set up (never waits)."""
    return _current is not None or _pending is not None


def set_current(runtime: Any) -> None:
    global _current
    _current = runtime
    # context() warns about keys no active metric reads: it learns them here (it cannot import the runtime).
    callcontext.active_metrics = runtime.suite.metrics if runtime is not None else None


class Setup:
    """``build()`` on a thread; its result (whatever ``build`` returns, with ``.runtime``) once done.

    The runtime becomes ``current()`` when ``build`` returns; if ``build`` raises, the failure is logged
    (a warning: the application's calls go untraced) and counted, and ``result`` stays None.
    """

    def __init__(self, build: Callable[[], Any], metrics: Any = None) -> None:
        global _pending
        self._build = build
        self._done = threading.Event()
        self._cancelled = False
        self._timed_out_logged = False
        self.result: Any = None
        self.runtime: Any = None
        callcontext.active_metrics = metrics
        _pending = self
        self._thread = threading.Thread(target=self._run, name="micrometrics-setup", daemon=True)
        _guard()

    def start(self) -> None:
        """Start building; apart (last in ``instrument()``) so that the build does not share the interpreter with
        the rest of ``instrument()``."""
        self._thread.start()

    def _run(self) -> None:
        global _pending
        result = None
        try:
            result = self._build()
        except BaseException as exc:  # a set-up that fails must leave the application untouched, never kill a thread noisily
            # While the interpreter exits (the main thread is done), nothing is left to trace: no warning then.
            log = logger.warning if threading.main_thread().is_alive() else logger.debug
            log("micrometrics: setting up OpenTelemetry failed (%s: %s); calls are not traced", type(exc).__name__, exc)
            internal_errors.report("setup", exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__))
        try:
            if result is not None and self._cancelled:
                try:
                    result.discard()  # uninstrument() came first and stopped waiting: nothing of it may stay active
                except Exception as exc:
                    internal_errors.report("setup", exc)
                result = None
            self.result = result
            if result is not None:
                self.runtime = result.runtime
                set_current(result.runtime)
            elif _pending is self:
                callcontext.active_metrics = None  # nothing runs them: context() stops naming them
        finally:
            if _pending is self:
                _pending = None
            self._done.set()

    def wait(self, timeout_s: float = WAIT_S) -> Any:
        """The runtime, once set up; None if the set-up failed, was cancelled or is not done within ``timeout_s``."""
        if not self._done.is_set():
            if threading.current_thread() is self._thread or self._thread.ident is None:
                # The set-up never waits for itself; one not started yet (instrument() is still running) cannot be waited for.
                return None
            if not self._done.wait(timeout_s) and not self._timed_out_logged:
                self._timed_out_logged = True
                logger.warning("micrometrics: OpenTelemetry is still being set up after %g s; this call is not traced", timeout_s)
        return self.runtime

    def cancel(self) -> None:
        """Stop waiting for it: if it completes later, what it built is discarded, never made active."""
        global _pending
        self._cancelled = True
        if _pending is self:
            _pending = None
            callcontext.active_metrics = None


_guarded = False


def _guard() -> None:
    """Register, once, what waits for a set-up in progress (bounded): a ``fork()`` (the child must not inherit a
    half-built pipeline, nor a thread that no longer runs there), and a program whose main thread ends (it then
    shuts the set-up down in order like any other, ``instrument()``'s exit hook).

    The SDK cannot be set up once the interpreter exits: its resource detection runs on a thread pool that refuses
    new work by then. ``threading._register_atexit`` (the hook ``concurrent.futures`` itself uses) runs hooks in
    reverse order before threads are joined, and before-fork hooks also run in reverse order: ours, registered
    after the pool's (imported here first), run while the pool still takes work and before it takes its lock.
    """
    global _guarded
    if _guarded:
        return
    _guarded = True
    import concurrent.futures.thread  # noqa: F401  (registers the pool's hooks first, if not yet)

    def wait_for_pending() -> None:
        pending = _pending
        if pending is not None:
            pending.wait()

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=wait_for_pending)
    register = getattr(threading, "_register_atexit", None)
    if register is not None:  # CPython 3.9 to 3.14 have it
        try:
            register(wait_for_pending)
        except RuntimeError:  # already exiting: nothing to wait for
            pass
