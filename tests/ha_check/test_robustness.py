"""The HA check never dies silently and never leaves a failover half-owned (no network, no Kamailio).

Faults injected through the daemon's seams: the real backend (route_mode.switch, maintenance_lock,
routemode.cfg in a temporary state directory) over a fake Kamailio RPC, a fake prober, the state store.
"""
import json
import os
import socket

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import KamailioUnavailable
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import ProbeResult
from conftest import FakeBackend, MemoryState

UP = ProbeResult(True, 200, 'OK', 0.001)
DOWN = ProbeResult(False, detail='no answer within 0.40 s')
PRIMARY, SECONDARY = ('127.0.0.11', 5060), ('127.0.0.12', 5060)


class FakeRPC:
    """Kamailio's $shv(routemode) in memory. `lose_reply`: shvSet applies but its reply is lost (n times);
    `fail`: every call raises this exception."""

    def __init__(self, value=0):
        self.value = value
        self.lose_reply = 0
        self.fail = None
        self.sets = []

    def shv_get(self, name):
        if self.fail:
            raise self.fail
        return self.value

    def shv_set_int(self, name, value):
        if self.fail:
            raise self.fail
        self.value = int(value)
        self.sets.append(int(value))
        if self.lose_reply:
            self.lose_reply -= 1
            raise KamailioUnavailable('pv.shvSet: no reply from Kamailio within 1.0 s')
        return None


