"""P2: failover time. The primary goes silent -> route mode switched -> first new call answered by the secondary.

Loopback bench (no lab): the kamailio_proxy role's own Kamailio config, SIPp stacks and the wazo-ha-check
daemon loop with its real backend (tests/ha_check/kamailio_loop.py). Two ways for the primary to go silent:
  kill  the primary's SIP process dies (host up: ICMP port unreachable, the fast case);
  stop  the process is frozen (SIGSTOP): the socket stays, nothing answers, no ICMP (a hung Asterisk or a
        dead host: only timeouts tell).
For each run: t0 = the primary silenced; "switch" = Kamailio's running route mode reads maintenance (polled
every 20 ms over RPC); "call" = a new call placed right after the switch is answered by the secondary (SIPp
start-up included, so this is an upper bound). Results: min / median / max per case, appended to
bench/RESULTS.md (section "P2 failover"). Goal P2 <= 5 s.

    .venv/bin/python bench/failover.py [--runs 5] [--cases kill,stop] [--no-write]
"""
import argparse
import datetime
import os
import random
import statistics
import sys
import time

import results  # bench/results.py (this directory)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, 'tests', 'ha_check'), os.path.join(ROOT, 'roles', 'ha_check', 'files'),
                os.path.join(ROOT, '.collections')]

import kamailio_loop  # noqa: E402  pylint: disable=wrong-import-position
import wazo_ha_check  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = results.RESULTS
GOAL = 5.0


def one_run(loop, how):
    loop.reset()
    loop.start_check()
    try:
        if loop.call() != 'primary':
            raise RuntimeError('setup: the first call was not answered by the primary')
        time.sleep(random.uniform(0, 0.5))      # any phase of the 0.5 s probe cycle
        t0 = time.monotonic()
        loop.silence_primary(how)
        switch = loop.wait_mode('maintenance', 15)
        if switch is None:
            return None, None
        answered = None
        for dummy in range(5):                       # bounded: a call refused right at the switch is retried
            stack = loop.call(timeout=10)
            if stack == 'secondary':
                answered = time.monotonic() - t0
                break
        return switch, answered
    finally:
        loop.stop_check()


def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return 'n/a', 'n/a', 'n/a'
    return tuple('%.2f' % v for v in (min(vals), statistics.median(vals), max(vals)))


def write_results(rows, runs, settings):
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    lines = ['### %s, %d runs per case (loopback; %s)' % (now, runs, settings), '',
             '| case | primary silent -> mode switched (min / median / max, s) | '
             '-> first new call answered by the secondary (s) | failed runs | goal 5 s |',
             '|---|---|---|---|---|']
    for case, sw, call, failed, ok in rows:
        lines.append('| %s | %s | %s | %d | %s |'
                     % (case, ' / '.join(sw), ' / '.join(call), failed, 'met' if ok else 'NOT met'))
    block = '\n'.join(lines) + '\n'
    header = ('## P2 failover time (bench/failover.py)\n\n'
              'Primary silent -> route mode switched by wazo-ha-check -> first new call answered by the secondary.\n'
              '`kill`: the primary\'s SIP process dies (ICMP port unreachable). `stop`: it freezes (SIGSTOP: '
              'no answer, no ICMP, like a dead host). Newest first.\n\n')
    results.write_section('bench/failover.py', header, block)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--cases', default='kill,stop')
    ap.add_argument('--no-write', action='store_true', help='print only, do not update bench/RESULTS.md')
    args = ap.parse_args()
    harness = kamailio_loop.load_harness()
    if harness is None:
        sys.exit('tests/kamailio/conftest.py (the Kamailio loopback harness) is missing')
    loop = kamailio_loop.Loop(harness, wazo_ha_check, failback_delay=60, min_transition_interval=0).start()
    cfg = wazo_ha_check.Config(primary='127.0.0.1', secondary='127.0.0.2')
    settings = 'probe every %g s, timeout %g s, down after %d' % (cfg.probe_interval, cfg.probe_timeout, cfg.down_after)
    rows = []
    try:
        for case in args.cases.split(','):
            switches, calls = [], []
            for i in range(args.runs):
                sw, call = one_run(loop, case)
                switches.append(sw)
                calls.append(call)
                print('%s run %d: switch %s s, call answered by the secondary %s s' % (
                    case, i + 1, '%.2f' % sw if sw is not None else 'NONE', '%.2f' % call if call is not None else 'NONE'),
                    flush=True)
            failed = sum(1 for s, c in zip(switches, calls) if s is None or c is None)
            ok = failed == 0 and max(calls) <= GOAL
            rows.append((case, stats(switches), stats(calls), failed, ok))
    finally:
        loop.close()
    for case, sw, call, failed, ok in rows:
        print('%-5s switch min/median/max %s s; call %s s; failed %d; goal %s'
              % (case, '/'.join(sw), '/'.join(call), failed, 'met' if ok else 'NOT met'))
    if not args.no_write:
        write_results(rows, args.runs, settings)
        print('written to %s' % RESULTS)
    return 0 if all(r[4] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
