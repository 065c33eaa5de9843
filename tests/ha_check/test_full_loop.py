"""Full loop on loopback: real Kamailio (kamailio_proxy role's config), SIPp stacks, the HA check daemon
loop with the real backend (the collection's KamailioRPC, routemode.cfg, maintenance.lock).

Kill the primary's SIP -> route mode 2 within 5 s, persisted; calls land on the secondary; primary back ->
failback only after failback_delay, once; the lock pauses everything. Loopback only, every wait bounded.
"""
import json
import os
import shutil
import time

import pytest

import kamailio_loop
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm

harness = kamailio_loop.load_harness()
pytestmark = [
    pytest.mark.skipif(harness is None, reason='tests/kamailio harness not present'),
    pytest.mark.skipif(not (shutil.which('kamailio') or os.path.exists('/usr/sbin/kamailio')) or not shutil.which('sipp'),
                       reason='kamailio or sipp not installed'),
]


@pytest.fixture(scope='module')
def loop_env():
    import wazo_ha_check
    lp = kamailio_loop.Loop(harness, wazo_ha_check, failback_delay=4, min_transition_interval=1).start()
    yield lp
    lp.close()


@pytest.fixture
def loop(loop_env):
    loop_env.reset()
    yield loop_env
    loop_env.stop_check()


def wait_state(loop, state, timeout=3):
    return harness.wait_until(lambda: loop.state().get('state') == state and loop.state(), timeout, 0.05,
                              'HA check state %s' % state)


def test_failover_then_single_failback(loop):
    loop.start_check()
    assert loop.call() == 'primary'
    t0 = time.monotonic()
    loop.silence_primary('kill')
    took = loop.wait_mode('maintenance', 8)
    assert took is not None and took <= 5.0, 'no failover within 5 s (%s); log: %s' % (took, loop.log.lines[-8:])
    harness.wait_until(lambda: loop.persisted() == 'maintenance', 2, 0.02, 'mode persisted')  # survives a restart
    st = wait_state(loop, 'failover')
    assert st['state'] == 'failover' and st['failover_owned'] is True
    assert st['last_transition']['by'] == 'wazo-ha-check' and st['last_transition']['to'] == 'maintenance'
    # the first new call after the switch is answered by the secondary
    assert loop.call() == 'secondary'
    # primary back: nothing for failback_delay (4 s), then exactly one failback
    loop.revive_primary('kill')
    back = time.monotonic()
    time.sleep(3)
    assert loop.mode() == 'maintenance'
    took_back = loop.wait_mode('normal', 6)
    assert took_back is not None
    assert time.monotonic() - back >= 4
    harness.wait_until(lambda: loop.persisted() == 'normal', 2, 0.02, 'mode persisted')
    time.sleep(2)
    st = wait_state(loop, 'normal')
    assert st['transitions'] == 2 and st['state'] == 'normal' and not st['failover_owned']
    kinds = [m for dummy, m in loop.log.lines if m.startswith(('FAILOVER:', 'FAILBACK:'))]
    assert len(kinds) == 2, kinds
    assert loop.call() == 'primary'
    print('failover %.2f s after the primary was killed (%.2f s including the test harness)'
          % (took, time.monotonic() - t0))


def test_silent_primary_fails_over_within_5s(loop):
    """SIGSTOP: the socket stays, nothing answers (no ICMP): the slow path, timeouts only."""
    loop.start_check()
    loop.silence_primary('stop')
    took = loop.wait_mode('maintenance', 8)
    assert took is not None and took <= 5.0, took
    assert 'no answer' in wait_state(loop, 'failover')['primary']['last_probe']


def test_lock_pauses_then_release_fails_over(loop):
    loop.start_check()
    ml.take_lock('pytest', 'operator at work', state_dir=loop.env.state)
    loop.silence_primary('kill')
    assert loop.wait_mode('maintenance', 3) is None    # paused: no failover
    st = wait_state(loop, 'paused')
    assert st['state'] == 'paused' and st['lock']['owner'] == 'pytest'
    ml.release_lock('pytest', state_dir=loop.env.state)
    assert loop.wait_mode('maintenance', 3) is not None


def test_operator_maintenance_is_not_failed_back(loop):
    loop.start_check()
    rpc = loop.env.rpc()
    rm.set_running(rpc, 'maintenance')                 # like wazo-mode maintenance, then lock released
    time.sleep(6)                                     # > failback_delay with a healthy primary
    assert loop.mode() == 'maintenance'
    st = loop.state()
    assert st['state'] == 'operator' and not st['failover_owned']
    with open(os.path.join(loop.env.state, 'ha-check.json')) as f:
        json.load(f)


def test_corrupt_lock_file_does_not_kill_the_loop(loop):
    """Bytes that are not text in maintenance.lock: the daemon keeps running, counts the lock as held
    (no failover on a lock it cannot read), and fails over as soon as the file is removed."""
    loop.start_check()
    lock = os.path.join(loop.env.state, 'maintenance.lock')
    with open(lock, 'wb') as f:
        f.write(b'\xff\xfe\x00not a lock')
    try:
        loop.silence_primary('kill')
        assert loop.wait_mode('maintenance', 3) is None
        st = wait_state(loop, 'paused')
        assert loop.thread.is_alive() and 'maintenance.lock' in st['reason']
    finally:
        os.unlink(lock)
    assert loop.wait_mode('maintenance', 3) is not None
    assert wait_state(loop, 'failover')['failover_owned'] is True


def test_persist_failure_is_not_a_failover(loop):
    """routemode.cfg cannot be written: Kamailio is not switched, no failover is owned, the error is in
    the state; once the file can be written the next round fails over, file and Kamailio together."""
    loop.start_check()
    path = os.path.join(loop.env.state, 'routemode.cfg')
    os.rename(path, path + '.saved')
    os.mkdir(path)
    try:
        loop.silence_primary('kill')
        st = wait_state(loop, 'error', timeout=4)
        assert 'failover failed' in st['reason'] and 'routemode.cfg' in st['reason']
        assert not st['failover_owned'] and st['pending_switch']['to'] == 'maintenance'
        assert loop.mode() == 'normal' and loop.thread.is_alive()
        assert not os.path.exists(os.path.join(loop.env.state, 'maintenance.lock'))
    finally:
        os.rmdir(path)
        os.rename(path + '.saved', path)
    assert loop.wait_mode('maintenance', 3) is not None
    harness.wait_until(lambda: loop.persisted() == 'maintenance', 2, 0.02, 'mode persisted')
    st = wait_state(loop, 'failover')
    assert st['failover_owned'] is True and st['pending_switch'] is None
