#!/usr/bin/env python
"""P3 drain latency and switch latency, on loopback, with the modules' own code.

Loopback bench (no lab): a real Kamailio with the kamailio_proxy role's own config and two SIPp stacks,
started by the harness in tests/kamailio/conftest.py through tests/ha_check/kamailio_loop.py, on this
bench's own addresses (127.0.26.10-12, ports 15460-15462). Both modules run in-process (main(), the
same way the unit tests run them), against the real RPC socket.

  drain   calls are up on the primary; kamailio_mode switches to maintenance; wait_for_drain (the module,
          poll_interval 0.5 s, check_asterisk false: no Asterisk on loopback) runs until drained.
          P3 = from the moment Kamailio's `backend` profile for set 1 reads 0 (polled every 10 ms, i.e. the
          last BYE was handled by the proxy) until wait_for_drain returns drained. Goal P3 <= 1 s.
  switch  a steady SIPp load (one 0 s call every 1/RATE s) runs through the proxy; kamailio_mode switches
          the mode. "module" = the module's own run time (main() in-process: argument parsing, RPC read,
          routemode.cfg write, RPC set, read-back). "live" = from the call to the first INVITE the new
          stack receives (tail of its SIPp log, 5 ms), so it includes up to 1/RATE s of waiting for the
          next call. Both directions; optionally (--adhoc N) the whole `ansible localhost -m` CLI.

Results: min / median / max, appended to bench/RESULTS.md (section "P3 drain / switch latency").

    .venv/bin/python bench/drain.py [--runs 10] [--adhoc 3] [--no-write]
"""
import argparse
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import results  # bench/results.py (this directory)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, 'tests', 'ha_check'), os.path.join(ROOT, 'tests', 'kamailio'),
                os.path.join(ROOT, '.collections')]

import kamailio_loop  # noqa: E402  pylint: disable=wrong-import-position
import modharness  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.wazo.maintenance_mode.plugins.modules import (  # noqa: E402  pylint: disable=wrong-import-position
    kamailio_mode,
    wait_for_drain,
)

RESULTS = results.RESULTS
GOAL_P3 = 1.0
POLL_INTERVAL = 0.5      # wait_for_drain's default
DRAIN_CALLS = 3
LOAD_RATE = 50           # calls per second of the steady load during a switch

# this bench's own loopback addresses (never the Kamailio tests' or the HA loop's)
kamailio_loop.PROXY = ('127.0.26.10', 15460)
kamailio_loop.PRIMARY = ('127.0.26.11', 15461)
kamailio_loop.SECONDARY = ('127.0.26.12', 15462)
kamailio_loop.PHONE_IP = '127.0.26.20'

STACK_OF_MODE = {'normal': 'primary', 'maintenance': 'secondary'}


def set_mode(loop, mode):
    res = modharness.run_module(kamailio_mode, dict(mode=mode, rpc_path=loop.env.sock, state_dir=loop.env.state))
    if res.get('failed') or res.get('mode') != mode:
        raise RuntimeError('kamailio_mode %s failed: %s' % (mode, res.get('msg', res)))
    return res


def wait_counts(loop, want, timeout):
    rpc = loop.env.rpc(timeout=1)
    loop.k.wait_until(lambda: (rpc.backend_calls(1), rpc.backend_calls(2)) == want, timeout, 0.05,
                      'backend profile sizes %s' % (want,))


# -- P3 drain ---------------------------------------------------------------------------------------
def drain_run(loop):
    """Returns (p3, waited by the module, samples taken) or raises."""
    loop.reset()
    wait_counts(loop, (0, 0), 30)
    env = loop.env
    duration_ms = int(random.uniform(1500, 2500))      # any phase of the 0.5 s poll cycle
    proc, finish = loop.k.sipp_uac(env, calls=DRAIN_CALLS, rate=20, duration_ms=duration_ms, background=True,
                                   timeout=30)
    try:
        wait_counts(loop, (DRAIN_CALLS, 0), 5)
        set_mode(loop, 'maintenance')
        zero = {}
        stop = threading.Event()

        def watch():
            rpc = env.rpc(timeout=1)
            deadline = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline:     # bounded
                if rpc.backend_calls(1) == 0:
                    zero['t'] = time.monotonic()
                    return
                time.sleep(0.01)
        watcher = threading.Thread(target=watch, name='profile-watch', daemon=True)
        watcher.start()
        res = modharness.run_module(wait_for_drain, dict(
            stack='primary', setid=1, stack_address=kamailio_loop.PRIMARY[0], check_asterisk=False,
            rpc_path=env.sock, poll_interval=POLL_INTERVAL, slice_timeout=30, timeout=30))
        returned = time.monotonic()
        stop.set()
        watcher.join(5)
    finally:
        calls = finish(proc)
    if res.get('failed') or not res.get('drained'):
        raise RuntimeError('wait_for_drain did not drain: %s' % res.get('msg', res.get('remaining')))
    if calls.rc != 0 or calls.per_stack() != {'primary': DRAIN_CALLS} \
            or calls.per_stack('bye_ok') != {'primary': DRAIN_CALLS}:
        raise RuntimeError('calls: rc %s, answered %s, BYE answered %s'
                           % (calls.rc, calls.per_stack(), calls.per_stack('bye_ok')))
    if 't' not in zero:
        raise RuntimeError('the watcher never saw the profile at 0')
    # the watcher polls every 10 ms: if the module's own sample saw 0 first, this can read slightly < 0
    return max(0.0, returned - zero['t']), res['waited'], len(res['samples'])