class ScriptedProber:
    """probe() returns the primary's result from `script` (last one repeated); an Exception in it is raised."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def probe(self):
        item = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(item, BaseException):
            raise item
        return {PRIMARY: item, SECONDARY: UP}

    def close(self):
        pass


class InstantStop:
    """The stop event of run(): never set, no waiting between rounds."""

    def is_set(self):
        return False

    def wait(self, _timeout):
        return False


def make_cfg(hc, state_dir, **kw):
    base = dict(primary=PRIMARY[0], secondary=SECONDARY[0], down_after=3, probe_interval=0.5, probe_timeout=0.4,
                failback_delay=0, min_transition_interval=0, state_dir=str(state_dir),
                failover_commands=[], failback_commands=[])
    base.update(kw)
    return hc.Config(**base).validate()


def real_backend(hc, cfg, rpc):
    backend = hc.KamailioBackend(cfg)
    backend.rpc = rpc
    return backend


def quiet_log(hc):
    return hc.Log(stream=open(os.devnull, 'w'), prefix=False, debug=True)


def logged(log, level=None):
    return '\n'.join(m for lvl, m in log.lines if level is None or lvl == level)


def run_rounds(hc, cfg, backend, script, rounds, store=None, log=None):
    log = log or quiet_log(hc)
    check = hc.run(cfg, log, InstantStop(), backend=backend, prober=ScriptedProber(script),
                   store=store or MemoryState(), max_rounds=rounds)
    return check, log


# -- the loop never dies --------------------------------------------------------------------------
def test_corrupt_lock_file_does_not_kill_the_loop(hcmod, tmp_path):
    """Bytes that are not text in maintenance.lock: counted as held, logged, every round still runs."""
    (tmp_path / 'maintenance.lock').write_bytes(b'\xff\xfe\x00garbage')
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    check, log = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), [DOWN], 8)
    assert check.state == hcmod.S_PAUSED, check.reason
    assert rpc.sets == []                                   # never failed over on a lock it cannot read
    assert 'PAUSED' in logged(log) and 'maintenance.lock' in logged(log)


def test_exception_in_probing_is_logged_and_next_round_runs(hcmod, tmp_path):
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    prober_script = [UP, RuntimeError('probe socket exploded'), RuntimeError('probe socket exploded'), DOWN]
    check, log = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), prober_script, 8)
    errors = logged(log, 'error')
    assert 'probe socket exploded' in errors and 'Traceback' in errors
    assert errors.count('error in a round') == 1                 # a repeat is counted, not logged each round
    assert 'recovered after 2 failed rounds' in logged(log)
    assert rpc.value == 2 and check.owned                  # the rounds after the error still decided


def test_unexpected_rpc_error_is_logged_and_retried(hcmod, tmp_path):
    """A Kamailio reply the client does not expect (any exception): error state, logged once, retried."""
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    rpc.fail = ValueError('garbage reply')
    store = MemoryState()
    check, log = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), [DOWN], 6, store=store)
    assert check.state == hcmod.S_ERROR and 'garbage reply' in check.reason
    assert logged(log, 'error').count('garbage reply') == 1
    rpc.fail = None
    check2, dummy = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), [DOWN], 4, store=store)
    assert rpc.value == 2 and check2.owned


def test_unwritable_state_dir_fails_no_switch_half_way(hcmod, tmp_path):
    """The state directory cannot be written (here: routemode.cfg and ha-check.json are directories):
    the persist fails -> Kamailio untouched, no ownership recorded, no lock; the round after the fix
    fails over."""
    (tmp_path / 'routemode.cfg').mkdir()
    (tmp_path / 'ha-check.json').mkdir()
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    store = hcmod.StateFile(cfg.state_file)
    check, log = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), [DOWN], 8, store=store)
    assert rpc.sets == [] and rpc.value == 0
    assert not check.owned and check.state == hcmod.S_ERROR
    assert 'FAILOVER FAILED' in logged(log, 'error') and 'routemode.cfg' in logged(log, 'error')
    assert 'cannot write state file' in logged(log, 'error')
    assert not (tmp_path / 'maintenance.lock').exists()
    os.rmdir(str(tmp_path / 'routemode.cfg'))
    os.rmdir(str(tmp_path / 'ha-check.json'))
    check2, dummy = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, rpc), [DOWN], 4, store=store)
    assert rpc.value == 2 and rm.read_persisted_mode(str(tmp_path)) == 'maintenance'
    assert json.loads((tmp_path / 'ha-check.json').read_text())['failover_owned'] is True


# -- a failed switch is never half-owned ----------------------------------------------------------
def test_failover_whose_reply_was_lost_is_completed_and_failed_back(hcmod, tmp_path):
    """Kamailio applied the failover but its reply was lost (the switch raised): the HA check retries it,
    owns it, and fails it back once the primary is back (not left as an operator's maintenance)."""
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    rpc.lose_reply = 1
    store = MemoryState()
    log = quiet_log(hcmod)
    backend = real_backend(hcmod, cfg, rpc)
    check, dummy = run_rounds(hcmod, cfg, backend, [UP, DOWN, DOWN, DOWN, DOWN], 5, store=store, log=log)
    assert rpc.value == 2 and check.owned and check.state == hcmod.S_FAILOVER
    assert store.data['failover_owned'] is True and not store.data.get('pending_switch')
    assert 'FAILOVER FAILED' in logged(log, 'error')
    check2, dummy = run_rounds(hcmod, cfg, backend, [UP], 3, store=store, log=log)
    assert rpc.value == 0 and rm.read_persisted_mode(str(tmp_path)) == 'normal'
    assert check2.state == hcmod.S_NORMAL and not check2.owned
    assert not (tmp_path / 'maintenance.lock').exists()


def test_partial_failover_is_undone_when_the_primary_is_back(hcmod, tmp_path):
    cfg = make_cfg(hcmod, tmp_path)
    rpc = FakeRPC(0)
    rpc.lose_reply = 1
    backend = real_backend(hcmod, cfg, rpc)
    store = MemoryState()
    check, log = run_rounds(hcmod, cfg, backend, [DOWN, DOWN, DOWN, UP], 5, store=store)
    assert rpc.value == 0 and rm.read_persisted_mode(str(tmp_path)) == 'normal'
    assert check.state == hcmod.S_NORMAL and not check.owned and not store.data.get('pending_switch')
    assert 'undone' in logged(log)


def test_failover_persisted_but_kamailio_refused_then_retried(hcmod, backend, make_check, clock):
    """The backend refuses once: no ownership recorded; the next round retries and then owns it."""
    store = MemoryState()
    check = make_check(store=store)
    backend.fail_set = 'Kamailio refused'
    for dummy in range(3):
        clock.advance(0.5)
        check.tick(DOWN, UP)
    assert backend.mode == 0 and not check.owned and store.data['failover_owned'] is False
    assert store.data['pending_switch']['to'] == 'maintenance'
    backend.fail_set = None
    clock.advance(0.5)
    check.tick(DOWN, UP)
    assert backend.sets == [2] and check.owned and store.data['failover_owned'] is True
    assert store.data['pending_switch'] is None


def test_switch_interrupted_then_restart_still_owns_it(hcmod, backend, make_check, clock):
    """The daemon dies in the middle of its failover (killed by the watchdog): the restarted daemon knows
    the maintenance mode is its own (written ahead in the state file) and fails it back."""

    class Killed(BaseException):
        pass

    store = MemoryState()
    check = make_check(store=store, failback_delay=5)
    real_set = backend.set_mode

    def set_then_die(value):
        real_set(value)
        raise Killed()
    backend.set_mode = set_then_die
    with pytest.raises(Killed):
        for dummy in range(3):
            clock.advance(0.5)
            check.tick(DOWN, UP)
    assert backend.mode == 2
    backend.set_mode = real_set
    check2 = make_check(store=store, failback_delay=5)
    for dummy in range(30):
        clock.advance(0.5)
        check2.tick(UP, UP)
    assert backend.mode == 0 and backend.sets == [2, 0] and not check2.owned


def test_error_after_the_switch_keeps_the_ownership(hcmod, backend, make_check, clock):
    """The switch succeeded, then starting the failover actions failed: the failover is still owned
    (recorded), the error logged, and the next rounds run."""
    store = MemoryState()
    check = make_check(store=store, failback_delay=2, min_transition_interval=0)

    def no_thread(*_args):
        raise RuntimeError("can't start new thread")
    check.runner.submit = no_thread
    for dummy in range(3):
        clock.advance(0.5)
        check.tick(DOWN, UP)
    assert backend.mode == 2 and check.owned and store.data['failover_owned'] is True
    assert "can't start new thread" in logged(check.log, 'error')
    for dummy in range(10):
        clock.advance(0.5)
        check.tick(UP, UP)
    assert backend.sets == [2, 0]


# -- the lock is read again right before acting --------------------------------------------------
class LateLockBackend(FakeBackend):
    """The lock appears between the round's first read and the switch."""

    def __init__(self, mode=0):
        super(LateLockBackend, self).__init__(mode)
        self.arm = False
        self.reads = 0
        self.reads_armed = None

    def get_lock(self):
        self.reads += 1
        if self.arm and self.reads_armed is not None and self.reads > self.reads_armed:
            return {'owner': 'wazo-mode', 'reason': 'operator maintenance', 'since': 'now'}
        return None

    def arm_after_next_read(self):
        self.arm = True
        self.reads_armed = self.reads + 1


@pytest.fixture
def late_lock_check(clock, hcmod):
    def _make(**cfg):
        backend = LateLockBackend()
        base = dict(primary='127.0.0.11', secondary='127.0.0.12', down_after=3, probe_interval=0.5,
                    probe_timeout=0.4, failback_delay=5, min_transition_interval=0)
        base.update(cfg)
        check = hcmod.HACheck(hcmod.Config(**base).validate(), backend, quiet_log(hcmod), MemoryState(),
                              clock=clock, wall=clock.wall)
        return check, backend
    return _make


def test_lock_taken_just_before_failover_stops_it(late_lock_check, clock, hcmod):
    check, backend = late_lock_check()
    for dummy in range(2):
        clock.advance(0.5)
        check.tick(DOWN, UP)
    backend.arm_after_next_read()               # the 3rd round decides the failover: the lock comes first
    clock.advance(0.5)
    check.tick(DOWN, UP)
    assert backend.sets == [] and not check.owned
    assert check.state == hcmod.S_PAUSED
    msg = logged(check.log)
    assert 'FAILOVER not made' in msg and 'wazo-mode' in msg


def test_lock_taken_just_before_failback_stops_it(late_lock_check, clock, hcmod):
    check, backend = late_lock_check()
    for dummy in range(3):
        clock.advance(0.5)
        check.tick(DOWN, UP)
    assert backend.sets == [2]
    for dummy in range(10):
        clock.advance(0.5)
        check.tick(UP, UP)
        if check.p_healthy_since is not None and clock.now - check.p_healthy_since >= 4.5:
            break
    backend.arm_after_next_read()
    clock.advance(0.5)
    check.tick(UP, UP)
    assert backend.sets == [2] and backend.mode == 2
    assert 'FAILBACK not made' in logged(check.log)


# -- systemd: READY and WATCHDOG through $NOTIFY_SOCKET -------------------------------------------
def _notify_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    return sock


def _datagrams(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            return out


@pytest.mark.parametrize('abstract', [False, True])
def test_ready_then_watchdog_every_round(hcmod, tmp_path, monkeypatch, abstract):
    path = str(tmp_path / 'notify') if not abstract else '\0wazo-mm-test-%d' % os.getpid()
    sock = _notify_socket(path)
    try:
        monkeypatch.setenv('NOTIFY_SOCKET', path if not abstract else '@' + path[1:])
        monkeypatch.setenv('WATCHDOG_USEC', '10000000')
        monkeypatch.setenv('WATCHDOG_PID', str(os.getpid()))
        cfg = make_cfg(hcmod, tmp_path)
        run_rounds(hcmod, cfg, real_backend(hcmod, cfg, FakeRPC(0)), [UP], 4)
        messages = _datagrams(sock)
    finally:
        sock.close()
    assert messages and 'READY=1' in messages[0].split('\n')
    assert sum('WATCHDOG=1' in m.split('\n') for m in messages) >= 3
    assert any(line.startswith('STATUS=') for m in messages for line in m.split('\n'))
    assert 'STOPPING=1' in messages[-1].split('\n')


def test_no_notify_socket_is_fine(hcmod, tmp_path, monkeypatch):
    monkeypatch.delenv('NOTIFY_SOCKET', raising=False)
    cfg = make_cfg(hcmod, tmp_path)
    check, dummy = run_rounds(hcmod, cfg, real_backend(hcmod, cfg, FakeRPC(0)), [UP], 2)
    assert check.state == hcmod.S_NORMAL
