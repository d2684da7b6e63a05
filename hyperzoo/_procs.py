"""Worker processes that do not outlive their parent.

A pool worker blocked on its task queue does not notice that the parent was killed (``kill -9``, OOM killer):
it would stay behind as an orphan. :func:`init_pool_worker`, given as a pool's ``initializer``, makes each worker
exit as soon as its parent is gone: at once on Linux (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) and, everywhere, within
:data:`POLL_S` seconds (a daemon thread that watches ``os.getppid()``). Workers also ignore Ctrl-C: the parent
handles it (it shuts the pool down and leaves resumable state), so one Ctrl-C gives one message, not one traceback
per worker.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["POLL_S", "DeferredInterrupt", "init_pool_worker", "watch_parent"]

POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def watch_parent(poll_s: float = POLL_S) -> None:
    """Ends this process (``os._exit``) once the process that started it has died.

    Call it first thing in a worker process (a pool ``initializer``).
    """
    known = multiprocessing.parent_process()  # the pid the pool started us from (None outside a pool)
    parent = known.pid if known is not None and known.pid is not None else os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # best effort: the polling thread below covers every platform
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def poll() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:  # re-parented: the parent is gone
                os._exit(1)

    threading.Thread(target=poll, name="hyperzoo-watch-parent", daemon=True).start()


def init_pool_worker(then: str | None = None) -> None:
    """Pool ``initializer``: exit with the parent (:func:`watch_parent`) and leave Ctrl-C to the parent.

    Args:
        then: ``"module:function"``, a further initializer to run afterwards. Give heavy initializers this way
            (``initializer=init_pool_worker, initargs=("hyperzoo.graphs.generate:_init_worker",)``): a spawned
            worker imports the initializer's module before calling it, and importing torch takes seconds during
            which the worker would not yet be watching its parent.
    """
    watch_parent()
    with contextlib.suppress(ValueError):  # not the main thread (cannot happen in a pool worker)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if then:
        module, _, name = then.partition(":")
        getattr(importlib.import_module(module), name)()


class DeferredInterrupt:
    """Ctrl-C as a flag that :meth:`check` raises as ``KeyboardInterrupt`` at a safe point.

    Python raises ``KeyboardInterrupt`` wherever the main thread is, including inside an object finalizer, where it
    is printed and swallowed and the command runs on. A loop that waits on workers installs this handler (main
    thread only; elsewhere it changes nothing) and calls :meth:`check` between steps. A second Ctrl-C raises at once.
    """

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> DeferredInterrupt:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def check(self) -> None:
        """Raises ``KeyboardInterrupt`` if Ctrl-C was pressed since :meth:`__enter__`."""
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