# -- switch latency ---------------------------------------------------------------------------------
class Tail:
    """First line 'NAME INVITE' appended to a SIPp stack log after start(), polled every 5 ms."""

    def __init__(self, path, name):
        self.path, self.prefix = path, '%s INVITE ' % name
        self.seen = None
        self.stop = threading.Event()
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.thread = threading.Thread(target=self.run, name='tail', daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        deadline = time.monotonic() + 60
        buf = ''
        while not self.stop.is_set() and time.monotonic() < deadline:    # bounded
            with open(self.path) as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            buf += chunk
            lines = buf.split('\n')
            buf = lines.pop()
            if any(line.startswith(self.prefix) for line in lines):
                self.seen = time.monotonic()
                return
            time.sleep(0.005)

    def wait(self, timeout):
        self.thread.join(timeout)
        self.stop.set()
        return self.seen


def adhoc_mode(loop, mode):
    args = json.dumps(dict(mode=mode, rpc_path=loop.env.sock, state_dir=loop.env.state))
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-m',
           'wazo.maintenance_mode.kamailio_mode', '-a', args, '-e', 'ansible_python_interpreter=%s' % sys.executable]
    envvars = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
    p = subprocess.run(cmd, cwd=ROOT, env=envvars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120, check=False)
    if p.returncode != 0:
        raise RuntimeError('ansible -m kamailio_mode failed:\n%s' % p.stdout[-2000:])


def switch_run(loop, frm, to, how='module'):
    """Returns (module run time, call -> first INVITE on the new stack)."""
    loop.reset()
    if frm != 'normal':
        set_mode(loop, frm)
    wait_counts(loop, (0, 0), 30)
    new = loop.stacks[STACK_OF_MODE[to]]
    tail = Tail(new.log, new.name).start()
    proc, finish = loop.k.sipp_uac(loop.env, calls=LOAD_RATE * 60, rate=LOAD_RATE, duration_ms=0, background=True,
                                   timeout=90)
    try:
        time.sleep(random.uniform(0.3, 0.6))            # load running, any phase of its call cycle
        if tail.seen is not None:
            raise RuntimeError('the %s stack got an INVITE before the switch' % new.name)
        t0 = time.monotonic()
        if how == 'adhoc':
            adhoc_mode(loop, to)
        else:
            set_mode(loop, to)
        ran = time.monotonic() - t0
        seen = tail.wait(15)
    finally:
        tail.stop.set()
        try:
            os.kill(proc.pid, signal.SIGUSR1)           # SIPp: no new call, end the current ones, exit
        except OSError:
            pass
        calls = finish(proc)
    if calls.failed:
        raise RuntimeError('%s of the load calls failed' % calls.failed)
    if seen is None:
        raise RuntimeError('no INVITE reached the %s stack after the switch' % new.name)
    return ran, seen - t0


# -- results ----------------------------------------------------------------------------------------
def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return 'n/a'
    return ' / '.join('%.3f' % v for v in (min(vals), statistics.median(vals), max(vals)))


def loadavg():
    try:
        return '%.2f %.2f %.2f' % os.getloadavg()
    except OSError:
        return 'n/a'


