# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drain deadline parser and the parsers of the hangup policy (module_utils/drain.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import time

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import drain
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
)

PARIS = datetime.timezone(datetime.timedelta(hours=1))
NOW = datetime.datetime(2026, 12, 2, 10, 0, 0, tzinfo=PARIS)


@pytest.mark.parametrize('value, seconds', [
    (90, 90.0), (2.5, 2.5), ('90', 90.0), ('90s', 90.0), ('45m', 2700.0), ('2h', 7200.0), (' 20S ', 20.0),
    ('1.5h', 5400.0),
])
def test_durations(value, seconds):
    assert drain.parse_deadline(value, now=NOW) == ('duration', seconds)


@pytest.fixture
def paris(monkeypatch):
    """The controller's local time zone set to Europe/Paris for the test (TZ + tzset), restored after."""
    monkeypatch.setenv('TZ', 'Europe/Paris')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_time_of_day_is_the_next_one_in_the_local_time_zone(paris):
    now = datetime.datetime(2026, 12, 2, 9, 0, 0, tzinfo=datetime.timezone.utc)  # 10:00 in Paris
    kind, at = drain.parse_deadline('10:30', now=now)
    assert kind == 'time' and drain.iso(at) == '2026-12-02T09:30:00Z'
    kind, at = drain.parse_deadline('03:30', now=now)  # passed today: tomorrow
    assert kind == 'time' and drain.iso(at) == '2026-12-03T02:30:00Z'
    kind, at = drain.parse_deadline('10:00:00', now=now)  # now itself is not "the next": tomorrow
    assert drain.iso(at) == '2026-12-03T09:00:00Z'


def test_time_of_day_across_a_dst_change(paris):
    now = datetime.datetime(2026, 3, 28, 12, 0, 0, tzinfo=datetime.timezone.utc)  # Saturday, CET; Sunday is CEST
    kind, at = drain.parse_deadline('03:30', now=now)
    assert kind == 'time' and drain.iso(at) == '2026-03-29T01:30:00Z'


def test_naive_iso_is_local_time(paris):
    kind, at = drain.parse_deadline('2026-12-03 03:30', now=NOW)
    assert kind == 'time' and drain.iso(at) == '2026-12-03T02:30:00Z'


