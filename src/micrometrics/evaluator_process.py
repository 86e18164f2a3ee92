"""The evaluator process (``instrument(evaluator="process")``): monitors evaluated outside the application's interpreter.

A monitor such as LanguageMatch spends a few hundred microseconds of pure-Python CPU
per call. On the application's monitor thread that CPU holds the interpreter lock
(GIL), so a caller whose answer arrives meanwhile waits for it. Metrics that declare
``process_safe = True`` (every built-in) are therefore evaluated in one child process
per application process: the monitor thread sends a snapshot of the call (plain data,
pickled) over a pipe and blocks on the answer without holding the GIL; results,
span attributes, events, logs and metric points are still written in the application
by the monitor thread, exactly as for in-thread metrics.

The child is ``sys.executable -I``: isolated mode, so neither ``PYTHON*`` variables nor
an auto-instrumentation ``sitecustomize`` run in it; it receives the parent's
``sys.path`` first, then the pickled metrics. It exits when its stdin closes (the
application exits or releases it), ignores terminal signals (own session), and is
replaced when it dies or overruns the per-call deadline. When it cannot start (no
usable ``sys.executable``, Windows, an unpicklable metric or call), the work is
evaluated in-thread as before: never lost.
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

from micrometrics.trace_memory import RETRIEVED_KEY

if TYPE_CHECKING:
    from micrometrics.metric import MicroMetric, Result
    from micrometrics.records import Call

_HEADER = struct.Struct("<I")
_STARTUP_TIMEOUT_S = 30.0
#: Seconds an unused child is kept for the next runtime (tests and notebooks instrument
#: again and again); it is closed at exit in any case.
LINGER_S = 10.0
_PROTOCOL = pickle.HIGHEST_PROTOCOL

# Runs in the child before micrometrics can be imported: read the parent's sys.path.
_BOOTSTRAP = (
    "import os,sys,pickle,struct\n"
    "h=b''\n"
    "while len(h)<4:\n"
    " b=os.read(0,4-len(h))\n"
    " if not b: sys.exit(0)\n"
    " h+=b\n"
    "n=struct.unpack('<I',h)[0];d=b''\n"
    "while len(d)<n:\n"
    " b=os.read(0,n-len(d))\n"
    " if not b: sys.exit(0)\n"
    " d+=b\n"
    "sys.path[:]=pickle.loads(d)\n"
    "from micrometrics.evaluator_process import child_main\n"
    "child_main()\n"
)


class EvaluatorUnavailable(Exception):
    """The evaluator process could not take this work; evaluate it in-thread."""


class EvaluatorCrashed(EvaluatorUnavailable):
    """The child died while it held ``metrics`` (evaluating or loading them): one of them
    killed it (a segfault, ``os._exit``, the OOM killer). Never run them in the application."""

    def __init__(self, reason: str, metrics: Sequence["MicroMetric"] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metrics = tuple(metrics)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            import signal

            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class RemoteError(Exception):
    """Stands for an exception a metric raised in the evaluator process (its type name is kept)."""


_remote_types: dict[str, type] = {}


def remote_exception(type_name: str, message: str) -> Exception:
    """An exception of the same type name as the child's, for counting and logging in the parent."""
    cls = _remote_types.get(type_name)
    if cls is None:
        cls = type(type_name, (RemoteError,), {})
        _remote_types[type_name] = cls
    return cls(message)


def usable() -> bool:
    """Whether this platform can run the evaluator process at all."""
    exe = sys.executable
    return os.name == "posix" and bool(exe) and os.access(exe, os.X_OK)


def snapshot(call: "Call") -> bytes:
    """The call as plain, picklable data: its record as it is, and what metrics read of the call's state."""
    context = {k: v for k, v in call.context.items() if k != RETRIEVED_KEY}  # already in retrieved_documents
    return pickle.dumps((call.record, call.attempt, context, call.retrieved_documents), _PROTOCOL)


# ---- parent side ------------------------------------------------------------------------


