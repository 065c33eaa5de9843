# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance lock on the proxy: ``maintenance.lock`` in the state directory, JSON ``{owner, reason, since}``.

Taken by upgrade.yml (``kamailio_mode lock=true``) and ``wazo-mode maintenance``; while it exists the HA
check neither fails over nor fails back, and nobody else switches the route mode.

Standard library only: installed on the proxy beside ``wazo-mode`` and ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import read_text

DEFAULT_STATE_DIR = '/var/lib/wazo-maintenance'
LOCK_FILE = 'maintenance.lock'


class LockHeld(Exception):
    """Another owner holds the lock."""

    def __init__(self, lock):
        self.lock = lock
        super(LockHeld, self).__init__('maintenance lock held by %s since %s (%s)'
                                       % (lock.get('owner'), lock.get('since'), lock.get('reason')))


def lock_file(state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, LOCK_FILE)


def read_lock(state_dir=DEFAULT_STATE_DIR):
    """The lock as a dict ``{owner, reason, since}``, or None when there is no lock.

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
    return {'owner': data.get('owner'), 'reason': data.get('reason'), 'since': data.get('since')}


def take_lock(owner, reason='', state_dir=DEFAULT_STATE_DIR, now=None):
    """Take the lock for ``owner``. True if taken, False if ``owner`` already holds it; LockHeld otherwise."""
    current = read_lock(state_dir)
    if current is not None:
        if current.get('owner') == owner:
            return False
        raise LockHeld(current)
    since = now if now is not None else time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    data = json.dumps({'owner': owner, 'reason': reason, 'since': since}, sort_keys=True) + '\n'
    try:
        # O_EXCL: two writers racing cannot both believe they took it.
        fd = os.open(lock_file(state_dir), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise LockHeld(read_lock(state_dir) or {'owner': 'unknown'})
        raise
    with os.fdopen(fd, 'w') as handle:
        handle.write(data)
    return True


def release_lock(owner=None, state_dir=DEFAULT_STATE_DIR, force=False):
    """Release the lock. True if removed, False if there was none; LockHeld if another owner holds it."""
    current = read_lock(state_dir)
    if current is None:
        return False
    if not force and owner is not None and current.get('owner') != owner:
        raise LockHeld(current)
    try:
        os.unlink(lock_file(state_dir))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return False
    return True
