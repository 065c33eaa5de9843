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

import datetime
import re
import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)

CHANNELS_COUNT_CMD = "asterisk -rx 'core show channels count'"
# Kamailio RPC listing the dialogs of a profile value (the ages of the calls through the proxy).
BACKEND_PROFILE_LIST = 'dlg.profile_list'


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


# ----- the drain deadline ---------------------------------------------------------------------------------------
# wazo_mm_upgrade_drain_deadline: a duration (counted from the start of the drain) or a wall-clock time.

_DURATION = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$', re.I)
_DURATION_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600}
_CLOCK = re.compile(r'^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$')
DEADLINE_HELP = ('a duration (90, 90s, 45m, 2h: counted from the start of the drain), a time of day HH:MM[:SS] '
                 '(the next one, in the controller\'s local time zone) or an ISO 8601 date and time '
                 '(2026-12-03T03:30, with an optional UTC offset)')


class DeadlineError(ValueError):
    """A drain deadline that cannot be read."""


def parse_deadline(value, now=None):
    """Read a drain deadline. Returns ``('duration', seconds)`` or ``('time', aware datetime)``.

    ``value``: a number of seconds (int/float or its text), ``<n>s``/``<n>m``/``<n>h``, ``HH:MM[:SS]`` (the next
    such time after ``now``, local time zone), or an ISO 8601 date and time (naive: local time zone; ``Z`` or an
    offset accepted). ``now``: an aware datetime (default: now, local time zone). Raises DeadlineError.
    """
    now = now or datetime.datetime.now().astimezone()
    if isinstance(value, bool) or value is None:
        raise DeadlineError('drain deadline %r: expected %s' % (value, DEADLINE_HELP))
    if isinstance(value, (int, float)):
        if value <= 0:
            raise DeadlineError('drain deadline %r: a duration must be more than 0 seconds' % (value,))
        return 'duration', float(value)
    text = str(value).strip()
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        if seconds <= 0:
            raise DeadlineError('drain deadline %r: a duration must be more than 0 seconds' % (value,))
        return 'duration', seconds
    match = _CLOCK.match(text)
    if match:
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise DeadlineError('drain deadline %r: no such time of day (00:00 to 23:59:59)' % (value,))
        local_now = now.astimezone()
        at = local_now.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if at <= local_now:
            # The next one: tomorrow, same wall-clock time (re-localised for a DST change).
            at = (at.replace(tzinfo=None) + datetime.timedelta(days=1)).astimezone()
        return 'time', at
    iso = text[:-1] + '+00:00' if text[-1:] in ('Z', 'z') else text
    if 'T' in iso or ' ' in iso:
        try:
            at = datetime.datetime.fromisoformat(iso)
        except ValueError:
            at = None
        if at is not None:
            if at.tzinfo is None:
                at = at.astimezone()  # naive: the controller's local time zone
            return 'time', at
    raise DeadlineError('drain deadline %r: expected %s' % (value, DEADLINE_HELP))


def resolve_deadline(value, default_seconds, started):
    """The absolute deadline (aware datetime) of a drain that started at ``started`` (aware datetime).

    ``value`` empty/None: ``default_seconds`` after the start (wazo_mm_upgrade_drain_timeout).
    Returns ``(deadline, kind)``, kind ``'timeout'``, ``'duration'`` or ``'time'``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return started + datetime.timedelta(seconds=max(0.0, float(default_seconds))), 'timeout'
    kind, parsed = parse_deadline(value, now=started)
    if kind == 'duration':
        return started + datetime.timedelta(seconds=parsed), kind
    return parsed, kind


def iso(at):
    """An aware datetime as ISO 8601 in UTC, to the second: ``2026-12-02T10:00:00Z``."""
    return at.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


# ----- the channels left, for the deadline policy `hangup` -------------------------------------------------------
# Everything here runs on the stack itself (through the Ansible connection), never over the proxy's key.

CHANNELS_CONCISE_CMD = "asterisk -rx 'core show channels concise'"
POLICIES = ('stop', 'hangup')
OUTCOMES = ('drained', 'deadline_stop', 'deadline_hangup')
# Asterisk main/cli.c CONCISE_FORMAT_STRING: channel!context!exten!priority!state!application!data!callerid!
# accountcode!peeraccount!amaflags!duration!bridgeid!uniqueid (14 fields; data may itself contain '!').
_CONCISE_FIELDS = 14


def parse_channels_concise(text):
    """Parse ``core show channels concise`` into a list of dicts (channel, context, exten, priority, state,
    application, data, caller, duration_s, bridge, uniqueid). A line that is not a channel line raises
    AsteriskOutputError (an error message of the CLI is not an empty list); empty output = no channel."""
    if any(marker in text for marker in ('Unable to connect to remote asterisk', 'asterisk.ctl exist')):
        raise AsteriskNotRunning(text.strip())
    channels = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.rstrip('\r').split('!')
        if len(parts) < _CONCISE_FIELDS:
            raise AsteriskOutputError('not a "core show channels concise" line: %r' % line[:300])
        extra = len(parts) - _CONCISE_FIELDS
        head, data, tail = parts[:6], '!'.join(parts[6:7 + extra]), parts[7 + extra:]
        try:
            priority = int(head[3])
            duration = int(tail[4]) if tail[4].strip() else 0
        except ValueError:
            raise AsteriskOutputError('not a "core show channels concise" line: %r' % line[:300])
        channels.append({'channel': head[0], 'context': head[1], 'exten': head[2], 'priority': priority,
                         'state': head[4], 'application': head[5], 'data': data, 'caller': tail[0],
                         'duration_s': duration, 'bridge': tail[5], 'uniqueid': tail[6]})
    return channels


def redirect_command(channel, context, exten='s', priority=1):
    """The CLI command sending ``channel`` to ``context,exten,priority``."""
    return 'channel redirect %s %s,%s,%d' % (channel, context, exten, int(priority))


def redirect_ok(text, channel):
    """True when ``channel redirect`` said it redirected ``channel`` (asterisk -rx exits 0 either way)."""
    return ("Channel '%s' successfully redirected" % channel) in text


def context_loaded(text, context):
    """True when ``dialplan show <context>`` shows that context with at least one extension."""
    return (("[ Context '%s' created by" % context) in text
            and re.search(r'-= \d+ extensions? \(\d+ priorit(?:y|ies)\) in \d+ contexts?\. =-', text) is not None
            and 'There is no existence of' not in text)


def dialog_ages(result, now):
    """Ages in seconds of the dialogs of a ``dlg.profile_list`` RPC result (their ``start_ts``; 0 = not started)."""
    ages = []

    def walk(node):
        if isinstance(node, dict):
            start = node.get('start_ts')
            if isinstance(start, (int, float)) and start > 0:
                ages.append(max(0, int(now - start)))
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(result)
    return ages
