"""Process-safe metrics for the evaluator-process tests (importable by the child: tests/ is on sys.path)."""

from __future__ import annotations

import os
import threading
import time

from micrometrics import MicroMetric, Result


class WhereEvaluated(MicroMetric):
    """Reports the pid of the process that evaluated it."""

    name = "where"
    process_safe = True

    def evaluate(self, call):
        return Result("pass", details={"pid": os.getpid(), "chars": len(call.output_text)})


class RaisesInside(MicroMetric):
    name = "raises_inside"
    process_safe = True

    def evaluate(self, call):
        return {}["no such key"]


class HangsOnce(MicroMetric):
    """Hangs on the first call it sees in a process (a marker file tells later processes apart)."""

    name = "hangs_once"
    process_safe = True

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def evaluate(self, call):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            time.sleep(60)
        return Result("pass", details={"pid": os.getpid()})


class Chatty(MicroMetric):
    """Prints to stdout, which in the evaluator process must not corrupt the pipe."""

    name = "chatty"
    process_safe = True

    def evaluate(self, call):
        print("evaluating", call.model, flush=True)
        return Result("pass", details={"pid": os.getpid()})


class HoldsALock(MicroMetric):
    """Claims process safety but does not pickle: evaluated in-thread instead."""

    name = "holds_a_lock"
    process_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def evaluate(self, call):
        with self.lock:
            return Result("pass", details={"pid": os.getpid()})


class Segfaults(MicroMetric):
    """Kills the process evaluating it with SIGSEGV, as a broken C extension would."""

    name = "segfaults"
    process_safe = True

    def evaluate(self, call):
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)  # the signal is delivered asynchronously
        return Result("pass")
