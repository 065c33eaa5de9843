# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drain: the one drain loop (wait_for_drain and wazo-mode), with a fake clock and the real Asterisk output."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import drain

# What Asterisk 22 prints for `core show channels count` (singular at 1).
ONE = '1 active channel\n1 active call\n7 calls processed\n'
NONE = '0 active channels\n0 active calls\n8 calls processed\n'


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


def samples(*pairs):
    pairs = list(pairs)

    def take():
        kam, ast = pairs.pop(0) if len(pairs) > 1 else pairs[0]
        return {'time': 0, 'kamailio': kam, 'asterisk': ast}
    return take


def test_drained_only_when_both_are_zero():
    clock = Clock()
    res = drain.wait_drained(samples((1, 1), (0, 1), (0, 0)), 10, 0.5, clock=clock, sleep=clock.sleep)
    assert res['drained'] and len(res['samples']) == 3 and res['remaining'] == {'kamailio': 0, 'asterisk': 0}


def test_bounded_by_the_timeout_and_reports_progress():
    clock = Clock()
    seen = []
    res = drain.wait_drained(samples((2, 3)), 5, 0.5, on_progress=lambda s, w: seen.append(w), progress_every=2,
                             clock=clock, sleep=clock.sleep)
    assert not res['drained'] and len(res['samples']) <= 11 and res['waited'] <= 5.0
    assert seen == [0.0, 2.0, 4.0]


def test_an_asterisk_error_is_never_drained():
    assert not drain.is_drained({'kamailio': 0, 'asterisk': 'error: ssh refused'})
    assert drain.is_drained({'kamailio': 0, 'asterisk': None})
    assert drain.is_drained({'kamailio': 2, 'asterisk': 1}, limit=2)


def test_once_takes_one_sample():
    res = drain.wait_drained(samples((3, 3)), 100, once=True, sleep=pytest.fail)
    assert len(res['samples']) == 1 and not res['drained']


def test_asterisk_channels_parses_the_real_output():
    assert drain.asterisk_channels(lambda h, c: (0, ONE, ''), 'stack') == 1
    assert drain.asterisk_channels(lambda h, c: (0, NONE, ''), 'stack') == 0
    with pytest.raises(drain.DrainError, match='not running'):
        drain.asterisk_channels(
            lambda h, c: (1, '', 'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)'),
            'stack')
