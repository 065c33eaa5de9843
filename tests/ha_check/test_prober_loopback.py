"""The OPTIONS prober and the daemon loop against real SIPp UAS processes on loopback (127.0.24.x).

Network: loopback only. Every loop is bounded in count and in time; SIPp runs with a global -timeout.
"""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import FakeBackend, MemoryState

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, 'sipp', 'uas_options.xml')
PRIMARY, SECONDARY = '127.0.24.11', '127.0.24.12'

pytestmark = pytest.mark.skipif(shutil.which('sipp') is None, reason='sipp not installed')


def free_udp(ip):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Sipp:
    """A SIPp OPTIONS responder on ip:port (killed at teardown; 120 s global timeout anyway)."""

    def __init__(self, ip, port, tmp):
        self.ip, self.port, self.tmp = ip, port, tmp
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ['sipp', '-sf', SCENARIO, '-i', self.ip, '-p', str(self.port), '-nostdin', '-timeout', '120',
             '-max_recv_loops', '100', '-trace_err', '-error_file', os.path.join(self.tmp, 'sipp-%d.err' % self.port)],
            cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # ready when it answers (bounded: 50 x 0.1 s)
        import wazo_ha_check as hc
        prober = hc.OptionsProber([(self.ip, self.port)], 0.1)
        try:
            for dummy in range(50):
                if prober.probe()[(self.ip, self.port)].ok:
                    return self
                assert self.proc.poll() is None, 'sipp exited with %s' % self.proc.returncode
                time.sleep(0.1)
        finally:
            prober.close()
        raise AssertionError('sipp on %s:%d never answered' % (self.ip, self.port))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def sipp_factory(tmp_path):
    started = []

    def _start(ip, port):
        s = Sipp(ip, port, str(tmp_path)).start()
        started.append(s)
        return s
    yield _start
    for s in started:
        s.kill()


def test_probe_answered_by_sipp(sipp_factory, hcmod):
    port = free_udp(PRIMARY)
    sipp_factory(PRIMARY, port)
    prober = hcmod.OptionsProber([(PRIMARY, port)], 0.4)
    try:
        results = [prober.probe()[(PRIMARY, port)] for dummy in range(10)]
    finally:
        prober.close()
    assert all(r.ok and r.code == 200 for r in results), results
    assert max(r.rtt for r in results) < 0.4


def test_probe_port_unreachable_is_immediate(hcmod):
    port = free_udp(PRIMARY)
    prober = hcmod.OptionsProber([(PRIMARY, port)], 0.4)
    try:
        start = time.monotonic()
        res = prober.probe()[(PRIMARY, port)]
        took = time.monotonic() - start
    finally:
        prober.close()
    assert not res.ok and 'unreachable' in res.detail
    assert took < 0.2


def test_probe_silent_peer_times_out(hcmod):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((PRIMARY, 0))
        port = silent.getsockname()[1]
        prober = hcmod.OptionsProber([(PRIMARY, port)], 0.3)
        try:
            start = time.monotonic()
            res = prober.probe()[(PRIMARY, port)]
            took = time.monotonic() - start
        finally:
            prober.close()
    assert not res.ok and 'no answer' in res.detail
    assert 0.28 <= took < 0.6


def test_late_answer_to_an_earlier_probe_does_not_count(hcmod):
    """A peer answering each OPTIONS 0.5 s late: every answer arrives during the next probe, and is ignored."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind((PRIMARY, 0))
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        stop = threading.Event()

        def slow():
            while not stop.is_set():
                try:
                    data, addr = srv.recvfrom(65535)
                except socket.timeout:
                    continue
                head = data.decode().split('\r\n')
                keep = [h for h in head if h.split(':')[0] in ('Via', 'From', 'To', 'Call-ID', 'CSeq')]
                time.sleep(0.5)
                srv.sendto(('SIP/2.0 200 OK\r\n' + '\r\n'.join(keep) + '\r\nContent-Length: 0\r\n\r\n').encode(), addr)
        t = threading.Thread(target=slow, daemon=True)
        t.start()
        prober = hcmod.OptionsProber([(PRIMARY, port)], 0.3)
        try:
            results = []
            for dummy in range(4):
                results.append(prober.probe()[(PRIMARY, port)])
                time.sleep(0.2)
        finally:
            prober.close()
            stop.set()
            t.join(2)
    assert not any(r.ok for r in results), results


def test_daemon_loop_fails_over_within_5s_when_sipp_primary_dies(sipp_factory, hcmod):
    """The real loop (prober + decisions + timing) against SIPp primary/secondary; Kamailio faked."""
    pport, sport = free_udp(PRIMARY), free_udp(SECONDARY)
    primary = sipp_factory(PRIMARY, pport)
    sipp_factory(SECONDARY, sport)
    cfg = hcmod.Config(primary=PRIMARY, primary_port=pport, secondary=SECONDARY, secondary_port=sport,
                       failback_delay=60, failover_commands=['true']).validate()
    backend = FakeBackend()
    switched = {}
    orig_set = backend.set_mode

    def set_mode(value):
        switched.setdefault(value, time.monotonic())
        orig_set(value)
    backend.set_mode = set_mode
    log = hcmod.Log(stream=open(os.devnull, 'w'), prefix=False)
    stop = threading.Event()
    store = MemoryState()
    out = {}
    runner = threading.Thread(target=lambda: out.setdefault('check', hcmod.run(
        cfg, log, stop, backend=backend, store=store, max_rounds=60)), daemon=True)
    runner.start()
    try:
        time.sleep(2)
        assert backend.sets == [] and store.data.get('state') == 'normal'
        killed = time.monotonic()
        primary.kill()
        for dummy in range(100):                       # bounded: 10 s
            if 2 in switched:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(10)
    assert 2 in switched, 'no failover; log: %s' % log.lines[-10:]
    took = switched[2] - killed
    assert took <= 5.0, took
    assert out['check'].runner.wait(5)
    assert backend.ran == [(SECONDARY, 'true')]          # the failover action ran on the secondary
    print('failover after %.2f s' % took)
