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


# ----- hangup mode (runs on the stack) and the longest dialog -------------------------------------------------

class FakeModule:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode


class FakeRunner:
    """asterisk -rx on the stack: answers per CLI command, records what was sent."""

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def bin(self, name):
        return '/usr/sbin/' + name

    def run(self, argv, timeout=0, **kw):
        command = argv[2]
        self.sent.append(command)
        out = self.answers.get(command)
        if out is None:
            out = next((v for k, v in self.answers.items() if command.startswith(k)), '')
        if callable(out):
            out = out(command)
        return type('R', (), {'rc': 0, 'out': out, 'err': '', 'timed_out': False})()


SHOWN = ("[ Context 'drain-ctx' created by 'pbx_config' ]\n  's' =>  1. NoOp(x)  [f:1]\n"
         "-= 1 extension (3 priorities) in 1 context. =-\n")
CONCISE = ('PJSIP/anonymous-00000000!from-extern!1000!2!Up!Wait!3600!sipp!!!3!64!!1796206074.0\n'
           'PJSIP/anonymous-00000001!from-extern!1000!2!Up!Wait!3600!sipp!!!3!63!!1796206075.1\n')


def _redirect(command):
    chan = command.split()[2]
    if chan.endswith('1'):
        return "Channel '%s' not found\nCommand '%s' failed.\n" % (chan, command)
    return "Channel '%s' successfully redirected to drain-ctx,s,1\n" % chan


H = {'context': 'drain-ctx', 'exten': 's', 'priority': 1, 'cause': 41, 'reload': True}


def test_hangup_redirects_each_channel_and_reports_it():
    runner = FakeRunner({'dialplan reload': 'Dialplan reloaded.\n', 'dialplan show drain-ctx': SHOWN,
                         'core show channels concise': CONCISE, 'channel redirect': _redirect})
    res = w.hangup(FakeModule(), runner, H, clock=lambda: 5.0)
    assert runner.sent[:3] == ['dialplan reload', 'dialplan show drain-ctx', 'core show channels concise']
    assert runner.sent[3:] == ['channel redirect PJSIP/anonymous-00000000 drain-ctx,s,1',
                               'channel redirect PJSIP/anonymous-00000001 drain-ctx,s,1']
    assert res['changed'] and res['channels_before'] == 2
    first, second = res['hung_up']
    assert (first['channel'], first['caller'], first['age_s'], first['cause'], first['redirected']) == \
        ('PJSIP/anonymous-00000000', 'sipp', 64, 41, True)
    assert not second['redirected'] and 'not found' in second['error']
    assert first['at'] == '1970-01-01T00:00:05Z'


def test_hangup_refuses_without_the_context_and_changes_nothing_in_check_mode():
    runner = FakeRunner({'dialplan show drain-ctx': "There is no existence of 'drain-ctx' context\n"})
    with pytest.raises(w.DrainError, match='not loaded'):
        w.hangup(FakeModule(), runner, H)
    runner = FakeRunner({'dialplan show drain-ctx': SHOWN, 'core show channels concise': CONCISE})
    res = w.hangup(FakeModule(check_mode=True), runner, H)
    assert not res['changed'] and not any(c.startswith('channel redirect') or c == 'dialplan reload'
                                          for c in runner.sent)


def test_longest_dialog_never_fails_the_drain():
    class ListRPC(RPC):
        def call(self, method, *params):
            assert (method, params) == ('dlg.profile_list', ('backend', '1'))
            return [{'start_ts': 900}, {'start_ts': 990}]

    assert w.longest_dialog(ListRPC([1]), 1, now=lambda: 1000.0) == 100
    assert w.longest_dialog(RPC([1]), 1) is None  # no call() at all: unknown, not an error
