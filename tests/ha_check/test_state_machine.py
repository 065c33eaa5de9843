"""The HA check's decisions, with a fake clock and a fake proxy (no network, no Kamailio)."""
import json

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import ProbeResult
from conftest import MemoryState

UP, DOWN = True, False


def probe(hc, ok):
    return ProbeResult(True, 200, 'OK', 0.001) if ok else ProbeResult(False, detail='no answer within 0.40 s')


def ticks(check, clock, hc, primary_ok, seconds, secondary_ok=True, step=0.5):
    """Tick every `step` seconds for `seconds`; returns the times (relative) at which the mode changed."""
    changes = []
    t0 = clock.now
    for dummy in range(int(round(seconds / step))):
        clock.advance(step)
        before = check.backend.mode
        check.tick(probe(hc, primary_ok), probe(hc, secondary_ok))
        if check.backend.mode != before:
            changes.append((round(clock.now - t0, 2), check.backend.mode))
    return changes


def test_healthy_primary_stays_normal(make_check, clock, backend, hcmod):
    check = make_check()
    assert ticks(check, clock, hcmod, UP, 30) == []
    assert check.state == hcmod.S_NORMAL
    assert backend.sets == []


def test_down_after_n_consecutive_failures(make_check, clock, backend, hcmod):
    check = make_check()
    ticks(check, clock, hcmod, UP, 2)
    assert ticks(check, clock, hcmod, DOWN, 1.0) == []           # 2 misses: not yet
    assert ticks(check, clock, hcmod, DOWN, 0.5) == [(0.5, 2)]  # 3rd miss: failover
    assert check.state == hcmod.S_FAILOVER and check.owned
    # failover actions go to the secondary, the whole upstream list
    assert check.runner.batches == [('failover', '127.0.0.12', hcmod.DEFAULT_FAILOVER_COMMANDS)]
    assert check.last_transition['to'] == 'maintenance' and check.last_transition['by'] == 'wazo-ha-check'
    assert '3 consecutive' in check.last_transition['reason']


def test_isolated_misses_do_not_fail_over(make_check, clock, backend, hcmod):
    check = make_check()
    for dummy in range(20):
        ticks(check, clock, hcmod, DOWN, 1.0)   # two misses
        ticks(check, clock, hcmod, UP, 0.5)     # one answer resets the count
    assert backend.sets == []


def test_failover_within_5s_budget(make_check, clock, backend, hcmod):
    check = make_check()
    ticks(check, clock, hcmod, UP, 5)
    changes = ticks(check, clock, hcmod, DOWN, 10)
    # silent from the first failed probe: decided at the 3rd, i.e. after 2 intervals + the probe's own timeout
    assert changes[0][1] == 2 and changes[0][0] <= 5
    assert check.cfg.detection_time <= 5


def test_failback_only_after_t_continuous_health(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=60)
    ticks(check, clock, hcmod, DOWN, 3)
    assert backend.mode == 2
    assert ticks(check, clock, hcmod, UP, 59.5) == []
    assert check.state == hcmod.S_FAILOVER
    changes = ticks(check, clock, hcmod, UP, 1.0)
    assert [m for dummy, m in changes] == [0]
    assert check.state == hcmod.S_NORMAL and not check.owned
    assert backend.sets == [2, 0]
    assert check.last_transition['kind'] == 'failback'


def test_failback_timer_restarts_on_any_failure(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=60)
    ticks(check, clock, hcmod, DOWN, 3)
    ticks(check, clock, hcmod, UP, 50)
    ticks(check, clock, hcmod, DOWN, 0.5)       # one miss: the 60 s start again
    assert ticks(check, clock, hcmod, UP, 59.5) == []
    assert ticks(check, clock, hcmod, UP, 1.0) != []
    assert backend.sets == [2, 0]


def test_no_flapping_min_transition_interval(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=1, min_transition_interval=30)
    ticks(check, clock, hcmod, DOWN, 2)                   # failover at t=1.5
    ticks(check, clock, hcmod, UP, 5)                     # healthy 1 s would allow failback, interval does not
    assert backend.sets == [2]
    changes = ticks(check, clock, hcmod, UP, 30)
    assert [m for dummy, m in changes] == [0]
    # failback at >= 30 s after the failover
    assert check.last_transition['kind'] == 'failback'
    # a flapping primary: down again right away -> deferred until 30 s after the failback
    t_fb = check.last_transition_mono
    t0 = clock.now
    changes = ticks(check, clock, hcmod, DOWN, 40)
    assert len(changes) == 1 and changes[0][1] == 2
    assert t0 + changes[0][0] - t_fb >= 30 - 1e-6
    assert any('failover deferred' in m for dummy, m in check.log.lines)


def test_flapping_primary_bounded_transitions(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=60, min_transition_interval=10)
    for dummy in range(30):                                   # 30 cycles of 20 s up / 2 s down
        ticks(check, clock, hcmod, UP, 20)
        ticks(check, clock, hcmod, DOWN, 2)
    assert backend.sets == [2]                            # failed over once, never failed back
    assert check.state == hcmod.S_FAILOVER


