"""Worker processes end when the shipper that started them dies: a SIGKILL of the parent must
not leave idle workers behind. On Linux the kernel sends SIGKILL when the parent exits
(``PR_SET_PDEATHSIG``, for the fork start method); everywhere a daemon thread also watches the
parent's pid and start time (the forkserver is a worker's real parent, not the shipper)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def _start_time(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()[19]


def _alive(pid: int, started: bytes | None) -> bool:
    if os.path.isdir("/proc"):
        return started is not None and _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kernel_signal_on_parent_death() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread still covers it


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a worker: exit at once when ``parent_pid`` is gone."""
    _kernel_signal_on_parent_death()
    started = _start_time(parent_pid)
    if not _alive(parent_pid, started):  # it died before the signal was armed
        os._exit(1)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(POLL_S):
            if not _alive(parent_pid, started):
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
