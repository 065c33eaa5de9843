# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance lock on the proxy: ``maintenance.lock`` in the state directory, JSON ``{owner, reason, since}``.

Taken by upgrade.yml (module ``upgrade_lock``, first thing of the run) and ``wazo-mode maintenance``; while it
exists the HA check neither fails over nor fails back, and nobody else switches the route mode.

A lock may also say which run holds it (upgrade.yml writes these keys, see ``module_utils/controller_run.py``):
``run`` (run id), ``user``, ``host`` (the controller), ``pid`` and ``pid_start`` (the controller's
ansible-playbook process and its start time). Any lock, with or without them, counts as held.

Every change happens under an ``flock`` of the state directory, so two writers (two upgrade.yml runs,
``wazo-mode``) cannot both believe they took the lock, and a takeover of a dead run's lock replaces exactly
the lock that was judged dead.

Standard library only: installed on the proxy beside ``wazo-mode`` and ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write, read_text

DEFAULT_STATE_DIR = '/var/lib/wazo-maintenance'
LOCK_FILE = 'maintenance.lock'
# The keys that say which run holds the lock (optional; written by upgrade.yml).
IDENTITY_KEYS = ('run', 'user', 'host', 'pid', 'pid_start')


def describe(lock):
    """Who holds ``lock`` and since when: ``upgrade.yml run 1a2b of root@ctl (pid 42) since <time>``."""
    if not lock:
        return 'nobody'
    return holder(lock) + ' since %s' % (lock.get('since') or '?')


def holder(lock, owner_text=None):
    """Who holds ``lock`` (not empty): ``upgrade.yml run 1a2b of root@ctl (pid 42)``; ``owner_text`` replaces the
    owner's name."""
    text = owner_text or '%s' % (lock.get('owner') or 'unknown',)
    if lock.get('run'):
        text += ' run %s' % lock['run']
    if lock.get('user') or lock.get('host'):
        text += ' of %s@%s' % (lock.get('user') or '?', lock.get('host') or '?')
    if lock.get('pid'):
        text += ' (pid %s)' % lock['pid']
    return text


class LockHeld(Exception):
    """Another owner (or another run of the same owner) holds the lock."""

    def __init__(self, lock, why=''):
        self.lock = lock or {'owner': 'unknown'}
        msg = 'maintenance lock held by %s (%s)' % (describe(self.lock), self.lock.get('reason') or '')
        super(LockHeld, self).__init__(msg + (': %s' % why if why else ''))


def lock_file(state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, LOCK_FILE)


@contextlib.contextmanager
def _guard(state_dir):
    """An exclusive flock of the state directory for the length of one read-decide-write."""
    fd = os.open(state_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def read_lock(state_dir=DEFAULT_STATE_DIR):
    """The lock as a dict ``{owner, reason, since}`` (plus the identity keys it has), or None when there is no lock.

    An unreadable/corrupt lock still counts as held (``owner`` = ``'unknown'``): the HA check must
    not fail back because someone truncated the file.
    """
    path = lock_file(state_dir)
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError('not an object')
    except ValueError:
        return {'owner': 'unknown', 'reason': 'unparsable lock file %s' % path, 'since': None}
    lock = {'owner': data.get('owner'), 'reason': data.get('reason'), 'since': data.get('since')}
    lock.update((key, data[key]) for key in IDENTITY_KEYS if data.get(key) is not None)
    return lock


def _now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _ours(current, owner, identity):
    """``current`` is held by ``owner`` and, when an identity is given, by the same run."""
    if current.get('owner') != owner:
        return False
    return not identity or not identity.get('run') or current.get('run') == identity.get('run')


def take_lock(owner, reason='', state_dir=DEFAULT_STATE_DIR, now=None, identity=None, takeover=None):
    """Take the lock for ``owner``. True if taken, False if we already hold it; LockHeld otherwise.

    ``identity``: the keys of IDENTITY_KEYS to write (the run taking it); with a ``run``, the same owner
    name of another run is not "us". ``takeover``: the ``run`` of a lock judged dead (its process is
    gone, or the operator said so); that lock, and only that one, is replaced.
    """
    identity = dict((key, value) for key, value in (identity or {}).items() if key in IDENTITY_KEYS)
    data = {'owner': owner, 'reason': reason, 'since': now if now is not None else _now()}
    data.update(identity)
    text = json.dumps(data, sort_keys=True) + '\n'
    with _guard(state_dir):
        current = read_lock(state_dir)
        if current is not None:
            if _ours(current, owner, identity):
                return False
            if takeover is None or (current.get('run') or '') != takeover:
                raise LockHeld(current)
            atomic_write(lock_file(state_dir), text)
            return True
        try:
            # O_EXCL as well: a writer that does not flock (an older wazo-mode) cannot race us either.
            fd = os.open(lock_file(state_dir), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise LockHeld(read_lock(state_dir) or {'owner': 'unknown'})
            raise
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
    return True


def release_lock(owner=None, state_dir=DEFAULT_STATE_DIR, force=False, run=None):
    """Release the lock. True if removed, False if there was none; LockHeld if another owner (or run) holds it.

    ``run``: release only the lock of that run of ``owner`` (a lock without a run id is released too).
    """
    with _guard(state_dir):
        current = read_lock(state_dir)
        if current is None:
            return False
        if not force and owner is not None and current.get('owner') != owner:
            raise LockHeld(current)
        if not force and run is not None and current.get('run') not in (None, run):
            raise LockHeld(current, 'another run of %s' % owner)
        try:
            os.unlink(lock_file(state_dir))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            return False
    return True