class EvaluatorProcess:
    """The parent's handle on one child process; every exchange holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._pending = b""  # bytes read past the last reply (none, while replies are awaited one by one)
        self._loaded: dict[int, str | None] = {}  # token -> None (loaded) or why it could not be
        self._refused: dict[int, str] = {}  # token -> why it is never sent again (survives restarts)
        self._tokens: "weakref.WeakKeyDictionary[MicroMetric, int]" = weakref.WeakKeyDictionary()
        self._next_token = 1
        self._users = 0
        self._idle_timer: threading.Timer | None = None
        self.starts = 0
        self.failed_start: str | None = None

    # -- lifecycle (callers hold no lock) --

    def acquire(self) -> None:
        with self.lock:
            self._users += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None

    def release(self, metrics: Sequence["MicroMetric"]) -> None:
        """A runtime is done with ``metrics``; the child forgets them and, unused, closes after a while."""
        with self.lock:
            self._users = max(0, self._users - 1)
            for m in metrics:
                token = self._tokens.pop(m, None)
                if token is not None and self._loaded.pop(token, "") is None and self._alive():
                    self._send_quietly(("drop", token))
            if self._users == 0 and self._proc is not None:
                t = threading.Timer(LINGER_S, self._close_if_unused)
                t.daemon = True
                t.name = "micrometrics-evaluator-linger"
                self._idle_timer = t
                t.start()

    def _close_if_unused(self) -> None:
        with self.lock:
            if self._users == 0:
                self._stop()

    def close(self) -> None:
        with self.lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _stop(self, kill: bool = False) -> int | None:
        """Stop the child; its exit status (negative: the signal that ended it)."""
        proc, self._proc = self._proc, None
        self._loaded.clear()
        self._pending = b""
        if proc is None:
            return None
        # Already dead (it crashed): its own status, before our kill could stand in for it.
        code = proc.poll()
        try:
            if kill:
                proc.kill()
            proc.stdin.close()  # the child reads EOF and exits
            proc.stdout.close()
        except Exception:
            pass
        try:
            proc.wait(timeout=2.0)
        except Exception:
            try:
                proc.kill()
                proc.wait(timeout=2.0)
            except Exception:
                pass
        return code if code is not None else proc.returncode

    def _start(self) -> None:
        if self.failed_start is not None:
            raise EvaluatorUnavailable(self.failed_start)
        if not usable():
            self.failed_start = "no usable sys.executable on this platform"
            raise EvaluatorUnavailable(self.failed_start)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            self.failed_start = f"cannot start {sys.executable}: {exc}"
            raise EvaluatorUnavailable(self.failed_start) from exc
        self._proc = proc
        self._loaded.clear()
        self.starts += 1
        try:
            self._write(pickle.dumps(list(sys.path), _PROTOCOL))
            reply = self._read(time.monotonic() + _STARTUP_TIMEOUT_S)
        except (EvaluatorUnavailable, TimeoutError):
            reply = None
        if reply != ("ready",):
            self._stop(kill=True)
            self.failed_start = "the evaluator process did not start (micrometrics not importable by sys.executable?)"
            raise EvaluatorUnavailable(self.failed_start)

    # -- evaluation (the monitor thread) --

    def prepare(self, metrics: Sequence["MicroMetric"]) -> list["MicroMetric"]:
        """Start the child if needed and load ``metrics`` into it; the ones it holds.

        Not bounded by a call's deadline: starting takes about half a second, loading a
        metric whatever its ``prepare()`` takes. Raises ``EvaluatorUnavailable``.
        """
        with self.lock:
            if not self._alive():
                self._stop()
                self._start()
            ready = []
            for m in metrics:
                token = self._token(m)
                if token in self._refused:
                    continue
                if token not in self._loaded:
                    self._load(m, token)
                    if not self._alive():
                        raise EvaluatorUnavailable(self._refused.get(token, "the evaluator process exited"))
                if self._loaded.get(token, "") is None:
                    ready.append(m)
            return ready

    def evaluate(
        self, metrics: Sequence["MicroMetric"], payload: bytes, deadline: float
    ) -> list[tuple["MicroMetric", "Result | None", float, Exception | None]]:
        """Evaluate prepared ``metrics`` on the pickled call, before ``deadline`` (monotonic).

        One (metric, result or None when it does not apply, seconds, the exception it
        raised or None) per metric, in order. Raises ``EvaluatorUnavailable`` (nothing
        evaluated: run them in-thread) or ``TimeoutError`` (the child was replaced).
        """
        with self.lock:
            if not self._alive():
                raise EvaluatorUnavailable("the evaluator process is not running")
            tokens = []
            for m in metrics:
                token = self._tokens.get(m)
                if token is None or self._loaded.get(token, "") is not None:
                    raise EvaluatorUnavailable(f"{m.name} is not loaded in the evaluator process")
                tokens.append(token)
            self._write(pickle.dumps(("eval", tokens), _PROTOCOL), payload)
            try:
                reply = self._read(deadline)
            except EvaluatorCrashed as crash:
                raise EvaluatorCrashed(crash.reason, metrics) from None
            if reply[0] == "unreadable":
                raise EvaluatorUnavailable(reply[1])
            return [
                (metric, result, took, remote_exception(*error) if error is not None else None)
                for metric, (result, took, error) in zip(metrics, reply[1])
            ]

    def _token(self, metric: "MicroMetric") -> int:
        token = self._tokens.get(metric)
        if token is None:
            token = self._next_token
            self._next_token += 1
            self._tokens[metric] = token
        return token

    def _load(self, metric: "MicroMetric", token: int) -> None:
        try:
            blob = pickle.dumps(metric, _PROTOCOL)
        except Exception as exc:
            self._loaded[token] = f"not picklable: {type(exc).__name__}: {exc}"
            return
        self._write(pickle.dumps(("load", token, blob), _PROTOCOL))
        try:
            reply = self._read(time.monotonic() + _STARTUP_TIMEOUT_S)  # loading language profiles takes a while
        except EvaluatorCrashed as crash:
            self._refused[token] = f"{metric.name}: its prepare() crashed the evaluator process ({crash.reason})"
            raise EvaluatorCrashed(crash.reason, (metric,)) from None
        except TimeoutError:
            # Its prepare() hangs: the child was replaced, and this metric stays in-thread from now on.
            self._refused[token] = f"{metric.name}: prepare() did not return within {_STARTUP_TIMEOUT_S:g}s"
            return
        self._loaded[token] = reply[2]

    def _send_quietly(self, message: Any) -> None:
        try:
            self._write(pickle.dumps(message, _PROTOCOL))
        except Exception:
            self._stop(kill=True)

    def _write(self, *frames: bytes) -> None:
        """Send ``frames`` (each length-prefixed) in one write."""
        assert self._proc is not None and self._proc.stdin is not None
        try:
            _write_frames(self._proc.stdin.fileno(), *frames)
        except OSError as exc:
            self._stop(kill=True)
            raise EvaluatorUnavailable(f"the evaluator process is gone: {exc}") from exc

    def _read(self, deadline: float) -> Any:
        """The next reply; one select and one read for a typical (small) reply."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buf = self._pending
        while True:
            if len(buf) >= _HEADER.size:
                size = _HEADER.size + _HEADER.unpack_from(buf)[0]
                if len(buf) >= size:
                    self._pending = buf[size:]
                    return pickle.loads(memoryview(buf)[_HEADER.size : size])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self._stop(kill=True)
                raise TimeoutError("the evaluator process did not answer within the deadline")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self._stop(kill=True)
                raise EvaluatorCrashed(f"the evaluator process {_exit_reason(code)}")
            buf = buf + chunk if buf else chunk


