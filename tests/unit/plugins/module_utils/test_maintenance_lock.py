# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance lock with run identities: one run at a time, takeover of exactly the dead run's lock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import multiprocessing
import os

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml

RUN_A = {'run': 'aaaa', 'user': 'ops', 'host': 'ctl', 'pid': 10, 'pid_start': 'b:1'}
RUN_B = {'run': 'bbbb', 'user': 'ops', 'host': 'ctl', 'pid': 11, 'pid_start': 'b:2'}


def test_identity_is_written_and_read_back_an_older_reader_still_sees_a_held_lock(tmp_path):
    d = str(tmp_path)
    assert ml.take_lock('upgrade.yml', 'u', d, now='T0', identity=dict(RUN_A, junk='x')) is True
    raw = json.loads(open(ml.lock_file(d)).read())
    assert raw == dict(RUN_A, owner='upgrade.yml', reason='u', since='T0')  # unknown keys are not written
    lock = ml.read_lock(d)
    assert lock['owner'] == 'upgrade.yml' and lock['run'] == 'aaaa' and lock['since'] == 'T0'
    assert ml.describe(lock) == 'upgrade.yml run aaaa of ops@ctl (pid 10) since T0'


def test_same_owner_another_run_is_refused_same_run_is_ours(tmp_path):
    d = str(tmp_path)
    ml.take_lock('upgrade.yml', '', d, now='T0', identity=RUN_A)
    assert ml.take_lock('upgrade.yml', '', d, identity=RUN_A) is False
    with pytest.raises(ml.LockHeld, match='held by upgrade.yml run aaaa of ops@ctl .pid 10. since T0'):
        ml.take_lock('upgrade.yml', '', d, identity=RUN_B)
    # without an identity the owner name alone is "us" (the earlier behaviour, kept)
    assert ml.take_lock('upgrade.yml', '', d) is False


def test_takeover_replaces_exactly_the_lock_judged_dead(tmp_path):
    d = str(tmp_path)
    ml.take_lock('upgrade.yml', '', d, identity=RUN_A)
    with pytest.raises(ml.LockHeld):
        ml.take_lock('upgrade.yml', '', d, identity=RUN_B, takeover='zzzz')  # not the lock that is there
    assert ml.take_lock('upgrade.yml', '', d, identity=RUN_B, takeover='aaaa') is True
    assert ml.read_lock(d)['run'] == 'bbbb'


def test_takeover_of_a_lock_without_run(tmp_path):
    d = str(tmp_path)
    ml.take_lock('upgrade.yml', 'old version', d)
    assert ml.take_lock('upgrade.yml', '', d, identity=RUN_B, takeover='') is True
    assert ml.read_lock(d)['run'] == 'bbbb'


def test_release_only_this_runs_lock(tmp_path):
    d = str(tmp_path)
    ml.take_lock('upgrade.yml', '', d, identity=RUN_A)
    with pytest.raises(ml.LockHeld, match='another run'):
        ml.release_lock('upgrade.yml', d, run='bbbb')
    assert ml.release_lock('upgrade.yml', d, run='aaaa') is True
    ml.take_lock('upgrade.yml', '', d)
    assert ml.release_lock('upgrade.yml', d, run='bbbb') is True  # a lock without run id


def _race(args):
    d, run = args
    try:
        return ml.take_lock('upgrade.yml', '', d, identity=dict(RUN_A, run=run))
    except ml.LockHeld:
        return False


def test_two_processes_racing_for_a_free_lock_one_wins(tmp_path):
    d = str(tmp_path)
    for round_ in range(5):
        with multiprocessing.Pool(4) as pool:
            won = pool.map(_race, [(d, 'r%d%d' % (round_, i)) for i in range(8)])
        assert won.count(True) == 1, won
        ml.release_lock(state_dir=d, force=True)
    assert not os.path.exists(ml.lock_file(d))


def test_racing_takeovers_of_one_dead_lock_one_wins(tmp_path):
    d = str(tmp_path)
    for _round in range(3):
        ml.take_lock('upgrade.yml', '', d, identity=RUN_A)
        results = []
        for run in ('c1', 'c2', 'c3'):
            try:
                results.append(ml.take_lock('upgrade.yml', '', d, identity=dict(RUN_B, run=run), takeover='aaaa'))
            except ml.LockHeld:
                results.append(False)
        assert results.count(True) == 1
        ml.release_lock(state_dir=d, force=True)
