"""Lab scenario for the HA check: kill the primary's SIP (and the whole primary container), measure the
failover, bring it back, check the failback waits failback_delay and happens once.

    LAB_NAME=hacheck LAB_OCTET=24 make lab-up
    .venv/bin/ansible-playbook -i .lab-hacheck/inventory.yml tests/ha_check/lab/setup.yml
    .venv/bin/python tests/ha_check/lab/scenario.py --lab hacheck [--runs 3] [--cases sip,container] [--write]

Times come from one clock (the containers share the host kernel's): t0 is taken just before the stop command
is issued (so the figure is an upper bound), the switch time is the daemon's own last_transition.epoch.
Every wait is bounded. Only the lab's containers are touched (podman exec / stop / start).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STATE = '/var/lib/wazo-maintenance/ha-check.json'


def sh(container, *cmd, check=True, timeout=60):
    proc = subprocess.run(['podman', 'exec', container] + list(cmd), stdout=subprocess.PIPE, check=False,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError('%s: %s -> %s: %s' % (container, ' '.join(cmd), proc.returncode, proc.stdout[-500:]))
    return proc.stdout


def state(proxy):
    try:
        return json.loads(sh(proxy, 'cat', STATE, timeout=10))
    except (RuntimeError, ValueError, subprocess.TimeoutExpired):
        return {}


def wait(pred, timeout, interval=0.1, what=''):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError('timed out after %ss waiting for %s' % (timeout, what))


def silence(lab, case):
    if case == 'sip':
        sh('%s-primary' % lab, 'systemctl', 'stop', 'asterisk.service')
    else:
        subprocess.run(['podman', 'stop', '-t', '0', '%s-primary' % lab], check=True, stdout=subprocess.DEVNULL,
                       timeout=60)


def revive(lab, case):
    if case == 'sip':
        sh('%s-primary' % lab, 'systemctl', 'start', 'asterisk.service')
    else:
        subprocess.run(['podman', 'start', '%s-primary' % lab], check=True, stdout=subprocess.DEVNULL, timeout=60)

        def asterisk_active():
            return subprocess.run(['podman', 'exec', '%s-primary' % lab, 'systemctl', 'is-active', 'asterisk.service'],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
        wait(asterisk_active, 90, 1, 'the primary container and its asterisk back')


def state_if(proxy, predicate):
    """A wait() predicate: the state when predicate(state) holds, else None."""
    def check():
        st = state(proxy)
        return st if st and predicate(st) else None
    return check


def one_run(lab, case, log):
    proxy = '%s-proxy' % lab
    st = wait(state_if(proxy, lambda s: s.get('state') == 'normal' and s.get('route_mode') == 'normal'),
              120, 0.5, 'state normal before the run')
    transitions = st['transitions']
    failback_delay = st['settings']['failback_delay']
    # Steady state: a failure within min_transition_interval of the last switch is deferred by design
    # (anti-flapping); P2 is measured from steady state.
    last = (st.get('last_transition') or {}).get('epoch')
    if last:
        time.sleep(max(0.0, last + st['settings']['min_transition_interval'] + 1 - time.time()))
    t0 = time.time()
    silence(lab, case)
    st = wait(state_if(proxy, lambda s: s.get('transitions', 0) > transitions), 20, 0.1, 'failover')
    lt = st['last_transition']
    assert lt['kind'] == 'failover' and lt['to'] == 'maintenance', lt
    failover = lt['epoch'] - t0
    mode = sh(proxy, 'wazo-mode', 'status', '--json', check=False)
    try:
        running = json.loads(mode).get('mode')
    except ValueError:
        running = '?'
    log('%s: failover %.2f s after the stop command (running mode: %s; reason: %s)'
        % (case, failover, running, lt['reason']))
    st = wait(state_if(proxy, lambda s: (s.get('last_actions') or {}).get('done')), 180, 0.5, 'failover actions done')
    res = st['last_actions']['results']
    summary = '; '.join('%s=%s' % (r['command'], r['result']) for r in res)
    log('%s: failover actions on %s: %d/%d OK: %s'
        % (case, st['last_actions']['host'], sum(r['ok'] for r in res), len(res), summary))
    time.sleep(3)
    revive(lab, case)
    t_up = time.time()
    st = wait(state_if(proxy, lambda s: s.get('transitions', 0) > transitions + 1), failback_delay + 60, 0.2, 'failback')
    lt = st['last_transition']
    assert lt['kind'] == 'failback' and lt['to'] == 'normal', lt
    waited = lt['epoch'] - t_up
    log('%s: failback %.1f s after the primary was started again (failback_delay %g s)' % (case, waited, failback_delay))
    time.sleep(5)
    after = state(proxy)
    once = after['transitions'] == transitions + 2 and after['route_mode'] == 'normal'
    log('%s: transitions during the run: %d (expected 2), mode now %s' % (case, after['transitions'] - transitions,
                                                                          after['route_mode']))
    return failover, waited, waited >= failback_delay - 0.01, once, sum(r['ok'] for r in res), len(res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lab', default=os.environ.get('LAB_NAME', 'hacheck'))
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--cases', default='sip,container')
    ap.add_argument('--write', action='store_true', help='append the results to bench/RESULTS.md (P2 section)')
    args = ap.parse_args()

    def log(msg):
        print('%s %s' % (time.strftime('%H:%M:%S'), msg), flush=True)
    rows = []
    for case in args.cases.split(','):
        results = [one_run(args.lab, case, log) for dummy in range(args.runs)]
        fo = [r[0] for r in results]
        rows.append((case, fo, [r[1] for r in results], all(r[2] for r in results), all(r[3] for r in results),
                     '%d/%d' % (sum(r[4] for r in results), sum(r[5] for r in results))))
    lines = ['| case | failover after the stop (min / median / max, s) | failback after restart (s) | failback waited | '
             'exactly one failover + one failback | failover actions OK |', '|---|---|---|---|---|---|']
    for case, fo, fb, waited, once, actions in rows:
        lines.append('| %s | %.2f / %.2f / %.2f | %s | %s | %s | %s |' % (
            case, min(fo), statistics.median(fo), max(fo), ' / '.join('%.1f' % x for x in fb),
            'yes' if waited else 'NO', 'yes' if once else 'NO', actions))
    table = '\n'.join(lines)
    print(table)
    if args.write:
        sys.path.insert(0, os.path.join(ROOT, 'bench'))
        import failover  # bench/failover.py
        text = open(failover.RESULTS).read()
        block = ('### %s, lab %s, %d runs per case (3 containers; probe every 0.5 s, timeout 0.4 s, down after 3)\n\n'
                 % (time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), args.lab, args.runs) + table + '\n\n')
        marker = 'Newest first.\n\n'
        if failover.BEGIN in text and marker in text:
            text = text.replace(marker, marker + block, 1)
            with open(failover.RESULTS, 'w') as f:
                f.write(text)
            print('written to %s' % failover.RESULTS)
    ok = all(r[3] and r[4] and max(r[1]) <= 5 for r in rows)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
