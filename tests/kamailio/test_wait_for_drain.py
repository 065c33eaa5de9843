# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wait_for_drain (action plugin + module) against the real Kamailio with live SIPp calls."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

from conftest import HERE, PRIMARY, ROOT, sipp_uac, wait_until
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm


def test_wait_for_drain_waits_for_the_calls_of_the_left_stack(env, stacks, kamailio, normal_mode):
    rpc = env.rpc()
    inventory = os.path.join(env.base, 'drain-inventory.yml')
    with open(inventory, 'w') as f:
        f.write('all:\n  children:\n'
                '    proxy:\n      hosts:\n        proxy-host:\n'
                '          ansible_connection: local\n          ansible_python_interpreter: %s\n'
                '    primary:\n      hosts:\n        primary-stack:\n          wazo_mm_address: %s\n'
                '    secondary:\n      hosts:\n        secondary-stack: {}\n' % (sys.executable, PRIMARY[0]))
    out_file = os.path.join(env.base, 'drain-result.json')
    proc, finish = sipp_uac(env, calls=4, rate=50, duration_ms=25000, background=True, timeout=90)
    wait_until(lambda: rpc.backend_calls(1) == 4, 10, 0.05, '4 calls on the primary')
    rm.set_running(rpc, 'maintenance')
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
           os.path.join(HERE, 'drain.yml'), '-e', 'rpc_path=%s out_file=%s' % (env.sock, out_file)]
    envvars = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    p = subprocess.run(cmd, cwd=ROOT, env=envvars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=180, check=False)
    calls = finish(proc)
    assert p.returncode == 0, p.stdout[-4000:]
    assert calls.rc == 0 and calls.per_stack() == {'primary': 4}
    res = json.load(open(out_file))

    short = res['too_short']
    assert short['failed'] and not short['drained']
    assert short['remaining']['kamailio'] == 4 and 'not drained' in short['msg']
    assert '4 call(s) through the proxy (set 1)' in short['msg'] and short['outcome'] == 'deadline_stop', short
    assert short['stack'] == {'name': 'primary-stack', 'address': PRIMARY[0], 'setid': 1}

    checked = res['checked']
    assert not checked.get('failed') and len(checked['samples']) == 1 and checked['samples'][0]['kamailio'] == 4

    drained = res['drained']
    assert not drained.get('failed') and drained['drained'] and drained['changed'] is False
    assert drained['remaining'] == {'kamailio': 0, 'asterisk': None}
    ks = [s['kamailio'] for s in drained['samples']]
    assert ks[0] == 4 and ks[-1] == 0 and ks == sorted(ks, reverse=True)
    assert 0.5 < drained["waited"] < 60
    # progress printed on the controller between slices
    assert 'wait_for_drain: primary-stack: 4 call(s) on the proxy' in p.stdout, p.stdout[-3000:]
