# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which upgrade.yml run holds the maintenance lock, and whether that run is still alive.

Used on the controller (action plugin ``upgrade_lock``): a run is the ``ansible-playbook`` process that
runs the play. Its identity, written into the lock (``module_utils/maintenance_lock.py``), is
``{run, user, host, pid, pid_start}``: ``pid`` is that process, ``pid_start`` its start time (boot id and
clock ticks from ``/proc``, so a recycled pid is not mistaken for it), ``run`` a short id derived from them.

:func:`judge` decides what a run does with the lock it finds: take it, keep it, take over a dead run's
lock, or refuse (with who holds it and since when).

Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import getpass
import hashlib
import os
import socket

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.maintenance_lock import describe

PROC = '/proc'
PLAYBOOK_MARK = 'ansible-playbook'

# Verdicts of judge()
FREE = 'free'  # no lock: take it
OURS = 'ours'  # this run holds it already
STALE = 'stale'  # a run of this controller whose process is gone: take it over
LEGACY = 'legacy'  # held by the owner without a run identity (an older version of the collection): take it over
TAKEOVER = 'takeover'  # another controller's run the operator named: take it over
LIVE = 'live'  # another run of this controller is still running: refuse
FOREIGN = 'foreign'  # another controller's run, liveness unknown: refuse
OTHER = 'other'  # another owner (wazo-mode, an operator): refuse
TAKES = (FREE, STALE, LEGACY, TAKEOVER)


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _boot_id(proc=PROC):
    data = _read(os.path.join(proc, 'sys', 'kernel', 'random', 'boot_id'))
    return data.decode('ascii', 'replace').strip()[:8] if data else ''


def process_start(pid, proc=PROC):
    """``<boot id>:<start ticks>`` of ``pid`` from /proc, None when the process does not exist (or no /proc)."""
    stat = _read(os.path.join(proc, str(pid), 'stat'))
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after the last ')' are safe.
    fields = stat.rsplit(b')', 1)[-1].split()
    try:
        ticks = fields[19].decode('ascii')  # field 22 of stat(5)
    except IndexError:
        return None
    return '%s:%s' % (_boot_id(proc), ticks)


def _cmdline(pid, proc=PROC):
    data = _read(os.path.join(proc, str(pid), 'cmdline'))
    return data.replace(b'\0', b' ').decode('utf-8', 'replace') if data else ''


def _parent(pid, proc=PROC):
    stat = _read(os.path.join(proc, str(pid), 'stat'))
    if not stat:
        return None
    try:
        return int(stat.rsplit(b')', 1)[-1].split()[1])
    except (IndexError, ValueError):
        return None


def playbook_pid(start=None, proc=PROC):
    """The ansible-playbook process this code runs under: the topmost ancestor whose command line names it.

    Action plugins run in worker processes forked from it (their command line is the same), so the
    topmost one is the run itself. Without /proc: the parent process.
    """
    pid = start if start is not None else os.getpid()
    if not os.path.isdir(os.path.join(proc, str(pid))):
        return os.getppid()
    found = None
    for _step in range(64):  # bounded walk up the process tree
        if pid is None or pid <= 1:
            break
        if PLAYBOOK_MARK in _cmdline(pid, proc):
            found = pid
        pid = _parent(pid, proc)
    return found if found is not None else os.getppid()


def identity(proc=PROC):
    """This run: ``{run, user, host, pid, pid_start}``; ``run`` is the same for every task of one ansible-playbook."""
    pid = playbook_pid(proc=proc)
    start = process_start(pid, proc) or ''
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid
        user = str(os.getuid())
    run = hashlib.sha1(('%s/%s/%s' % (host, pid, start)).encode('utf-8')).hexdigest()[:10]
    return {'run': run, 'user': user, 'host': host, 'pid': pid, 'pid_start': start}


def alive(pid, pid_start, proc=PROC):
    """True while that process (same pid and start time) still runs ansible-playbook on this machine.

    Without /proc (not Linux) a pid that exists counts as alive: a lock is never taken over on a guess.
    """
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if not os.path.isdir(proc) or not os.path.exists(os.path.join(proc, 'self')):
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == 1  # EPERM: exists, another user's
        return True
    start = process_start(pid, proc)
    if start is None:
        return False
    if pid_start and start != pid_start:
        return False  # the pid was recycled
    return PLAYBOOK_MARK in _cmdline(pid, proc)


def judge(lock, me, owner, takeover_run='', alive_fn=alive):
    """What run ``me`` (an :func:`identity`) does with ``lock`` (``read_lock``'s dict or None).

    Returns ``(verdict, message)``: a verdict in TAKES means take (or take over) the lock, OURS keep it,
    LIVE/FOREIGN/OTHER refuse; ``message`` says who holds it, since when, and what to do.
    """
    if not lock:
        return FREE, 'the maintenance lock is free: %s run %s takes it' % (owner, me['run'])
    who = describe(lock)
    if lock.get('owner') != owner:
        return OTHER, ('the maintenance lock is held by %s (%s): %s does not run while someone else works on the '
                       'system; wait until they release it (wazo-mode normal on the proxy)'
                       % (who, lock.get('reason') or '', owner))
    if not lock.get('run'):
        return LEGACY, ('the maintenance lock is held by %s without a run identity (an earlier version of this '
                        'collection); %s run %s takes it over' % (who, owner, me['run']))
    if lock.get('run') == me['run']:
        return OURS, 'the maintenance lock is held by this run (%s)' % who
    if takeover_run and takeover_run == lock.get('run'):
        return TAKEOVER, ('the maintenance lock is held by %s; taken over as asked (wazo_mm_upgrade_lock_takeover=%s)'
                          % (who, takeover_run))
    if lock.get('host') == me['host']:
        if alive_fn(lock.get('pid'), lock.get('pid_start')):
            return LIVE, ('held by %s: that run is still going on this controller; one operation at a time - wait '
                          'for it to end (or stop it), then run again' % who)
        return STALE, ('the maintenance lock is held by %s, a run whose process is gone (it failed or was killed); '
                       '%s run %s takes it over and resumes' % (who, owner, me['run']))
    return FOREIGN, ('held by %s: a run of another controller, whose process cannot be checked from %s; wait for it '
                     'to end, or, if you know it is over, run again with -e wazo_mm_upgrade_lock_takeover=%s'
                     % (who, me['host'], lock.get('run')))
