# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counting the calls left on a stack, and waiting until there are none: ``wait_for_drain`` and ``wazo-mode``.

A stack is drained when **both** sources are at most the limit: the proxy's live dialogs through the stack
(Kamailio dialog profile ``backend`` = the stack's dispatcher set) and the stack's Asterisk channels
(``asterisk -rx 'core show channels count'`` over SSH). Kamailio's count misses calls that never cross the
proxy and is lost on a restart; Asterisk's does not see a call still being set up through the proxy.

Standard library only: installed on the proxy beside ``wazo-mode``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)

CHANNELS_COUNT_CMD = "asterisk -rx 'core show channels count'"


class DrainError(Exception):
    """A count could not be taken."""


def asterisk_channels(run, host, command=CHANNELS_COUNT_CMD):
    """The stack's Asterisk channel count. ``run(host, command)`` returns ``(rc, stdout, stderr)``."""
    rc, out, err = run(host, command)
    try:
        return parse_channels_count(out + '\n' + err)['channels']
    except AsteriskNotRunning as exc:
        raise DrainError('Asterisk is not running on %s: %s' % (host, exc))
    except AsteriskOutputError as exc:
        raise DrainError('%s on %s (rc %s): %s' % (command, host, rc, exc))


def sample(rpc, setid, channels=None, clock=time.time):
    """One sample ``{'time', 'kamailio', 'asterisk'}``; ``channels()`` gives Asterisk's count (None: not checked)."""
    return {'time': round(clock(), 3), 'kamailio': rpc.backend_calls(setid),
            'asterisk': channels() if channels is not None else None}


def is_drained(one, limit=0):
    """Both counts at most ``limit``. An Asterisk count that is not a number (an error) is not drained."""
    ast = one.get('asterisk')
    return one['kamailio'] <= limit and (ast is None or (isinstance(ast, int) and ast <= limit))


def describe(one):
    ast = one.get('asterisk')
    return '%s dialog(s) through the proxy, Asterisk channels: %s' % (
        one.get('kamailio'), 'not checked' if ast is None else ast)


def wait_drained(take_sample, timeout, interval=0.5, limit=0, once=False, on_progress=None, progress_every=10.0,
                 clock=time.monotonic, sleep=time.sleep):
    """Sample until drained, at most ``timeout`` seconds; ``once``: a single sample (check mode).

    ``on_progress(sample, waited)`` is called at most every ``progress_every`` seconds while not drained.
    Returns ``{'drained', 'samples', 'waited', 'remaining'}``. Bounded in time and in number of samples
    (``timeout / interval + 1``). Exceptions of ``take_sample`` propagate.
    """
    started = clock()
    interval = max(0.05, float(interval))
    samples = []
    last_report = None
    for _i in range(int(max(0.0, timeout) / interval) + 1):
        one = take_sample()
        samples.append(one)
        waited = clock() - started
        if once or is_drained(one, limit):
            break
        if on_progress is not None and (last_report is None or waited - last_report >= progress_every):
            on_progress(one, waited)
            last_report = waited
        left = timeout - waited
        if left <= 0:
            break
        sleep(min(interval, left))
    last = samples[-1]
    return {'drained': is_drained(last, limit), 'samples': samples, 'waited': round(clock() - started, 3),
            'remaining': {'kamailio': last['kamailio'], 'asterisk': last['asterisk']}}
