"""Where monitors run in the application: one bounded worker thread, with a watchdog for metrics that hang.

The caller pays an enqueue; the span of the call stays open until its results are written,
then ends with the call's true end time. Full queue: the work is dropped and counted, the
caller never waits. Finished results go to the callbacks given at construction: this module
knows neither the runtime nor OpenTelemetry.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

from micrometrics import evaluator_process, internal_errors
from micrometrics.evaluation import evaluate
from micrometrics.metric import (
    CallView, MicroMetric, Result, mark_monitor_thread, on_monitor_thread, restart_slice, set_monitor_backlog, yield_point,
)

if TYPE_CHECKING:
    from micrometrics.records import Call

logger = logging.getLogger("micrometrics")

DEFAULT_MAX_QUEUE = 10_000
DEFAULT_DEADLINE_S = 2.0
_STOP = object()

#: ``on_done(call, results)``: the call's monitors ran (or timed out); results are (metric, result, seconds).
Done = Callable[["Call", list], None]
#: ``on_skipped(call, results so far, metrics never run)``: shutdown left no time to evaluate the rest.
Skipped = Callable[["Call", list, Sequence[MicroMetric]], None]


def _weak(callback: Callable) -> Callable[[], Callable | None]:
    """The worker's threads outlive nothing they reference: a bound method is held weakly."""
    try:
        return weakref.WeakMethod(callback)  # type: ignore[arg-type]
    except TypeError:  # a plain function
        return lambda: callback


class MetricQuarantined(Exception):
    """A monitor hung past the deadline or crashed the evaluator process: it is not run again by
    this runtime (counted under this type in ``micrometrics.internal.errors``, warned about once)."""


class _Job:
    __slots__ = ("call", "metrics", "done", "lock", "results", "position", "running", "on_done", "on_skipped")

    def __init__(self, call: "Call", metrics: list[MicroMetric], on_done: Done | None = None, on_skipped: Skipped | None = None) -> None:
        self.call = call
        #: Strong: a queued call's span must still end after the app dropped its handle (the worker's are weak).
        self.on_done = on_done
        self.on_skipped = on_skipped
        self.metrics = metrics
        self.done = False
        self.lock = threading.Lock()
        self.results: list[tuple[MicroMetric, Result, float]] = []
        self.position = 0  # metrics evaluated (or skipped) so far
        self.running: MicroMetric | None = None  # the metric evaluating in this thread right now


#: Live workers; one fork hook for all of them (os.register_at_fork cannot be undone).
_workers: "weakref.WeakSet[MonitorWorker]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        worker._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


