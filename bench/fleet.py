#!/usr/bin/env python
"""Benchmark of a fleet upgrade: two sites in one parallel batch against one site alone (goal: <= 1.3x).

    LAB_NAME=s1 LAB_OCTET=71 make lab-up; LAB_NAME=s2 LAB_OCTET=72 make lab-up
    .venv/bin/python tests/lab/fleet.py .lab-fleet .lab-s1 .lab-s2
    .venv/bin/ansible-playbook -i .lab-fleet/inventory.yml setup.yml -e wazo_mm_fleet_batch_size=2
    .venv/bin/python bench/fleet.py [--runs 1] [--write]

Each run, side by side: both sites back to the first version, then upgrade.yml on the first site alone (its own
lab inventory), then upgrade.yml on both sites in one batch (the fleet inventory, wazo_mm_fleet_batch_size=2).
No call load (the drain is then immediate: what is compared is the orchestration). Wall-clock times of the
ansible-playbook runs. Traffic goes only to the labs' containers.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import results  # bench/results.py (this directory)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests' / 'lab'))
import upgradelab  # noqa: E402  pylint: disable=wrong-import-position

GOAL = 1.3
HEADER = """## Fleet: two sites in one batch vs one site (bench/fleet.py)

upgrade.yml wall-clock time on one site alone (its own inventory) and on two sites in one parallel batch (one
inventory, `wazo_mm_fleet_batch_size=2`), no call load, stand-in upgrade 5 s per stack. Goal: ratio <= 1.3.
Newest first."""


def timed(inventory, *extra):
    start = time.monotonic()
    proc = subprocess.run([str(ROOT / '.venv' / 'bin' / 'ansible-playbook'), '-i', inventory,
                           str(ROOT / 'upgrade.yml')] + list(extra), capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg')))
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit('upgrade.yml failed:\n' + proc.stdout[-4000:])
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=1)
    parser.add_argument('--labs', default='.lab-s1,.lab-s2')
    parser.add_argument('--fleet', default='.lab-fleet/inventory.yml')
    parser.add_argument('--write', action='store_true', help='record the results in bench/RESULTS.md')
    args = parser.parse_args()
    dirs = [str(ROOT / d) for d in args.labs.split(',')]
    labs = [upgradelab.UpgradeLab(os.path.join(d, 'inventory.yml')) for d in dirs]
    load_before = os.getloadavg()
    one, two = [], []
    for _run in range(args.runs):
        for lab in labs:
            lab.reset_versions()
        one.append(timed(labs[0].path))
        labs[0].reset_versions()
        two.append(timed(str(ROOT / args.fleet), '-e', 'wazo_mm_fleet_batch_size=2'))
        print('one site %.1f s, two sites %.1f s' % (one[-1], two[-1]), flush=True)
    ratio = statistics.median(two) / statistics.median(one)
    entry = '\n'.join([
        '### %s UTC, two labs, %d run(s), load average %.2f at the start, %.2f at the end' % (
            datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), args.runs, load_before[0],
            os.getloadavg()[0]),
        '',
        '| case | upgrade.yml s (min / median / max) |',
        '|---|---|',
        '| one site alone | %.1f / %.1f / %.1f |' % (min(one), statistics.median(one), max(one)),
        '| two sites, one batch | %.1f / %.1f / %.1f |' % (min(two), statistics.median(two), max(two)),
        '',
        'Ratio (medians) %.2f, goal <= %.1f: %s.' % (ratio, GOAL, 'met' if ratio <= GOAL else 'NOT met')])
    print(entry)
    if args.write:
        results.write_section('bench/fleet.py', HEADER, entry)


if __name__ == '__main__':
    main()
