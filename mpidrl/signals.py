"""Clean stops: SIGTERM and SIGINT (what SLURM sends before a time limit, what Ctrl-C sends) become a
request to stop at the next round boundary, after a checkpoint; a second signal stops at once.

``mpidrl`` installs the handlers before anything else (:func:`install`), so a signal at any moment,
during start-up included, ends the run the same way: status ``interrupted``, exit status 128 + the
signal's number, no traceback.

A signal that follows the first within :data:`ECHO` seconds is taken for the same one: at a time limit
SLURM signals every process of a job while the launcher (srun, mpiexec) forwards the signal it got too, so
each rank receives it twice at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)
ECHO = 1.0
"""seconds within which a second signal is the first one delivered twice"""


class StopNow(BaseException):
    """A second signal: stop at once (the last checkpoint stays the consistent one)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped at once by a second signal {signum}")
        self.signum = signum


class StopRequest:
    """The signal received so far (0: none); a second one raises :class:`StopNow` where the program is."""

    def __init__(self) -> None:
        self.signum = 0
        self.first = 0.0

    def install(self) -> StopRequest:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if not self.signum:
            self.signum, self.first = signum, now
        elif now - self.first > ECHO:
            raise StopNow(signum)

    @property
    def exit_status(self) -> int:
        """128 + the signal's number (SIGTERM if none came)."""
        return 128 + int(self.signum or signal.SIGTERM)


REQUEST = StopRequest()
"""The process's stop request (installed by ``mpidrl``'s entry point)."""


def install() -> StopRequest:
    """Install the handlers of :data:`REQUEST`; returns it."""
    return REQUEST.install()


@contextlib.contextmanager
def handled() -> Iterator[StopRequest]:
    """:data:`REQUEST`'s handlers for the time of a block (a run started from Python), then the previous
    handlers again. The request starts afresh (an earlier run's signal does not stop this one). Outside
    the main thread, where Python allows no handlers, nothing is installed."""
    REQUEST.signum, REQUEST.first = 0, 0.0
    if threading.current_thread() is not threading.main_thread():
        yield REQUEST
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    REQUEST.install()
    try:
        yield REQUEST
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