def _frame(data: bytes) -> bytes:
    return _HEADER.pack(len(data)) + data


def _write_frames(fd: int, *frames: bytes) -> None:
    """Write ``frames``, each length-prefixed, in one go (both ends of the pipe use it)."""
    view = memoryview(b"".join(map(_frame, frames)))
    while view:
        view = view[os.write(fd, view) :]


def evaluator_pid() -> int | None:
    """The pid of this process's evaluator process, when one runs (benchmarks read its CPU and memory)."""
    ev = _shared
    return ev.pid if ev is not None else None


_shared: EvaluatorProcess | None = None
_shared_lock = threading.Lock()


def shared() -> EvaluatorProcess:
    """This process's evaluator (one per application process, shared by successive runtimes)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EvaluatorProcess()
        return _shared


def _after_fork_in_child() -> None:
    # The forked child must not talk to its parent's evaluator: drop our copies of its
    # pipes (the parent's child keeps running for the parent) and start afresh on use.
    global _shared
    ev, _shared = _shared, None
    if ev is not None and ev._proc is not None:
        for f in (ev._proc.stdin, ev._proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        ev._proc = None
    if ev is not None and ev._idle_timer is not None:
        ev._idle_timer = None


def _close_at_exit() -> None:
    ev = _shared
    if ev is not None:
        ev.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)


# ---- child side -------------------------------------------------------------------------


def _picklable(answer: tuple) -> tuple:
    """An answer whose result does not pickle (a metric's odd details) becomes an ``error`` result."""
    try:
        pickle.dumps(answer, _PROTOCOL)
        return answer
    except Exception as bad:
        from micrometrics.metric import Result

        return Result("error", explanation=f"result not picklable: {bad}"[:500]), answer[1], (type(bad).__name__, str(bad)[:300])


def child_main() -> None:
    """The evaluator process's loop: load metrics, evaluate calls, answer in order."""
    import signal

    from micrometrics.evaluation import evaluate_catching
    from micrometrics.metric import CallView
    from micrometrics.records import Call

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)  # a metric's print() must not corrupt the protocol
    sys.stdout = sys.stderr

    def send(message: Any) -> None:
        _write_frames(out_fd, pickle.dumps(message, _PROTOCOL))

    def read_exact(n: int) -> bytes | None:
        chunks = []
        while n > 0:
            chunk = os.read(0, min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive() -> bytes | None:
        header = read_exact(_HEADER.size)
        return None if header is None else read_exact(_HEADER.unpack(header)[0])

    metrics: dict[int, Any] = {}
    send(("ready",))
    while True:
        data = receive()
        if data is None:
            return
        message = pickle.loads(data)
        kind = message[0]
        if kind == "load":
            _, token, blob = message
            try:
                metric = pickle.loads(blob)
                metric.prepare()
                metrics[token] = metric
                send(("loaded", token, None))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, never fatal here
                send(("loaded", token, f"{type(exc).__name__}: {exc}"[:300]))
        elif kind == "drop":
            metrics.pop(message[1], None)
        elif kind == "eval":
            payload = receive()
            if payload is None:
                return
            try:
                record, attempt, context, retrieved = pickle.loads(payload)
            except Exception as exc:
                send(("unreadable", f"{type(exc).__name__}: {exc}"[:300]))
                continue
            view = CallView(record, Call(record=record, attempt=attempt, context=context, retrieved_documents=retrieved))
            answers = []
            for token in message[1]:
                result, took, exc = evaluate_catching(metrics[token], view)
                error = (type(exc).__name__, str(exc)[:300]) if exc is not None else None
                answers.append((result, took, error))
            try:
                send(("done", answers))  # pickled before anything is written
            except Exception:
                send(("done", [_picklable(answer) for answer in answers]))
