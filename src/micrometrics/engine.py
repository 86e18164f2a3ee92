"""The metric engine: evaluating micro metrics, on the request path (guards) or off it (monitors).

Monitors run on one bounded worker thread. The caller pays an enqueue; the span of
the call stays open until its results are written, then ends with the call's true
end time. Full queue: the work is dropped and counted, the caller never waits.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import random
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from micrometrics import isolation, safety
from micrometrics.metric import CallView, MicroMetric, Result, mark_monitor_thread, restart_slice, set_monitor_backlog, yield_point

if TYPE_CHECKING:
    from micrometrics.core import Runtime
    from micrometrics.records import CallRecord

logger = logging.getLogger("micrometrics")

DEFAULT_MAX_QUEUE = 10_000
DEFAULT_DEADLINE_S = 2.0
#: Where process-safe monitors run: "thread" (the monitor thread, the default) or "process" (the
#: evaluator process, see isolation.py).
EVALUATORS = ("thread", "process")
_STOP = object()


class MetricSuite:
    """The configured metrics, indexed by operation into guards and monitors."""

    def __init__(self, metrics: Sequence[MicroMetric]) -> None:
        self.metrics = tuple(metrics)
        self._guards: dict[str, tuple[MicroMetric, ...]] = {}
        self._monitors: dict[str, tuple[MicroMetric, ...]] = {}
        for m in self.metrics:
            target = self._guards if m.mode == "guard" else self._monitors
            for op in m.applies_to:
                target[op] = target.get(op, ()) + (m,)

    def guards(self, operation: str) -> tuple[MicroMetric, ...]:
        return self._guards.get(operation, ())

    def monitors(self, operation: str) -> tuple[MicroMetric, ...]:
        return self._monitors.get(operation, ())


def sampled(metrics: Iterable[MicroMetric]) -> list[MicroMetric]:
    rnd = random.random
    return [m for m in metrics if m.sample_rate >= 1.0 or (m.sample_rate > 0.0 and rnd() < m.sample_rate)]


def evaluate(metric: MicroMetric, view: CallView) -> tuple[Result | None, float]:
    """Run one metric; a metric that raises or returns garbage yields label ``error``
    (and is counted in ``micrometrics.internal.errors``); one that does not apply to the call yields None."""
    result, took, exc = evaluate_catching(metric, view)
    if exc is not None:
        # Counted in micrometrics.internal.errors and logged once, like every fault we catch.
        safety.report("evaluation", exc)
    return result, took


def evaluate_catching(metric: MicroMetric, view: CallView) -> tuple[Result | None, float, Exception | None]:
    """:func:`evaluate` without the reporting: (result, seconds, the exception the metric raised)."""
    t0 = time.perf_counter()
    exc: Exception | None = None
    try:
        if not metric.applies(view):
            return None, 0.0, None
        result = metric.evaluate(view)
        if not isinstance(result, Result):
            result = Result("error", explanation=f"{type(metric).__name__}.evaluate returned {type(result).__name__}, not micrometrics.Result")
    except Exception as caught:
        exc = caught
        # The message may quote the call's content (a parse error of the answer): kept apart, exported only with capture on.
        result = Result("error", explanation=f"{type(metric).__name__}.evaluate raised {type(caught).__name__}", error_message=str(caught)[:500])
    return result, time.perf_counter() - t0, exc


class _Job:
    __slots__ = ("record", "metrics", "done", "lock", "results", "position")

    def __init__(self, record: "CallRecord", metrics: list[MicroMetric]) -> None:
        self.record = record
        self.metrics = metrics
        self.done = False
        self.lock = threading.Lock()
        self.results: list[tuple[MicroMetric, Result, float]] = []
        self.position = 0  # metrics evaluated (or skipped) so far


#: Live workers; one fork hook for all of them (os.register_at_fork cannot be undone).
_workers: "weakref.WeakSet[MonitorWorker]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        worker._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


#: While calls keep coming, the worker polls its inbox this often rather than being woken by
#: each call (a cross-thread wake-up is a syscall on the caller's path, dearer still in a VM);
#: after ``_ACTIVE_POLLS`` empty polls it sleeps until the next call wakes it.
_POLL_S = 0.005
_ACTIVE_POLLS = 20
#: Pending calls beyond which the monitor thread stops napping at its yield points (it is behind).
_POLITE_BELOW = 64


class _Inbox:
    """FIFO of jobs whose producer wakes the consumer only when it sleeps for good."""

    __slots__ = ("_items", "_wake", "_sleeping")

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._sleeping = False

    def put(self, item: Any) -> None:
        self._items.append(item)
        if self._sleeping:
            self._wake.set()

    def get(self) -> Any:
        items = self._items
        polls = 0
        while True:
            try:
                return items.popleft()
            except IndexError:
                pass
            if polls < _ACTIVE_POLLS:
                polls += 1
                time.sleep(_POLL_S)
                restart_slice()
                continue
            # Say we sleep, then look once more: a put() in between either is seen here or wakes us.
            self._sleeping = True
            if not items:
                self._wake.wait()
            self._wake.clear()
            self._sleeping = False
            restart_slice()
            polls = 0


class MonitorWorker:
    """One daemon thread evaluating monitors, with a watchdog for metrics that hang."""

    def __init__(
        self, runtime: "Runtime", max_queue: int = DEFAULT_MAX_QUEUE, deadline_s: float = DEFAULT_DEADLINE_S, evaluator: str = "thread"
    ) -> None:
        self._runtime = weakref.proxy(runtime)
        self.max_queue = max_queue
        self.deadline_s = deadline_s
        self.isolate = evaluator == "process"
        self._reset()
        _workers.add(self)

    def _reset(self) -> None:
        self._queue = _Inbox()
        # itertools.count's next() is atomic under the GIL: a lock-free bound.
        self._submitted = itertools.count(1)
        self._last_submitted = 0
        self._processed = 0
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._busy: _Job | None = None
        self._busy_since = 0.0
        self._busy_event = threading.Event()
        self._closing = threading.Event()  # wakes the watchdog out of its naps at shutdown
        self._watchdog: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        # The evaluator process, once this worker used it, and the metrics it sent there.
        self._evaluator: isolation.EvaluatorProcess | None = None
        self._sent: "weakref.WeakSet[MicroMetric]" = weakref.WeakSet()

    def _reset_after_fork(self) -> None:
        # Threads do not survive fork: the child starts its own worker on first use.
        self._reset()

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def pending(self) -> int:
        return self._last_submitted - self._processed

    def submit(self, record: "CallRecord", metrics: list[MicroMetric]) -> bool:
        """Enqueue without blocking; False (and counted, when it had monitors) when the queue is full or closed."""
        if self._closed or self._last_submitted - self._processed >= self.max_queue:
            if metrics:
                self._dropped += 1
            return False
        if self._thread is None:
            self._start()
        self._last_submitted = next(self._submitted)
        self._queue.put(_Job(record, metrics))
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            self._generation += 1
            t = threading.Thread(target=self._run, args=(self._generation,), name="micrometrics-monitors", daemon=True)
            self._thread = t
            t.start()
            if self._watchdog is None:
                w = threading.Thread(target=self._watch, name="micrometrics-watchdog", daemon=True)
                self._watchdog = w
                w.start()

    def _run(self, generation: int) -> None:
        mark_monitor_thread()
        get = self._queue.get
        while True:
            job = get()
            if job is _STOP:
                self._processed += 1
                return
            remote = self._ready_remote(job) if self.isolate else ()
            set_monitor_backlog(self._last_submitted - self._processed > _POLITE_BELOW)
            self._busy = job
            self._busy_since = time.monotonic()
            self._busy_event.set()
            try:
                self._evaluate(job, remote)
            except Exception as exc:
                safety.report("evaluation", exc)
                self._abandon(job)
            if generation != self._generation:
                # The watchdog replaced this thread while it was stuck; it already counted the job.
                return
            self._busy = None
            self._busy_event.clear()
            self._processed += 1

    def _ready_remote(self, job: _Job) -> list[MicroMetric]:
        """The job's metrics the evaluator process will take; starting it (or loading a
        metric into it) happens here, before the job's deadline starts to run."""
        chosen = [m for m in job.metrics if m.process_safe]
        if not chosen:
            return chosen
        try:
            if self._evaluator is None:
                ev = isolation.shared()
                ev.acquire()
                self._evaluator = ev
            ready = self._evaluator.prepare(chosen)
            self._sent.update(ready)
            return ready
        except isolation.EvaluatorUnavailable:
            return []  # this platform or setup cannot: in-thread, as if evaluator="thread"
        except Exception as exc:
            safety.report("evaluation", exc)
            return []

    def _evaluate_remote(self, job: _Job, remote: list[MicroMetric]) -> dict[int, tuple[Result | None, float]]:
        """Results by id(metric) of the metrics the evaluator process evaluated; missing ones run here."""
        ev = self._evaluator
        if ev is None:
            return {}
        try:
            payload = isolation.snapshot(job.record)
        except Exception:
            return {}  # something in the call does not pickle: evaluate it in-thread
        # Slightly inside the watchdog's deadline, so that this thread reports the timeout itself.
        deadline = self._busy_since + self.deadline_s * 0.95
        try:
            answers = ev.evaluate(remote, payload, deadline)
            restart_slice()  # it waited for the child without the lock
        except TimeoutError:
            late = Result("timeout", explanation=f"not finished within {self.deadline_s:g}s")
            return {id(m): (late, self.deadline_s) for m in remote}
        except isolation.EvaluatorUnavailable:
            return {}
        out: dict[int, tuple[Result | None, float]] = {}
        for metric, result, took, exc in answers:
            if exc is not None:
                safety.report("evaluation", exc)
            out[id(metric)] = (result, took)
        return out

    def _evaluate(self, job: _Job, remote: Sequence[MicroMetric] = ()) -> None:
        view = CallView(job.record)
        done = self._evaluate_remote(job, list(remote)) if remote else {}
        for metric in job.metrics:
            if job.done:
                return
            if id(metric) in done:
                result, duration = done[id(metric)]
            else:
                yield_point()
                result, duration = evaluate(metric, view)
            if result is not None:
                job.results.append((metric, result, duration))
            job.position += 1
        yield_point()
        self._complete(job)

    def _abandon(self, job: _Job) -> None:
        """Evaluation itself broke: still end the span, with the results so far."""
        try:
            self._complete(job)
        except Exception as exc:
            safety.report("emission", exc)
            try:
                job.record.span.end(end_time=job.record.end_time_ns)
            except Exception:
                pass

    def _complete(self, job: _Job, timed_out: bool = False) -> None:
        with job.lock:
            if job.done:
                return
            job.done = True
            results = list(job.results)
        if timed_out:
            for m in job.metrics[job.position :]:
                results.append((m, Result("timeout", explanation=f"not finished within {self.deadline_s:g}s"), self.deadline_s))
        try:
            self._runtime.complete_monitored(job.record, results)
        except ReferenceError:
            pass

    def _watch(self) -> None:
        nap = self._closing.wait
        while not self._closed:
            self._busy_event.wait()
            job = self._busy
            if job is None:
                nap(0.01)
                continue
            overdue = time.monotonic() - self._busy_since - self.deadline_s
            if overdue < 0:
                nap(min(-overdue + 0.001, self.deadline_s / 4))
                continue
            if self._busy is job:
                # A metric hangs: finish the call with 'timeout' and hand the queue to a fresh thread.
                self._complete(job, timed_out=True)
                with self._start_lock:
                    self._busy = None
                    self._busy_event.clear()
                    self._processed += 1
                    self._generation += 1
                    t = threading.Thread(target=self._run, args=(self._generation,), name="micrometrics-monitors", daemon=True)
                    self._thread = t
                    t.start()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every call submitted so far is evaluated and emitted."""
        target = self._last_submitted
        deadline = time.monotonic() + timeout_s
        while self._processed < target:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        ok = self.flush(timeout_s)
        self._closed = True
        if self._thread is not None:
            self._last_submitted = next(self._submitted)
            self._queue.put(_STOP)
        self._closing.set()
        self._busy_event.set()  # release the watchdog
        ev, self._evaluator = self._evaluator, None
        if ev is not None:
            ev.release(list(self._sent))
        return ok
