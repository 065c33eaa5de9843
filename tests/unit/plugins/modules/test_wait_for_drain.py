# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wait_for_drain's polling loop with fake Kamailio/Asterisk counts and a fake clock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.modules import wait_for_drain as w


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


class RPC:
    def __init__(self, counts):
        self.counts = list(counts)

    def backend_calls(self, setid):
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]


def params(**kw):
    p = dict(stack='wazo1', stack_address='10.0.0.11', setid=1, poll_interval=0.5, slice_timeout=10,
             max_remaining_calls=0, check_asterisk=True, asterisk_command="asterisk -rx 'core show channels count'",
             ssh_user='root', ssh_key='/k', ssh_port=22, ssh_timeout=5, ssh_known_hosts=None)
    p.update(kw)
    return p


def asterisk(outputs):
    outputs = list(outputs)

    def runner(host, cmd, **kw):
        text = outputs.pop(0) if len(outputs) > 1 else outputs[0]
        return 0, text, ''
    return runner


def out(channels, calls):
    return '%d active channels\n%d active calls\n12 calls processed\n' % (channels, calls)


def test_waits_for_both_counts():
    clock = Clock()
    res = w.poll(params(), RPC([2, 1, 0, 0, 0]), runner=asterisk([out(4, 2), out(2, 1), out(2, 1), out(0, 0)]),
                 clock=clock, sleep=clock.sleep)
    assert res['drained'] and [(s['kamailio'], s['asterisk']) for s in res['samples']] == \
        [(2, 4), (1, 2), (0, 2), (0, 0)]
    assert res['remaining'] == {'kamailio': 0, 'asterisk': 0}


def test_slice_ends_undrained_bounded():
    clock = Clock()
    res = w.poll(params(slice_timeout=2), RPC([1]), runner=asterisk([out(0, 0)]), clock=clock, sleep=clock.sleep)
    assert not res['drained'] and len(res['samples']) <= 5 and res['waited'] <= 2.0


def test_max_remaining_and_check_mode():
    clock = Clock()
    res = w.poll(params(max_remaining_calls=2), RPC([2]), runner=asterisk([out(2, 1)]), clock=clock, sleep=clock.sleep)
    assert res['drained'] and len(res['samples']) == 1
    res = w.poll(params(), RPC([5]), check_mode=True, runner=asterisk([out(5, 3)]), clock=clock, sleep=clock.sleep)
    assert not res['drained'] and len(res['samples']) == 1


def test_asterisk_not_running_is_an_error():
    with pytest.raises(w.DrainError, match='not running'):
        w.poll(params(), RPC([0]), runner=asterisk(['Unable to connect to remote asterisk (does '
                                                    '/var/run/asterisk/asterisk.ctl exist?)']))