def test_lock_blocks_failover(make_check, clock, backend, hcmod):
    check = make_check()
    ticks(check, clock, hcmod, UP, 2)
    backend.lock = {'owner': 'upgrade.yml', 'reason': 'upgrading the primary', 'since': '2026-01-01T00:00:00Z'}
    ticks(check, clock, hcmod, DOWN, 30)
    assert backend.sets == []
    assert check.state == hcmod.S_PAUSED
    assert 'upgrade.yml' in check.reason
    logged = ' '.join(m for dummy, m in check.log.lines)
    assert 'PAUSED' in logged and 'not failing over' in logged
    # released while the primary is still down: fails over on the next round
    backend.lock = None
    changes = ticks(check, clock, hcmod, DOWN, 0.5)
    assert changes == [(0.5, 2)]


def test_lock_blocks_failback(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=60)
    ticks(check, clock, hcmod, DOWN, 3)
    backend.lock = {'owner': 'wazo-mode', 'reason': 'operator', 'since': 'x'}
    ticks(check, clock, hcmod, UP, 300)
    assert backend.sets == [2]
    assert check.state == hcmod.S_PAUSED
    backend.lock = None                                   # mode untouched during the lock: still ours
    changes = ticks(check, clock, hcmod, UP, 0.5)
    assert [m for dummy, m in changes] == [0]


def test_operator_maintenance_not_undone(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=5)
    ticks(check, clock, hcmod, UP, 2)
    backend.mode = 2                                      # wazo-mode maintenance (lock already released)
    ticks(check, clock, hcmod, UP, 300)
    assert backend.sets == []
    assert check.state == hcmod.S_OPERATOR and not check.owned
    ticks(check, clock, hcmod, DOWN, 10)                  # primary dies during operator maintenance: nothing to do
    assert backend.sets == []
    backend.mode = 0                                      # operator back to normal
    ticks(check, clock, hcmod, UP, 2)
    assert check.state == hcmod.S_NORMAL


def test_operator_takes_over_a_failover(make_check, clock, backend, hcmod):
    """Mode changed while the lock is held (operator ran wazo-mode): the failover is no longer ours."""
    check = make_check(failback_delay=5)
    ticks(check, clock, hcmod, DOWN, 3)
    assert check.owned
    backend.lock = {'owner': 'wazo-mode', 'reason': 'x', 'since': 'x'}
    backend.mode = 0
    ticks(check, clock, hcmod, DOWN, 1)
    backend.mode = 2
    ticks(check, clock, hcmod, UP, 1)
    backend.lock = None
    ticks(check, clock, hcmod, UP, 100)
    assert backend.sets == [2]
    assert check.state == hcmod.S_OPERATOR


def test_operator_mode_at_start_not_undone(clock, backend, make_check, hcmod):
    backend.mode = 2
    check = make_check(failback_delay=5)
    ticks(check, clock, hcmod, UP, 100)
    assert backend.sets == [] and check.state == hcmod.S_OPERATOR


def test_own_failover_survives_restart(clock, backend, make_check, hcmod):
    store = MemoryState()
    check = make_check(store=store, failback_delay=5)
    ticks(check, clock, hcmod, DOWN, 3)
    assert store.data['failover_owned'] is True and store.data['state'] == 'failover'
    check2 = make_check(store=store, failback_delay=5)    # daemon restarted
    ticks(check2, clock, hcmod, UP, 10)
    assert backend.sets == [2, 0]


def test_mode_rewritten_while_stopped_is_not_ours(clock, backend, make_check, hcmod):
    """Stopped during our failover (upgrade.yml stops the service); routemode.cfg rewritten meanwhile."""
    store = MemoryState()
    check = make_check(store=store, failback_delay=5)
    ticks(check, clock, hcmod, DOWN, 3)
    backend.persisted_mode_mtime = lambda: clock.wall() + 100     # rewritten 100 s after our switch
    clock.advance(200)
    check2 = make_check(store=store, failback_delay=5)
    ticks(check2, clock, hcmod, UP, 30)
    assert backend.sets == [2] and check2.state == hcmod.S_OPERATOR


def test_secondary_down_too_no_failover(make_check, clock, backend, hcmod):
    check = make_check()
    ticks(check, clock, hcmod, DOWN, 10, secondary_ok=False)
    assert backend.sets == []
    assert 'secondary' in check.reason
    ticks(check, clock, hcmod, DOWN, 0.5, secondary_ok=True)
    assert backend.sets == [2]


def test_secondary_check_can_be_disabled(make_check, clock, backend, hcmod):
    check = make_check(require_secondary_healthy=False)
    ticks(check, clock, hcmod, DOWN, 2, secondary_ok=False)
    assert backend.sets == [2]


