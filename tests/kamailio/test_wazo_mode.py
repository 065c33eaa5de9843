# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator CLI wazo-mode, as the role installs it, against the real Kamailio with live calls."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from conftest import sipp_uac, wait_until


def cli_env(env):
    """wazo-mode runs with the system Python and the shared code the role installed in env.lib."""
    return dict(os.environ, WAZO_MM_LIBDIR=env.lib)


def wazo_mode(env, *args):
    p = subprocess.run(['/usr/bin/python3', os.path.join(env.bin, 'wazo-mode'), '--config',
                        os.path.join(env.etc, 'proxy.conf')] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120,
                       check=False, env=cli_env(env))
    return p.returncode, p.stdout


def test_wazo_mode_maintenance_waits_for_the_primary_then_normal(env, stacks, kamailio, normal_mode):
    rpc = env.rpc()
    proc, finish = sipp_uac(env, calls=3, rate=50, duration_ms=3000, background=True)
    wait_until(lambda: rpc.backend_calls(1) == 3, 10, 0.05, '3 calls on the primary')
    rc, out = wazo_mode(env, 'maintenance', '--no-asterisk', '--timeout', '30', '--reason', 'test')
    assert rc == 0, out
    assert 'route mode normal -> maintenance' in out and 'primary drained' in out
    assert rpc.backend_calls(1) == 0
    assert finish(proc).rc == 0
    assert rm.read_persisted_mode(env.state) == 'maintenance' and rm.running_mode(rpc) == 'maintenance'
    assert ml.read_lock(env.state)['owner'] == 'wazo-mode'

    rc, out = wazo_mode(env, 'status', '--no-asterisk', '--json')
    assert rc == 0, out
    st = json.loads(out)
    assert st['mode'] == 'maintenance' and st['persisted_mode'] == 'maintenance'
    assert st['lock']['owner'] == 'wazo-mode'
    assert st['stacks']['primary']['dialogs'] == 0 and st['stacks']['primary']['destinations'][0]['active']
    rc, out = wazo_mode(env, 'status', '--no-asterisk')
    assert rc == 0 and 'route mode:     maintenance (persisted: maintenance)' in out, out

    rc, out = wazo_mode(env, 'normal', '--no-asterisk', '--timeout', '10')
    assert rc == 0, out
    assert rm.running_mode(rpc) == 'normal' and ml.read_lock(env.state) is None


def test_wazo_mode_respects_another_owners_lock_and_bounds_the_wait(env, stacks, kamailio, normal_mode):
    ml.take_lock('upgrade.yml', 'upgrading', env.state)
    rc, out = wazo_mode(env, 'maintenance', '--no-asterisk', '--no-wait')
    assert rc == 4 and 'upgrade.yml' in out
    assert rm.running_mode(env.rpc()) == 'normal'
    ml.release_lock('upgrade.yml', env.state)

    rpc = env.rpc()
    proc, finish = sipp_uac(env, calls=2, rate=50, duration_ms=6000, background=True)
    wait_until(lambda: rpc.backend_calls(1) == 2, 10, 0.05, '2 calls on the primary')
    rc, out = wazo_mode(env, 'maintenance', '--no-asterisk', '--timeout', '1')
    assert rc == 3 and 'NOT drained' in out, out
    assert finish(proc).rc == 0


def test_wazo_mode_kamailio_down(env, stacks, kamailio, normal_mode, tmp_path):
    conf = tmp_path / 'proxy.conf'
    conf.write_text(open(os.path.join(env.etc, 'proxy.conf')).read().replace(env.sock, str(tmp_path / 'none.sock')))
    p = subprocess.run(['/usr/bin/python3', os.path.join(env.bin, 'wazo-mode'), '--config', str(conf), 'normal',
                        '--no-asterisk'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=60, check=False, env=cli_env(env))
    assert p.returncode == 1 and 'does not exist' in p.stdout


def test_wazo_mode_refused_during_an_upgrade_says_who_and_since(env, stacks, kamailio, normal_mode):
    """A lock of an upgrade.yml run: maintenance and normal are refused before any change, naming the run."""
    ml.take_lock('upgrade.yml', 'upgrade.yml', env.state, now='2026-12-02T03:00:00Z',
                 identity={'run': 'r1n2', 'user': 'ops', 'host': 'ctl1', 'pid': 4242, 'pid_start': 'b:1'})
    try:
        before = open(ml.lock_file(env.state)).read()
        for action in ('maintenance', 'normal'):
            rc, out = wazo_mode(env, action, '--no-asterisk', '--no-wait')
            assert rc == 4, out
            assert 'held by upgrade.yml run r1n2 of ops@ctl1 (pid 4242) since 2026-12-02T03:00:00Z' in out, out
            assert 'nothing changed' in out and 'an upgrade is running' in out, out
            assert rm.running_mode(env.rpc()) == 'normal'
            assert open(ml.lock_file(env.state)).read() == before
        rc, out = wazo_mode(env, 'status', '--no-asterisk')
        assert 'upgrade.yml run r1n2 of ops@ctl1' in out, out
    finally:
        ml.release_lock(state_dir=env.state, force=True)
