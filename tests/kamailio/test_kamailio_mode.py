# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kamailio_mode and the RPC client against the real Kamailio: persistence, check mode, faults, down."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import kamailio_rpc as k
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from ansible_collections.wazo.maintenance_mode.plugins.modules import kamailio_mode
from conftest import ROOT, recap, run_render, sipp_uac
from modharness import run_module


def margs(env, **kw):
    return dict(dict(rpc_transport='dgram', rpc_path=env.sock, state_dir=env.state), **kw)


def test_read_only(env, kamailio, normal_mode):
    res = run_module(kamailio_mode, margs(env))
    assert not res.get('failed'), res
    assert res['changed'] is False
    assert (res['previous_mode'], res['mode'], res['persisted_mode'], res['lock']) == ('normal', 'normal', 'normal', None)


@pytest.mark.parametrize('transport', ['dgram', 'fifo'])
def test_switch_persists_and_is_idempotent(env, kamailio, normal_mode, transport):
    path = env.sock if transport == 'dgram' else env.fifo
    res = run_module(kamailio_mode, margs(env, mode='maintenance', rpc_transport=transport, rpc_path=path), diff=True)
    assert not res.get('failed'), res
    assert res['changed'] is True
    assert (res['previous_mode'], res['mode'], res['persisted_mode']) == ('normal', 'maintenance', 'maintenance')
    assert 'mode: normal' in res['diff']['before'] and 'mode: maintenance' in res['diff']['after']
    assert rm.running_mode(env.rpc(transport)) == 'maintenance'
    assert rm.read_persisted_mode(env.state) == 'maintenance'
    again = run_module(kamailio_mode, margs(env, mode='maintenance', rpc_transport=transport, rpc_path=path))
    assert again['changed'] is False and again['mode'] == 'maintenance'


def test_check_mode_changes_nothing(env, kamailio, normal_mode):
    before = open(rm.routemode_file(env.state)).read()
    res = run_module(kamailio_mode, margs(env, mode='maintenance', lock=True, lock_owner='t'), check_mode=True,
                     diff=True)
    assert not res.get('failed'), res
    assert res['changed'] is True and res['mode'] == 'maintenance' and res['previous_mode'] == 'normal'
    assert 'lock: t' in res['diff']['after'] and 'lock: none' in res['diff']['before']
    assert rm.running_mode(env.rpc()) == 'normal'
    assert open(rm.routemode_file(env.state)).read() == before
    assert ml.read_lock(env.state) is None


def test_restart_keeps_the_mode(env, kamailio, normal_mode):
    res = run_module(kamailio_mode, margs(env, mode='maintenance'))
    assert res['changed'] and res['mode'] == 'maintenance'
    kamailio.restart()
    assert rm.running_mode(env.rpc()) == 'maintenance'
    calls = sipp_uac(env, calls=3)
    assert calls.rc == 0 and calls.per_stack() == {'secondary': 3}
    res = run_module(kamailio_mode, margs(env, mode='normal'))
    assert res['changed'] and res['mode'] == 'normal'
    kamailio.restart()
    assert rm.running_mode(env.rpc()) == 'normal'
    calls = sipp_uac(env, calls=3)
    assert calls.rc == 0 and calls.per_stack() == {'primary': 3}


def test_rerunning_the_role_keeps_the_mode_and_changes_nothing(env, kamailio, normal_mode):
    run_module(kamailio_mode, margs(env, mode='maintenance'))
    rc, out = run_render(env)
    assert rc == 0, out[-3000:]
    assert recap(out)['changed'] == 0, out[-3000:]
    assert rm.read_persisted_mode(env.state) == 'maintenance'
    rc, out = run_render(env, ['--check', '--diff'])
    assert rc == 0 and recap(out)['changed'] == 0, out[-3000:]


def test_lock_take_and_release(env, kamailio, normal_mode):
    res = run_module(kamailio_mode, margs(env, mode='maintenance', lock=True, lock_owner='alice', lock_reason='r'))
    assert res['changed'] and res['lock']['owner'] == 'alice' and res['lock']['reason'] == 'r'
    again = run_module(kamailio_mode, margs(env, mode='maintenance', lock=True, lock_owner='alice'))
    assert again['changed'] is False
    other = run_module(kamailio_mode, margs(env, lock=True, lock_owner='bob'))
    assert other['failed'] and 'alice' in other['msg']
    other = run_module(kamailio_mode, margs(env, mode='normal', lock=False, lock_owner='bob'))
    assert other['failed'] and 'alice' in other['msg']
    # nothing changed by the refused release
    assert rm.running_mode(env.rpc()) == 'maintenance'
    res = run_module(kamailio_mode, margs(env, mode='normal', lock=False, lock_owner='alice'))
    assert res['changed'] and res['lock'] is None and res['mode'] == 'normal'
    assert ml.read_lock(env.state) is None


