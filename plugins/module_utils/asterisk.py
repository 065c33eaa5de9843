# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse what ``asterisk -rx`` prints (Asterisk main/cli.c formats)."""

from __future__ import annotations

import re

_CHANNELS = re.compile(r'^\s*(\d+) active channels?\s*$')
_CALLS = re.compile(r'^\s*(\d+) (?:of \d+ max )?active calls?\b')
_PROCESSED = re.compile(r'^\s*(\d+) calls? processed\s*$')
# What asterisk -rx prints when it cannot reach the daemon's control socket.
_NOT_RUNNING = ('Unable to connect to remote asterisk', 'does /var/run/asterisk/asterisk.ctl exist')


class AsteriskNotRunning(Exception):
    """asterisk -rx could not reach a running Asterisk."""


class AsteriskOutputError(Exception):
    """asterisk -rx printed something this parser does not recognise."""


def parse_channels_count(text):
    """Parse ``core show channels count`` into ``{'channels', 'calls', 'processed'}`` (ints).

    Handles the singular forms (``1 active call``) and the maxcalls form
    (``3 of 100 max active calls ( 3.00% of capacity)``).
    """
    if any(marker in text for marker in _NOT_RUNNING):
        raise AsteriskNotRunning(text.strip())
    found = {}
    for line in text.splitlines():
        for key, regex in (('channels', _CHANNELS), ('calls', _CALLS), ('processed', _PROCESSED)):
            match = regex.match(line)
            if match and key not in found:
                found[key] = int(match.group(1))
    missing = [k for k in ('channels', 'calls', 'processed') if k not in found]
    if missing:
        raise AsteriskOutputError('no %s line in: %r' % ('/'.join(missing), text.strip()[:300]))
    return found