def write_results(drain, switches, runs, conditions):
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    p3s = [d[0] for d in drain['ok']]
    lines = ['### %s, %d runs per case (loopback; %s)' % (now, runs, conditions), '',
             '| drain (%d calls on the primary, poll %g s, check_asterisk false) | min / median / max (s) |'
             % (DRAIN_CALLS, POLL_INTERVAL), '|---|---|',
             '| P3: profile at 0 -> wait_for_drain returns drained | %s |' % stats(p3s),
             '| wait_for_drain run time (module `waited`) | %s |' % stats([d[1] for d in drain['ok']]),
             '| samples per run | %s |' % ' / '.join('%g' % v for v in (
                 (min(d[2] for d in drain['ok']), statistics.median(d[2] for d in drain['ok']),
                  max(d[2] for d in drain['ok'])) if drain['ok'] else ())),
             '| failed runs | %d |' % drain['failed'],
             '| goal P3 <= 1 s | %s |' % ('met' if p3s and not drain['failed'] and max(p3s) <= GOAL_P3 else 'NOT met'),
             '',
             '| switch (load %d calls/s) | runs | run time: module main() or whole CLI (min / median / max, s) | '
             'call -> first INVITE on the new stack (s) | failed runs |' % LOAD_RATE,
             '|---|---|---|---|---|']
    for label, res in switches:
        row = (label, len(res['ok']) + res['failed'], stats([r[0] for r in res['ok']]),
               stats([r[1] for r in res['ok']]), res['failed'])
        lines.append('| %s | %d | %s | %s | %d |' % row)
    block = '\n'.join(lines) + '\n'
    header = ('## P3 drain latency and switch latency (bench/drain.py)\n\n'
              'Loopback: a real Kamailio with the kamailio_proxy role\'s config, SIPp stacks, the modules\' own '
              'code run in-process (main()) against the RPC socket. No Asterisk on loopback, so wait_for_drain '
              'runs with `check_asterisk: false`: P3 covers the proxy\'s dialog count only (with Asterisk, each '
              'sample adds one SSH command). P3 starts when Kamailio\'s `backend` profile for set 1 reads 0 '
              '(polled every 10 ms). "call -> first INVITE" includes up to 1/rate s of waiting for the next '
              'call of the load. Newest first.\n\n')
    results.write_section('bench/drain.py', header, block)


def repeat(label, runs, fn, *args):
    res = {'ok': [], 'failed': 0}
    for i in range(runs):
        try:
            r = fn(*args)
        except (RuntimeError, AssertionError) as exc:
            res['failed'] += 1
            print('%s run %d: FAILED %s' % (label, i + 1, exc), flush=True)
            continue
        res['ok'].append(r)
        print('%s run %d: %s' % (label, i + 1, ', '.join('%g' % round(v, 3) for v in r)), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--adhoc', type=int, default=3,
                    help='also switch N times with the whole `ansible localhost -m` CLI (slow on a busy box)')
    ap.add_argument('--no-write', action='store_true', help='print only, do not update bench/RESULTS.md')
    args = ap.parse_args()
    harness = kamailio_loop.load_harness()
    if harness is None:
        sys.exit('tests/kamailio/conftest.py (the Kamailio loopback harness) is missing')
    load_before = loadavg()
    loop = kamailio_loop.Loop(harness, None).start()
    try:
        drain = repeat('drain (p3, waited, samples)', args.runs, drain_run, loop)
        switches = [
            ('normal -> maintenance, module',
             repeat('switch n->m (module, live)', args.runs, switch_run, loop, 'normal', 'maintenance')),
            ('maintenance -> normal, module',
             repeat('switch m->n (module, live)', args.runs, switch_run, loop, 'maintenance', 'normal'))]
        if args.adhoc:
            switches.append(('normal -> maintenance, `ansible localhost -m` CLI',
                             repeat('switch n->m (ansible CLI, live)', args.adhoc, switch_run, loop, 'normal',
                                    'maintenance', 'adhoc')))
    finally:
        loop.close()
    conditions = '%d CPUs, load average %s at the start, %s at the end' % (
        os.cpu_count(), load_before, loadavg())
    print('drain P3 min/median/max %s s (goal %g s); failed %d' % (stats([d[0] for d in drain['ok']]), GOAL_P3,
                                                                   drain['failed']))
    for label, res in switches:
        print('%s: module %s s; live %s s; failed %d' % (label, stats([r[0] for r in res['ok']]),
                                                         stats([r[1] for r in res['ok']]), res['failed']))
    print(conditions)
    if not args.no_write:
        write_results(drain, switches, args.runs, conditions)
        print('written to %s' % RESULTS)
    p3s = [d[0] for d in drain['ok']]
    ok = p3s and not drain['failed'] and max(p3s) <= GOAL_P3 and not any(r['failed'] for _l, r in switches)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