def test_kamailio_unreachable_then_retry(make_check, clock, backend, hcmod):
    check = make_check()
    backend.fail_set = 'no reply from Kamailio'
    ticks(check, clock, hcmod, DOWN, 3)
    assert backend.sets == [] and check.state == hcmod.S_ERROR
    backend.fail_set = None
    ticks(check, clock, hcmod, DOWN, 0.5)
    assert backend.sets == [2]
    backend.fail_get = 'socket missing'
    ticks(check, clock, hcmod, UP, 100)
    assert backend.sets == [2] and check.state == hcmod.S_ERROR
    errors = [m for lvl, m in check.log.lines if lvl == 'error' and 'cannot read' in m]
    assert len(errors) == 1                                # logged once, not every 0.5 s


def test_every_transition_logged_with_reason(make_check, clock, backend, hcmod):
    check = make_check(failback_delay=5, min_transition_interval=0)
    ticks(check, clock, hcmod, DOWN, 2)
    ticks(check, clock, hcmod, UP, 6)
    notices = [m for lvl, m in check.log.lines if lvl == 'notice']
    fo = [m for m in notices if m.startswith('FAILOVER:')]
    fb = [m for m in notices if m.startswith('FAILBACK:')]
    assert len(fo) == 1 and 'normal -> maintenance' in fo[0] and 'consecutive SIP OPTIONS probes' in fo[0]
    assert len(fb) == 1 and 'maintenance -> normal' in fb[0] and 'for 5' in fb[0]


def test_state_file_format(make_check, clock, backend, hcmod, tmp_path):
    store = hcmod.StateFile(str(tmp_path / 'ha-check.json'))
    check = make_check(store=store)
    ticks(check, clock, hcmod, DOWN, 2)
    data = json.loads((tmp_path / 'ha-check.json').read_text())
    for key in ('version', 'state', 'since', 'reason', 'route_mode', 'failover_owned', 'lock', 'primary',
                'secondary', 'last_transition', 'transitions', 'last_actions', 'updated'):
        assert key in data, key
    assert data['state'] == 'failover' and data['route_mode'] == 'maintenance' and data['failover_owned']
    assert set(data['last_transition']) == {'at', 'epoch', 'from', 'to', 'by', 'kind', 'reason'}
    assert data['primary']['down'] is True and data['primary']['consecutive_failures'] >= 3


def test_actions_run_in_order_and_failure_does_not_block(hcmod, backend):
    log = hcmod.Log(stream=open('/dev/null', 'w'), prefix=False)
    done = []
    runner = hcmod.ActionRunner(backend.ssh_run, log, on_done=lambda *a: done.append(a))
    runner.submit('failover', '10.0.0.2', ['systemctl restart a', 'will fail', 'asterisk -rx x'])
    assert runner.wait(5)
    assert [c for dummy, c in backend.ran] == ['systemctl restart a', 'will fail', 'asterisk -rx x']
    results = done[0][2]
    assert [r['ok'] for r in results] == [True, False, True]
    lines = [m for dummy, m in log.lines]
    assert any('action 2/3' in m and 'FAILED rc=1' in m for m in lines)


def test_action_exit_code_lies(hcmod):
    log = hcmod.Log(stream=open('/dev/null', 'w'), prefix=False)

    def run(host, command):
        if command == 'raise':
            raise hcmod.BackendError('ssh root@h:22: timed out')
        return 0, 'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)', ''
    runner = hcmod.ActionRunner(run, log)
    res = runner.run_batch('failover', 'h', ["asterisk -rx 'core reload'", 'raise'])
    assert [r['ok'] for r in res] == [False, False]
    assert 'not run' in res[1]['result']


CONF = """[ha-check]
primary = 10.0.0.11
secondary = 10.0.0.12
failback_delay = 30
failover_commands =
    systemctl restart wazo-agid
    asterisk -rx 'core reload'
"""


def test_config_load_and_check(tmp_path, hcmod, capsys):
    path = tmp_path / 'ha-check.conf'
    path.write_text(CONF)
    cfg = hcmod.Config.load(str(path))
    assert cfg.failback_delay == 30 and cfg.failover_commands == ['systemctl restart wazo-agid',
                                                                  "asterisk -rx 'core reload'"]
    assert hcmod.main(['--check-config', str(path)]) == 0


@pytest.mark.parametrize('bad', [
    CONF.replace('10.0.0.12', 'not-an-ip'),
    CONF.replace('failback_delay = 30', 'failback_delay = soon'),
    CONF + 'unknown_key = 1\n',
    CONF.replace('[ha-check]\n', '[ha-check]\nprobe_timeout = 2\n'),
    CONF.replace('secondary = 10.0.0.12\n', ''),
    '[other]\nprimary = 1.2.3.4\n',
])
def test_config_invalid(tmp_path, hcmod, bad):
    path = tmp_path / 'ha-check.conf'
    path.write_text(bad)
    with pytest.raises(hcmod.ConfigError):
        hcmod.Config.load(str(path))
    assert hcmod.main(['--check-config', str(path)]) == 1
