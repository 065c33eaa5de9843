# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`core show channels count` in every form Asterisk's main/cli.c handle_chanlist prints."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)


@pytest.mark.parametrize('text, expected', [
    ('0 active channels\n0 active calls\n0 calls processed\n', (0, 0, 0)),
    ('12 active channels\n6 active calls\n1342 calls processed\n', (12, 6, 1342)),
    # singular forms: the plural "s" is dropped when the count is 1
    ('1 active channel\n1 active call\n1 call processed\n', (1, 1, 1)),
    ('2 active channels\n1 active call\n1 call processed\n', (2, 1, 1)),
    # maxcalls set: "%d of %d max active call%s (%5.2f%% of capacity)"
    ('4 active channels\n2 of 100 max active calls ( 2.00% of capacity)\n57 calls processed\n', (4, 2, 57)),
    ('1 active channel\n1 of 10 max active call (10.00% of capacity)\n3 calls processed\n', (1, 1, 3)),
    ('0 active channels\n0 of 5 max active calls ( 0.00% of capacity)\n0 calls processed\n', (0, 0, 0)),
    # remote console noise around the answer, CRLF, no final newline
    ('\r\n3 active channels\r\n1 active call\r\n9 calls processed', (3, 1, 9)),
    ('Connected to Asterisk 20.5.0 currently running on wazo (pid = 812)\n'
     '0 active channels\n0 active calls\n5 calls processed\n', (0, 0, 5)),
])
def test_parse_channels_count(text, expected):
    assert parse_channels_count(text) == dict(zip(('channels', 'calls', 'processed'), expected))


@pytest.mark.parametrize('text', [
    'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n',
    'asterisk: Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)',
])
def test_not_running(text):
    with pytest.raises(AsteriskNotRunning, match='Unable to connect'):
        parse_channels_count(text)


@pytest.mark.parametrize('text, missing', [
    ('', 'channels/calls/processed'),
    ('No such command \'core show channels count\' (type \'core show help core show\' for other possible commands)\n',
     'channels/calls/processed'),
    ('3 active channels\n9 calls processed\n', 'calls'),
    ('3 active channels\n1 active call\n', 'processed'),
    ('three active channels\n1 active call\n2 calls processed\n', 'channels'),
])
def test_unrecognised_output(text, missing):
    with pytest.raises(AsteriskOutputError, match='no %s line' % missing):
        parse_channels_count(text)


def test_first_occurrence_wins():
    text = '1 active channel\n1 active call\n1 call processed\n7 active channels\n'
    assert parse_channels_count(text)['channels'] == 1


# Byte for byte what the lab's real Asterisk 22.10.1 (Debian sid) printed through `asterisk -rx` on a stack,
# with one call from the proxy up, then none (the header and rows are fixed width, with trailing spaces).
REAL_22_CHANNELS_ONE_CALL = (
    'Channel                                                          Location                         State   '
    'Application(Data)             \n'
    'PJSIP/anonymous-00000000                                         1000@from-extern:2               Up      '
    'Wait(3600)                    \n'
    '1 active channel\n1 active call\n1 call processed\n')
REAL_22_COUNT_IDLE = '0 active channels\n0 active calls\n3 calls processed\n'
REAL_22_NOT_RUNNING = 'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n'


def test_real_asterisk_22_output():
    assert parse_channels_count(REAL_22_CHANNELS_ONE_CALL) == {'channels': 1, 'calls': 1, 'processed': 1}
    assert parse_channels_count(REAL_22_COUNT_IDLE) == {'channels': 0, 'calls': 0, 'processed': 3}
    with pytest.raises(AsteriskNotRunning):
        parse_channels_count(REAL_22_NOT_RUNNING)