def test_iso_datetimes():
    assert drain.parse_deadline('2026-12-03T02:30:00Z', now=NOW) == (
        'time', datetime.datetime(2026, 12, 3, 2, 30, tzinfo=datetime.timezone.utc))
    kind, at = drain.parse_deadline('2026-12-03T03:30+01:00', now=NOW)
    assert kind == 'time' and at == datetime.datetime(2026, 12, 3, 2, 30, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('value', ['', 'soon', '0', '0s', '-5', '10x', '25:00', '12:61', '3:3', '2026-13-01T00:00',
                                   'T', None, True, 0, -1, '1h30', '12:00pm'])
def test_bad_values_are_refused_with_what_is_expected(value):
    with pytest.raises(drain.DeadlineError) as err:
        drain.parse_deadline(value, now=NOW)
    assert 'drain deadline' in str(err.value)


def test_resolve_deadline_default_is_the_timeout():
    assert drain.resolve_deadline('', 3600, NOW) == (NOW + datetime.timedelta(hours=1), 'timeout')
    assert drain.resolve_deadline(None, 60, NOW) == (NOW + datetime.timedelta(minutes=1), 'timeout')
    assert drain.resolve_deadline('20s', 3600, NOW) == (NOW + datetime.timedelta(seconds=20), 'duration')
    at, kind = drain.resolve_deadline('2026-12-03T02:30:00Z', 3600, NOW)
    assert kind == 'time' and drain.iso(at) == '2026-12-03T02:30:00Z'
    # An ISO deadline written by iso() reads back as the same instant (plan.yml -> drain.yml).
    assert drain.resolve_deadline(drain.iso(at), 0, NOW)[0] == at


def test_iso_is_utc_to_the_second():
    assert drain.iso(datetime.datetime(2026, 12, 2, 10, 0, 0, 999, tzinfo=PARIS)) == '2026-12-02T09:00:00Z'


# Real output of Asterisk 22 (the lab's primary, two SIPp calls through the proxy).
CONCISE = ('PJSIP/anonymous-00000000!from-extern!1000!2!Up!Wait!3600!sipp!!!3!4!!1796206074.0\n'
           'PJSIP/anonymous-00000001!from-extern!1000!2!Up!Wait!3600!sipp!!!3!3!!1796206075.1\n')


def test_concise_channel_list():
    chans = drain.parse_channels_concise(CONCISE)
    assert [(c['channel'], c['caller'], c['duration_s'], c['state'], c['application']) for c in chans] == [
        ('PJSIP/anonymous-00000000', 'sipp', 4, 'Up', 'Wait'),
        ('PJSIP/anonymous-00000001', 'sipp', 3, 'Up', 'Wait')]
    assert chans[0]['uniqueid'] == '1796206074.0' and chans[0]['context'] == 'from-extern'


def test_concise_with_a_bang_in_the_data_and_a_bridge():
    line = 'PJSIP/1001-0000000a!default!1002!3!Up!Dial!PJSIP/1002!b!30!1001!!!3!125!3f2c-bridge!1796206000.12\n'
    (chan,) = drain.parse_channels_concise(line)
    assert chan['data'] == 'PJSIP/1002!b!30' and chan['caller'] == '1001' and chan['duration_s'] == 125
    assert chan['bridge'] == '3f2c-bridge' and chan['uniqueid'] == '1796206000.12'


def test_concise_empty_and_errors():
    assert drain.parse_channels_concise('') == [] and drain.parse_channels_concise('\n') == []
    with pytest.raises(AsteriskNotRunning):
        drain.parse_channels_concise('Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)')
    with pytest.raises(AsteriskOutputError):
        drain.parse_channels_concise("No such command 'core show channels concyse' (type 'core show help core show')")
    with pytest.raises(AsteriskOutputError):
        drain.parse_channels_concise('a!b!c!x!Up!Wait!1!c!!!3!4!!1.0')  # priority not a number


def test_redirect_and_dialplan_outputs():
    assert drain.redirect_command('PJSIP/a-1', 'wazo-mm-drain-hangup') == 'channel redirect PJSIP/a-1 wazo-mm-drain-hangup,s,1'
    assert drain.redirect_ok("Channel 'PJSIP/a-1' successfully redirected to wazo-mm-drain-hangup,s,1\n", 'PJSIP/a-1')
    assert not drain.redirect_ok("Channel 'PJSIP/a-1' not found\nCommand 'channel redirect ...' failed.\n", 'PJSIP/a-1')
    shown = ("[ Context 'wazo-mm-drain-hangup' created by 'pbx_config' ]\n"
             "  's' =>            1. NoOp(x)                    [extensions_extra.d/wazo-maintenance-drain.conf:5]\n"
             "                    2. Playback(please-try-call-later,noanswer) [...]\n"
             "                    3. Hangup(16)                 [...]\n\n"
             "-= 1 extension (3 priorities) in 1 context. =-\n")
    assert drain.context_loaded(shown, 'wazo-mm-drain-hangup')
    assert not drain.context_loaded("There is no existence of 'wazo-mm-drain-hangup' context\n"
                                    "Command 'dialplan show wazo-mm-drain-hangup' failed.\n", 'wazo-mm-drain-hangup')


def test_dialog_ages_from_the_profile_list():
    res = [{'call-id': '1', 'start_ts': 1000, 'caller': {'tag': 'x'}}, {'call-id': '2', 'start_ts': 1090},
           {'call-id': '3', 'start_ts': 0}]
    assert drain.dialog_ages(res, 1100) == [100, 10]
    assert drain.dialog_ages([], 1100) == [] and drain.dialog_ages(None, 1) == []
