#!/usr/bin/env python
"""Calls per stack over time on the lab, for the upgrade report's timeline (make demo, the upgrade proof).

    sample_calls.py start --inventory .lab/inventory.yml --out DIR/calls.csv [--interval 1] [--max-seconds 1800]
    sample_calls.py stop --out DIR/calls.csv

Every --interval seconds it asks each stack's real Asterisk for its active calls (`asterisk -rx 'core show
channels count'` over the lab's SSH, one connection kept open per stack) and appends `time,primary,secondary`
to the CSV; a stack that does not answer (it is being upgraded, Asterisk restarting) is written as 0.
Bounded: it stops by itself after --max-seconds. Traffic goes only to the lab's stacks.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '.collections'))
# pylint: disable=wrong-import-position
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (  # noqa: E402
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)

STACKS = ('primary', 'secondary')


def _ssh_base(inventory):
    with open(inventory) as handle:
        inv = yaml.safe_load(handle)['all']
    key = inv['vars']['ansible_ssh_private_key_file']
    known = os.path.join(os.path.dirname(os.path.abspath(inventory)), 'known_hosts')
    control = '/tmp/wazo-mm-sample-%C'  # one master connection per stack (%C: hash of host, port, user)
    base = ['ssh', '-i', key, '-o', 'UserKnownHostsFile=%s' % known, '-o', 'StrictHostKeyChecking=yes',
            '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', '-o', 'ControlMaster=auto',
            '-o', 'ControlPath=%s' % control, '-o', 'ControlPersist=30']
    hosts = {g: list(inv['children'][g]['hosts'].values())[0]['ansible_host'] for g in STACKS}
    return base, hosts


def _calls(base, host):
    try:
        out = subprocess.run(base + ['root@%s' % host, "asterisk -rx 'core show channels count'"],
                             capture_output=True, text=True, timeout=5, check=False).stdout
        return parse_channels_count(out)['calls']
    except (subprocess.TimeoutExpired, AsteriskNotRunning, AsteriskOutputError):
        return 0


def run(args):
    base, hosts = _ssh_base(args.inventory)
    deadline = time.monotonic() + args.max_seconds
    with open(args.out, 'w') as handle:
        handle.write('time,%s\n' % ','.join(STACKS))
        handle.flush()
        while time.monotonic() < deadline:
            started = time.monotonic()
            counts = [_calls(base, hosts[g]) for g in STACKS]
            handle.write('%.3f,%s\n' % (time.time(), ','.join(str(c) for c in counts)))
            handle.flush()
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('action', choices=['start', 'stop', 'run'])
    ap.add_argument('--inventory')
    ap.add_argument('--out', required=True)
    ap.add_argument('--interval', type=float, default=1.0)
    ap.add_argument('--max-seconds', type=float, default=1800)
    args = ap.parse_args()
    pidfile = args.out + '.pid'
    if args.action == 'run':
        run(args)
    elif args.action == 'start':
        if not args.inventory:
            sys.exit('sample_calls: --inventory is required')
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'run', '--inventory', args.inventory,
                                 '--out', args.out, '--interval', str(args.interval),
                                 '--max-seconds', str(args.max_seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        with open(pidfile, 'w') as handle:
            handle.write(str(proc.pid))
    else:
        try:
            with open(pidfile) as handle:
                os.kill(int(handle.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        print(args.out)


if __name__ == '__main__':
    main()
