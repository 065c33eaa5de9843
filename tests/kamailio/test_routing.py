# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real SIP through the role's Kamailio configuration: routing by mode and by domain, no call dropped."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from conftest import DOMAINS, sipp_uac, wait_until
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm


def test_calls_land_on_primary_in_normal_mode(env, stacks, kamailio, normal_mode):
    res = sipp_uac(env, calls=10, rate=20)
    assert res.rc == 0, res.output[-3000:]
    assert res.per_stack() == {'primary': 10}
    assert res.per_stack('bye_ok') == {'primary': 10}


def test_calls_land_on_secondary_in_maintenance(env, stacks, kamailio, normal_mode):
    rm.set_running(env.rpc(), 'maintenance')
    res = sipp_uac(env, calls=10, rate=20)
    assert res.rc == 0, res.output[-3000:]
    assert res.per_stack() == {'secondary': 10}
    assert res.per_stack('bye_ok') == {'secondary': 10}


def test_register_follows_the_to_domain_not_the_mode(env, stacks, kamailio, normal_mode):
    for mode in ('normal', 'maintenance'):
        rm.set_running(env.rpc(), mode)
        r1 = sipp_uac(env, scenario='phone_register.xml', calls=3, domain=DOMAINS[0])
        r2 = sipp_uac(env, scenario='phone_register.xml', calls=3, domain=DOMAINS[1].upper())
        assert r1.rc == 0 and r2.rc == 0, r1.output[-2000:] + r2.output[-2000:]
        assert r1.per_stack('registered') == {'primary': 3}, mode
        assert r2.per_stack('registered') == {'secondary': 3}, mode


def test_mode_switch_mid_load_drops_no_call(env, stacks, kamailio, normal_mode):
    """Calls set up before the switch keep their stack (in-dialog BYE reaches it); new ones move."""
    rpc = env.rpc()
    calls = 60
    proc, finish = sipp_uac(env, calls=calls, rate=20, duration_ms=2000, background=True, timeout=60)
    wait_until(lambda: rpc.backend_calls(1) >= 10, 10, 0.05, '10 live calls on the primary')
    rm.set_running(rpc, 'maintenance')
    switched_at_calls = rpc.backend_calls(1)
    # live calls still counted on the primary right after the switch
    assert switched_at_calls >= 10
    res = finish(proc)
    assert res.rc == 0, res.output[-3000:]
    assert res.failed == 0 and res.successful == calls, (res.successful, res.failed)
    per = res.per_stack()
    assert per.get('primary', 0) >= 10 and per.get('secondary', 0) >= 10, per
    assert sum(per.values()) == calls
    # Every BYE was answered by the stack that answered the INVITE ...
    assert res.bye_ok == res.answered
    # ... and each stack saw exactly the BYEs of its own calls.
    for name in ('primary', 'secondary'):
        mine = set(c for c, s in res.answered.items() if s == name)
        assert mine <= set(stacks[name].events('BYE'))
        assert not (set(c for c, s in res.answered.items() if s != name) & set(stacks[name].events('BYE')))
    wait_until(lambda: rpc.backend_calls(1) == 0 and rpc.backend_calls(2) == 0, 5, 0.05, 'dialogs ended')


def test_profile_size_counts_live_calls_per_stack(env, stacks, kamailio, normal_mode):
    rpc = env.rpc()
    assert rpc.backend_calls(1) == 0 and rpc.backend_calls(2) == 0
    proc1, fin1 = sipp_uac(env, calls=5, rate=50, duration_ms=3000, background=True)
    wait_until(lambda: rpc.backend_calls(1) == 5, 10, 0.05, '5 calls on the primary')
    rm.set_running(rpc, 'maintenance')
    proc2, fin2 = sipp_uac(env, calls=3, rate=50, duration_ms=3000, background=True)
    wait_until(lambda: rpc.backend_calls(2) == 3, 10, 0.05, '3 calls on the secondary')
    assert rpc.backend_calls(1) == 5
    assert rpc.profile_size('backend') == 8
    r1, r2 = fin1(proc1), fin2(proc2)
    assert r1.rc == 0 and r2.rc == 0
    wait_until(lambda: rpc.backend_calls(1) == 0 and rpc.backend_calls(2) == 0, 5, 0.05, 'dialogs ended')


def test_dispatcher_probes_see_a_dead_stack(env, stacks, kamailio, normal_mode):
    rpc = env.rpc()
    stacks['secondary'].stop()
    try:
        started = time.monotonic()
        wait_until(lambda: [d for d in rpc.dispatcher_list() if d['setid'] == 2 and not d['active']],
                   10, 0.1, 'secondary inactive')
        detected = time.monotonic() - started
        assert detected < 6, detected
        # the primary stays active
        assert [d['active'] for d in rpc.dispatcher_list() if d['setid'] == 1] == [True]
        # maintenance mode with the secondary down: new calls are refused (503), not sent to the primary
        rm.set_running(rpc, 'maintenance')
        res = sipp_uac(env, calls=1, recv_timeout_ms=2000)
        assert res.rc != 0 and res.answered == {}
    finally:
        stacks['secondary'].start()
    wait_until(lambda: all(d['active'] for d in rpc.dispatcher_list()), 10, 0.1, 'secondary back')