#: While calls keep coming, the worker polls its inbox this often rather than being woken by
#: each call (a cross-thread wake-up is a syscall on the caller's path, dearer still in a VM);
#: after ``_ACTIVE_POLLS`` empty polls (100 ms) it sleeps until the next call wakes it. Every
#: poll takes the interpreter lock from the callers and runs what came in with cold caches:
#: 20 ms rather than 5 ms cut the calling thread's added CPU by about 25 µs per call in a tight
#: loop (issue 21). ``flush()`` wakes it at once.
_POLL_S = 0.02
_ACTIVE_POLLS = 5
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

    def wake(self) -> None:
        """Look at the inbox now, polling or asleep (flush: a caller waits)."""
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
                if self._wake.wait(_POLL_S):  # flush() wakes a polling worker
                    self._wake.clear()
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
        self,
        on_done: Done,
        on_skipped: Skipped,
        max_queue: int = DEFAULT_MAX_QUEUE,
        deadline_s: float = DEFAULT_DEADLINE_S,
        evaluator: str = "thread",
        enter: Callable[["Call"], Any] | None = None,
        leave: Callable[[Any], None] | None = None,
    ) -> None:
        self._on_done = _weak(on_done)
        #: ``enter(call) -> token`` before the call's metrics evaluate here, ``leave(token)`` after: the runtime makes the
        #: call's span current, so that the calls a metric makes are its children (this module knows no OpenTelemetry).
        self._enter, self._leave = enter, leave
        self._on_skipped = _weak(on_skipped)
        self.max_queue = max_queue
        self.deadline_s = deadline_s
        self.isolate = evaluator == "process"
        # Metric -> why it is not run again: it hung (a thread stays stuck in it) or crashed the
        # evaluator process. Kept across fork: it would hang or crash the child as well.
        self._quarantined: dict[MicroMetric, str] = {}
        # Metrics evaluated together when the evaluator process died: each runs alone until cleared.
        self._suspects: set[MicroMetric] = set()
        # Threads left stuck in a metric: while one lives, a hang no metric explains is not replaced again.
        self._stuck: list[threading.Thread] = []
        self._reset()
        _workers.add(self)

    def _reset(self) -> None:
        self._queue = _Inbox()
        # itertools.count's next() is atomic under the GIL: a lock-free bound.
        self._submitted = itertools.count(1)
        self._last_submitted = 0
        # The last call submitted by a monitor itself (an LLM judge's call): flush waits for it too.
        self._last_nested = 0
        self._processed = 0
        self._skipped = 0  # queued calls ended unevaluated at shutdown (only the shutting-down thread counts)
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
        self._evaluator: evaluator_process.EvaluatorProcess | None = None
        self._sent: "weakref.WeakSet[MicroMetric]" = weakref.WeakSet()

    def _reset_after_fork(self) -> None:
        # Threads do not survive fork: the child starts its own worker on first use.
        self._reset()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def pending(self) -> int:
        return self._last_submitted - self._processed - self._skipped

    def submit(self, call: "Call", metrics: list[MicroMetric]) -> bool:
        """Enqueue without blocking; False (and counted, when it had monitors) when the queue is full or closed."""
        if self._closed or self._last_submitted - self._processed >= self.max_queue:
            if metrics:
                self._dropped += 1
            return False
        on_done = self._on_done()
        if on_done is None:
            return False  # what built this worker is gone
        if self._thread is None:
            self._start()
        self._last_submitted = number = next(self._submitted)
        if on_monitor_thread():
            self._last_nested = number
        self._queue.put(_Job(call, metrics, on_done, self._on_skipped()))
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
            except BaseException as exc:  # noqa: BLE001 - nothing a metric raises may end this thread
                internal_errors.report("evaluation", exc)
                self._abandon(job)
            if generation != self._generation:
                # The watchdog replaced this thread while it was stuck; it already counted the job.
                return
            self._busy = None
            self._busy_event.clear()
            job = remote = None  # an idle thread holds no call's content (before flush() can return)
            self._processed += 1

    def _ready_remote(self, job: _Job) -> list[MicroMetric]:
        """The job's metrics the evaluator process will take; starting it (or loading a
        metric into it) happens here, before the job's deadline starts to run."""
        chosen = [m for m in job.metrics if m.process_safe and m not in self._quarantined]
        if not chosen:
            return chosen
        try:
            if self._evaluator is None:
                ev = evaluator_process.shared()
                ev.acquire()
                self._evaluator = ev
            ready = self._evaluator.prepare(chosen)
            self._sent.update(ready)
            return ready
        except evaluator_process.EvaluatorCrashed as crash:
            # Its prepare() killed the child: it would kill the application in-thread.
            for m in crash.metrics:
                self._quarantine(m, f"its prepare() crashed the evaluator process ({crash.reason})")
            return []
        except evaluator_process.EvaluatorUnavailable:
            return []  # this platform or setup cannot: in-thread, as if evaluator="thread"
        except Exception as exc:
            internal_errors.report("evaluation", exc)
            return []

    def _evaluate_remote(self, job: _Job, remote: list[MicroMetric]) -> dict[int, tuple[Result | None, float]]:
        """Results by id(metric) of the metrics the evaluator process evaluated; missing ones run here."""
        ev = self._evaluator
        if ev is None:
            return {}
        try:
            payload = evaluator_process.snapshot(job.call)
        except Exception:
            # Something in the call does not pickle: evaluate it in-thread, all but a suspect of a crash.
            skipped = Result("error", explanation="not evaluated: the call does not pickle, and this metric may crash the process")
            return {id(m): (skipped, 0.0) for m in remote if m in self._suspects}
        # Slightly inside the watchdog's deadline, so that this thread reports the timeout itself.
        deadline = self._busy_since + self.deadline_s * 0.95
        # Metrics that were in a batch when the child died run alone, so that a second crash names its metric.
        batches = [[m for m in remote if m not in self._suspects]] + [[m] for m in remote if m in self._suspects]
        out: dict[int, tuple[Result | None, float]] = {}
        crashed = False
        for batch in batches:
            if not batch:
                continue
            suspect = batch[0] in self._suspects
            if crashed:
                # A metric of this call killed the child: start another for the rest, off the deadline's clock.
                wanted = batch
                try:
                    batch = ev.prepare(wanted)
                except evaluator_process.EvaluatorCrashed as crash:
                    for m in crash.metrics:
                        self._quarantine(m, f"its prepare() crashed the evaluator process ({crash.reason})")
                    batch = []
                except Exception:
                    batch = []
                if len(batch) < len(wanted):
                    # Not evaluated this time; never in-thread, as any of them may be the one that crashes.
                    skipped = Result("error", explanation="not evaluated: the evaluator process was restarting")
                    out.update({id(m): (skipped, 0.0) for m in wanted if m not in batch})
                if not batch:
                    continue
                self._busy_since = time.monotonic()
                deadline = self._busy_since + self.deadline_s * 0.95
            try:
                answers = ev.evaluate(batch, payload, deadline)
                restart_slice()  # it waited for the child without the lock
            except TimeoutError:
                late = Result("timeout", explanation=f"not finished within {self.deadline_s:g}s")
                out.update({id(m): (late, self.deadline_s) for m in batch})
                continue
            except evaluator_process.EvaluatorCrashed as crash:
                out.update(self._crashed(crash, batch))
                crashed = True
                continue
            except evaluator_process.EvaluatorUnavailable:
                if suspect:  # never in-thread: it may be the one that kills the process
                    out[id(batch[0])] = (Result("error", explanation="not evaluated: the evaluator process is restarting"), 0.0)
                continue  # the others run in-thread
            for metric, result, took, exc in answers:
                if exc is not None:
                    internal_errors.report("evaluation", exc)
                out[id(metric)] = (result, took)
            self._suspects.difference_update(batch)
        return out

    def _crashed(self, crash: "evaluator_process.EvaluatorCrashed", batch: list[MicroMetric]) -> dict[int, tuple[Result | None, float]]:
        """The child died evaluating ``batch``: alone, the metric is quarantined; together, each becomes a suspect."""
        if len(batch) == 1:
            self._quarantine(batch[0], f"it crashed the evaluator process ({crash.reason})")
        else:
            self._suspects.update(batch)
        failed = Result("error", explanation=f"{crash.reason} while evaluating {', '.join(m.name for m in batch)}")
        return {id(m): (failed, 0.0) for m in batch}

    def _quarantine(self, metric: MicroMetric, why: str) -> None:
        """Never run ``metric`` again in this runtime; warned once and counted."""
        if metric in self._quarantined:
            return
        self._quarantined[metric] = f"quarantined: {why}; not run again until the next instrument()"
        self._suspects.discard(metric)
        internal_errors.report("evaluation", MetricQuarantined(metric.name))
        logger.warning("micrometrics: monitor %r quarantined: %s; its later results are 'error' (quarantined)", metric.name, why)

    def _evaluate(self, job: _Job, remote: Sequence[MicroMetric] = ()) -> None:
        view = CallView(job.call.record, job.call)
        done = self._evaluate_remote(job, list(remote)) if remote else {}
        quarantined = self._quarantined
        token = None
        try:
            for metric in job.metrics:
                if job.done:
                    return
                if id(metric) in done:
                    result, duration = done[id(metric)]
                elif metric in quarantined:
                    result, duration = Result("error", explanation=quarantined[metric]), 0.0
                else:
                    if token is None and self._enter is not None:
                        token = self._enter(job.call)
                    yield_point()
                    job.running = metric
                    result, duration = evaluate(metric, view)
                    job.running = None
                if result is not None:
                    job.results.append((metric, result, duration))
                job.position += 1
        finally:
            if token is not None and self._leave is not None:
                self._leave(token)
        yield_point()
        self._complete(job)

    def _abandon(self, job: _Job) -> None:
        """Evaluation itself broke: still end the span, with the results so far."""
        try:
            self._complete(job)
        except Exception as exc:
            internal_errors.report("emission", exc)
            try:
                job.call.span.end(end_time=job.call.end_time_ns)
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
                limit = self._limit(m)
                results.append((m, Result("timeout", explanation=f"not finished within {limit:g}s"), limit))
        on_done, job.on_done, job.on_skipped = job.on_done, None, None
        on_done(job.call, results)

    def _watch(self) -> None:
        nap = self._closing.wait
        while not self._closed:
            job = None  # waiting, the watchdog holds no call's content
            self._busy_event.wait()
            job = self._busy
            if job is None:
                nap(0.01)
                continue
            limit = self._limit(job.running)
            overdue = time.monotonic() - self._busy_since - limit
            if overdue < 0:
                nap(min(-overdue + 0.001, self.deadline_s / 4))
                continue
            if self._busy is job:
                hung = job.running
                self._stuck = [t for t in self._stuck if t.is_alive()]
                if hung is None and self._stuck:
                    # Stuck outside any metric (emission) while another thread is stuck too: no new
                    # thread per call; the queue waits for one of them, and fills and drops if it must.
                    nap(self.deadline_s / 4)
                    continue
                # A metric hangs: finish the call with 'timeout', quarantine the metric (so no
                # later call strands another thread in it) and hand the queue to a fresh thread.
                if hung is not None:
                    self._quarantine(hung, f"it did not finish within {limit:g}s")
                self._complete(job, timed_out=True)
                with self._start_lock:
                    if self._thread is not None:
                        self._stuck.append(self._thread)
                    self._busy = None
                    self._busy_event.clear()
                    self._processed += 1
                    self._generation += 1
                    t = threading.Thread(target=self._run, args=(self._generation,), name="micrometrics-monitors", daemon=True)
                    self._thread = t
                    t.start()

    def _limit(self, metric: MicroMetric | None) -> float:
        """How long a call's evaluation may run while ``metric`` evaluates: the runtime's deadline, or the metric's own
        when longer (a metric that waits for a model: ``MicroMetric.deadline_s``)."""
        own = getattr(metric, "deadline_s", None)
        return own if isinstance(own, (int, float)) and own > self.deadline_s else self.deadline_s

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every call submitted so far is evaluated and emitted, with the calls their monitors made."""
        target = self._last_submitted
        deadline = time.monotonic() + timeout_s
        if self._processed + self._skipped < target:
            self._queue.wake()
        while self._processed + self._skipped < target:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
            target = max(target, self._last_nested)  # made while evaluating the calls waited for: part of them
        return True

    def close(self) -> None:
        """Take no more calls: from now on ``submit`` refuses and the caller finishes its call inline."""
        self._closed = True

    def skip_pending(self, limit: int) -> int:
        """End up to ``limit`` queued calls now, unevaluated (their monitors read ``skipped``); how many were ended."""
        items = self._queue._items
        n = 0
        while n < limit:
            try:
                job = items.popleft()
            except IndexError:
                break
            if job is _STOP:
                items.appendleft(job)
                break
            self._skip(job)
            n += 1
        self._skipped += n
        return n

    def skip_busy(self) -> None:
        """End the call the monitor thread is evaluating with what it has so far (a slow metric must not hold shutdown)."""
        job = self._busy
        if job is not None:
            self._skip(job)

    def _skip(self, job: _Job) -> None:
        with job.lock:
            if job.done:
                return
            job.done = True
            results = list(job.results)
            on_skipped, job.on_done, job.on_skipped = job.on_skipped, None, None
        try:
            on_skipped(job.call, results, job.metrics[job.position :])
        except Exception as exc:
            internal_errors.report("emission", exc)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        ok = self.flush(timeout_s)
        self._closed = True
        self.stop()
        return ok

    def stop(self) -> None:
        """Stop the monitor thread and the watchdog once the queue is empty, release the evaluator process."""
        self._closed = True
        if self._thread is not None:
            self._last_submitted = next(self._submitted)
            self._queue.put(_STOP)
        self._closing.set()
        self._busy_event.set()  # release the watchdog
        ev, self._evaluator = self._evaluator, None
        if ev is not None:
            ev.release(list(self._sent))
