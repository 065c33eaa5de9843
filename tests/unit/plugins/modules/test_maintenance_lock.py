# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance_lock module (proxy side): take, take over exactly the judged lock, release only ours."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from ansible_collections.wazo.maintenance_mode.plugins.modules import maintenance_lock

ME = {'run': 'me01', 'user': 'ops', 'host': 'ctl', 'pid': 100, 'pid_start': 'b:100'}
OTHER = {'run': 'ot01', 'user': 'eve', 'host': 'ctl', 'pid': 50, 'pid_start': 'b:50'}


def args(tmp_path, **kw):
    base = {'state_dir': str(tmp_path), 'owner': 'upgrade.yml', 'run_identity': ME}
    base.update(kw)
    return base


def test_take_check_mode_then_take_then_ours(tmp_path, run_module, host):
    res = run_module(maintenance_lock, args(tmp_path), check_mode=True, diff=True)
    assert res['changed'] and ml.read_lock(str(tmp_path)) is None and '"run": "me01"' in res['diff']['after']
    res = run_module(maintenance_lock, args(tmp_path))
    assert res['changed'] and res['lock']['run'] == 'me01' and res['previous_lock'] is None
    assert run_module(maintenance_lock, args(tmp_path))['changed'] is False


def test_held_by_another_run_without_replace_is_refused(tmp_path, run_module, host):
    ml.take_lock('upgrade.yml', '', str(tmp_path), now='T0', identity=OTHER)
    res = run_module(maintenance_lock, args(tmp_path))
    assert res['failed'] and 'refused before any change: maintenance lock held by upgrade.yml run ot01' in res['msg']
    res = run_module(maintenance_lock, args(tmp_path, replace_run='zz'))
    assert res['failed'] and 'changed since it was read' in res['msg']
    assert ml.read_lock(str(tmp_path))['run'] == 'ot01'
    res = run_module(maintenance_lock, args(tmp_path, replace_run='ot01'))
    assert res['changed'] and ml.read_lock(str(tmp_path))['run'] == 'me01'


def test_release_only_ours_and_read(tmp_path, run_module, host):
    ml.take_lock('upgrade.yml', '', str(tmp_path), identity=OTHER)
    assert run_module(maintenance_lock, args(tmp_path, state='read'))['lock']['run'] == 'ot01'
    res = run_module(maintenance_lock, args(tmp_path, state='absent'))
    assert res['failed'] and ml.read_lock(str(tmp_path))['run'] == 'ot01'
    ml.release_lock(state_dir=str(tmp_path), force=True)
    ml.take_lock('upgrade.yml', '', str(tmp_path), identity=ME)
    res = run_module(maintenance_lock, args(tmp_path, state='absent'))
    assert res['changed'] and ml.read_lock(str(tmp_path)) is None
    assert run_module(maintenance_lock, args(tmp_path, state='absent'))['changed'] is False
