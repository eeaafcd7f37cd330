"""Worker processes that end with the process that started them, so none is left orphaned.

A scan or a server killed with SIGKILL cannot stop its pool, and its workers, each holding
its models, would idle on unnoticed: they wait on a task queue that never closes, since each
holds both of its ends. `exit_with_parent`, called first in every pool initializer (scan's
and the service's), makes a worker leave on its own, by two means:

- Linux's parent-death signal (prctl PR_SET_PDEATHSIG) tells the worker at once. Linux sends
  it when the *thread* that started the worker ends, not the process, and a pool starts its
  workers from whichever thread submits (the service may rebuild a pool from a short-lived
  request thread), so the signal is not lethal in itself: its handler exits only when the
  parent process is really gone (os.getppid() changed).
- A watchdog thread that polls os.getppid() for the same change: the only means on systems
  without prctl, and the one that acts while the worker's main thread sits in a long native
  call (Python runs signal handlers between bytecodes only).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

# How often the watchdog looks at the parent: the most an orphan lives when the signal cannot act.
PARENT_POLL_SECONDS = 0.5
# Status of a worker that left because its parent died.
ORPHAN_EXIT_CODE = 1

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_watching = False


def exit_with_parent() -> None:
    """Make this process exit as soon as its parent process dies. Call it once, early, in a pool
    initializer (in the worker's main thread, where signal handlers can be set); repeats do nothing."""
    global _watching
    if _watching:
        return
    _watching = True
    parent = os.getppid()
    _arm_parent_death_signal(parent)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()
    if os.getppid() != parent:  # died before the watch began: nothing will tell us again
        os._exit(ORPHAN_EXIT_CODE)


def _watch(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(ORPHAN_EXIT_CODE)


def _arm_parent_death_signal(parent: int) -> None:
    """Ask Linux for SIGUSR2 when the parent goes; elsewhere (or without libc) the watchdog alone acts."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

        def on_signal(signum: int, frame: object) -> None:
            if os.getppid() != parent:  # the process is gone, not just the thread that started us
                os._exit(ORPHAN_EXIT_CODE)

        signal.signal(signal.SIGUSR2, on_signal)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR2), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError, ValueError) as err:  # ValueError: not the main thread
        log.debug("no parent-death signal (%s): the watchdog alone ends this worker with its parent", err)
