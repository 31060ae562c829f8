# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller process and the processes it started: is a lock holder still alive, which of its
workers and modules still run, and what a worker does once its controller is gone.

Not ledger code: the ledger's lock asks it (is the holder gone? do its processes still run?), the
migration_tracker callback marks the controller before its first worker forks, and the guard asks
whether this worker's controller is alive. Linux (/proc, abstract Unix sockets); elsewhere the
answers are the safe ones (alive, no processes found).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import ENV_CONTROLLER_PID


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, TypeError, ValueError):
        return True
    return True


def _pid_started_at(pid):
    """When process ``pid`` started (epoch seconds, Linux /proc), or None when unknown."""
    try:
        with open(f'/proc/{int(pid)}/stat', encoding='ascii', errors='replace') as handle:
            ticks = int(handle.read().rsplit(')', 1)[1].split()[19])
        with open('/proc/stat', encoding='ascii') as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith('btime '))
        return boot + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError, StopIteration, TypeError):
        return None


def pid_is_holder(pid, since):
    """Whether ``pid`` still runs and is the process that took a lock at ``since`` (epoch seconds):
    a pid reused by a process started after the lock was taken is not the holder."""
    if not pid_alive(pid):
        return False
    started = _pid_started_at(pid)
    if started is None or since is None:
        return True
    return started <= float(since) + 1.0


# Ansible forks its workers from the controller without exec: their /proc environ is the one the
# controller was started with, which does not name it. What they do inherit is every open descriptor:
# the controller binds an abstract Unix socket named after its pid, and the socket lives on until the
# last process holding it (the controller or a worker forked from it) exits. Linux only.
CONTROLLER_MARK = 'autonomi.network_migration/controller/'
_marks_held = {}


def hold_controller_mark():
    """Called by the controller before it forks any worker; idempotent.

    Binds its mark (see above), so that the workers of a killed controller keep its lock while they
    run, and makes every worker it forks watch for that moment (``_orphan_watch``): a worker whose
    controller is gone ends once its task is done, instead of blocking for ever on the delivery of its
    result to a controller that no longer reads. False when the platform has no abstract sockets: only
    the processes the workers execute are then found."""
    pid = os.getpid()
    if pid in _marks_held:
        return True
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except (OSError, AttributeError):
        return False
    # A reused pid whose previous owner's workers still run: a second, distinct name.
    for name in (f'{CONTROLLER_MARK}{pid}', f'{CONTROLLER_MARK}{pid}/{time.time_ns()}'):
        try:
            sock.bind('\0' + name)
        except OSError:
            continue
        _marks_held[pid] = sock
        os.register_at_fork(after_in_child=lambda: _start_orphan_watch(pid))
        return True
    sock.close()
    return False


def _start_orphan_watch(controller):
    if os.getppid() != controller:   # forked by a worker, not by the controller
        return
    threading.Thread(target=_orphan_watch, args=(controller, threading.get_ident()), daemon=True,
                     name='orphan-watch').start()


def _delivery(frame):
    """The frame of ``put`` of a multiprocessing queue the worker's main thread is in, or None: its
    task is done and its result (or a display message) is being handed to the controller (Ansible's
    FinalQueue)."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == 'put' and code.co_filename.replace('\\', '/').endswith('/multiprocessing/queues.py'):
            return frame
        frame = frame.f_back
    return None


def _orphan_watch(controller, main, interval=0.5):
    """In a worker: once the controller is gone (the worker was re-parented), end the worker when its
    main thread is blocked handing something to the controller (the same call seen twice, so a quick
    display message in the middle of a task is not taken for it). Nobody reads that pipe any more:
    once it is full (64 KiB, a few dozen results) the worker would wait for ever and, holding the mark,
    keep the dead controller's lock. A worker still in its task (a module in flight, the ledger writes
    after it) finishes that first."""
    blocked = None
    while True:
        time.sleep(interval)
        if os.getppid() == controller:
            continue
        frame = sys._current_frames().get(main)
        if frame is None:
            os._exit(0)
        delivery = _delivery(frame)
        if delivery is not None and delivery is blocked:
            os._exit(0)
        blocked = delivery


def _mark_inodes(pid):
    """Socket inodes of controller ``pid``'s mark that some process still holds."""
    name = f'@{CONTROLLER_MARK}{pid}'
    inodes = set()
    try:
        with open('/proc/net/unix', encoding='utf-8', errors='replace') as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if len(fields) >= 8 and (fields[7] == name or fields[7].startswith(name + '/')):
                    inodes.add(f'socket:[{fields[6]}]')
    except OSError:
        pass
    return inodes


def _holds_any(entry, targets):
    try:
        fds = os.listdir(f'/proc/{entry}/fd')
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f'/proc/{entry}/fd/{fd}') in targets:
                return True
        except OSError:
            continue
    return False


def controller_processes(pid):
    """Live processes of this host that belong to controller ``pid``: the processes it forked
    (Ansible's workers hold its mark, see hold_controller_mark) and the ones they executed (modules,
    and the commands those run: the callback exports ANT_MIGRATION_CONTROLLER_PID before the first
    worker forks, so their environment names it).

    A killed controller's workers outlive it (each runs in its own session) and go on with the task
    they were given; its lock must not be taken over while any of them runs. Linux (/proc);
    elsewhere none are found.
    """
    needle = f'{ENV_CONTROLLER_PID}={pid}'.encode()
    marks = _mark_inodes(pid)
    found = []
    try:
        entries = os.listdir('/proc')
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) in (os.getpid(), int(pid)):
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as handle:
                if needle in handle.read().split(b'\0'):
                    found.append(int(entry))
                    continue
        except OSError:
            continue
        if marks and _holds_any(entry, marks):
            found.append(int(entry))
    return sorted(found)


# Ansible forks its workers from the controller: a fork while the heartbeat thread is inside SQLite or a socket
# would copy a held lock into the worker. Forks wait for a beat in flight to end (and a beat for a fork).
_FORK_GUARD = threading.Lock()
os.register_at_fork(before=_FORK_GUARD.acquire, after_in_parent=_FORK_GUARD.release,
                    after_in_child=_FORK_GUARD.release)


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds from a daemon thread until stop(): the migration_tracker keeps
    its run's lock alive this way through long waits (a soak, a gate's evaluations, a pause) when no callback
    event comes. ``beat`` must not raise (the tracker's catches and warns once); no fork happens during one."""

    def __init__(self, beat, interval):
        self._beat = beat
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name='migration-heartbeat')

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self._interval):
            with _FORK_GUARD:
                self._beat()

    def stop(self):
        self._stop.set()