def test_lock_of_an_upgrade_run_refuses_a_switch_naming_the_run(env, kamailio, normal_mode):
    """A lock written by an upgrade.yml run (identity keys): another owner's switch fails before any change."""
    ml.take_lock('upgrade.yml', 'upgrade.yml', env.state, now='2026-12-02T03:00:00Z',
                 identity={'run': 'abc123', 'user': 'ops', 'host': 'ctl1', 'pid': 77, 'pid_start': 'b:9'})
    try:
        res = run_module(kamailio_mode, margs(env, mode='maintenance', lock=True, lock_owner='alice'))
        assert res['failed']
        assert 'held by upgrade.yml run abc123 of ops@ctl1 (pid 77) since 2026-12-02T03:00:00Z' in res['msg']
        assert rm.running_mode(env.rpc()) == 'normal' and ml.read_lock(env.state)['run'] == 'abc123'
        read = run_module(kamailio_mode, margs(env))
        assert read['lock']['owner'] == 'upgrade.yml' and read['lock']['host'] == 'ctl1'
    finally:
        ml.release_lock(state_dir=env.state, force=True)


def test_rpc_faults_become_exceptions(env, kamailio, normal_mode):
    rpc = env.rpc()
    with pytest.raises(k.KamailioRPCFault) as e:
        rpc.call('pv.shvGet', 'no_such_variable')
    assert e.value.code == 404
    with pytest.raises(k.KamailioRPCFault) as e:
        rpc.call('no.such.method')
    assert e.value.code == 500
    with pytest.raises(k.KamailioRPCFault):
        rpc.call('pv.shvSet', 'routemode', 'float', 1)
    with pytest.raises(k.KamailioRPCFault):
        env.rpc('fifo').call('no.such.method')
    assert rm.running_mode(rpc) == 'normal'


def test_unconfigured_kamailio_is_a_clear_failure(env, kamailio, normal_mode, monkeypatch):
    monkeypatch.setattr(rm, 'ROUTEMODE_VAR', 'not_configured_here')
    res = run_module(kamailio_mode, margs(env))
    assert res['failed'] and 'does not run the wazo.maintenance_mode configuration' in res['msg']


@pytest.mark.parametrize('transport', ['dgram', 'fifo'])
def test_kamailio_down_is_a_clear_failure(env, kamailio, normal_mode, transport, tmp_path):
    # nothing there at all
    missing = str(tmp_path / 'missing')
    res = run_module(kamailio_mode, margs(env, mode='maintenance', rpc_transport=transport, rpc_path=missing))
    assert res['failed'] and 'does not exist' in res['msg'], res
    # Kamailio stopped: its socket/FIFO path may linger, nobody answers
    kamailio.stop()
    try:
        path = str(tmp_path / 'stale')
        if transport == 'fifo':
            os.mkfifo(path)
        else:
            import socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(path)
            s.close()
        res = run_module(kamailio_mode, margs(env, mode='maintenance', rpc_transport=transport, rpc_path=path,
                                              rpc_timeout=1.0))
        assert res['failed'] and ('nobody' in res['msg'] or 'no reply' in res['msg']), res
        assert rm.read_persisted_mode(env.state) == 'normal'  # nothing written when Kamailio is down
    finally:
        kamailio.start()


def test_module_through_ansible_cli(env, kamailio, normal_mode):
    """The FQCN resolves from the checkout and the module runs under ansible itself, in check mode too."""
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    envvars = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
                   ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    base = [ansible, 'localhost', '-i', 'localhost,', '-c', 'local', '-e',
            'ansible_python_interpreter=%s' % sys.executable, '-m', 'wazo.maintenance_mode.kamailio_mode']

    def run(extra, argstr):
        p = subprocess.run(base + extra + ['-a', argstr], cwd=ROOT, env=envvars, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=120, check=False)
        data = json.loads(p.stdout)
        return p.returncode, data['plays'][0]['tasks'][0]['hosts']['localhost']

    a = 'rpc_path=%s state_dir=%s mode=maintenance' % (env.sock, env.state)
    rc, res = run(['--check', '--diff'], a)
    assert rc == 0 and res['changed'] and rm.running_mode(env.rpc()) == 'normal', res
    rc, res = run([], a)
    assert rc == 0 and res['changed'] and res['mode'] == 'maintenance'
    assert rm.running_mode(env.rpc()) == 'maintenance'
    rc, res = run([], 'rpc_path=%s/none state_dir=%s' % (env.base, env.state))
    assert rc != 0 and res['failed'] and 'does not exist' in res['msg']
