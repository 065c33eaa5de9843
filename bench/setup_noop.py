#!/usr/bin/env python
"""Benchmark: wall time of a no-op setup.yml rerun on a converged lab. Goal: <= 60 s.

    make lab-up && make standin && .venv/bin/ansible-playbook -i .lab/inventory.yml playbooks/setup.yml
    .venv/bin/python bench/setup_noop.py [--runs 3] [--write]

Each run is `ansible-playbook -i $LAB_INVENTORY playbooks/setup.yml` exactly as an operator types it (the repo's
ansible.cfg, default callback), timed from start to exit; the recap must report 0 changed and 0 failed, or
the run does not count and the bench stops. The busiest tasks of the last run (profile_tasks) are printed.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

import results  # bench/results.py (this directory)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lab'))
import labtools  # noqa: E402  pylint: disable=wrong-import-position

GOAL = 60.0
HEADER = """## setup.yml no-op rerun (bench/setup_noop.py; goal <= 60 s)

`ansible-playbook -i .lab/inventory.yml playbooks/setup.yml` on a converged lab, wall time; every run must report
0 changed. Most of the time is Ansible's own per-task cost (0.35-0.9 s per module task on this 2-core VM
depending on its speed at the time, measured with a playbook of `ping` tasks: the baseline column), so what
counts is how many tasks run. Newest first."""


def one_run(inventory):
    env = labtools.ansible_env(ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_tasks',
                               PROFILE_TASKS_TASK_OUTPUT_LIMIT='8')
    start = time.monotonic()
    proc = subprocess.run([os.path.join(labtools.VENV_BIN, 'ansible-playbook'), '-i', inventory,
                           os.path.join(ROOT, 'playbooks', 'setup.yml')],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    seconds = time.monotonic() - start
    stats = labtools.recap(proc.stdout)
    changed = sum(s.get('changed', 0) for s in stats.values())
    failed = sum(s.get('failed', 0) + s.get('unreachable', 0) for s in stats.values())
    if proc.returncode or changed or failed or not stats:
        raise SystemExit('not a no-op run (rc %d, changed %d, failed %d):\n%s'
                         % (proc.returncode, changed, failed, proc.stdout[-4000:]))
    tasks = sum(s.get('ok', 0) for s in stats.values())
    return seconds, tasks, proc.stdout[proc.stdout.rfind('TASKS RECAP'):]


PING_PLAY = """- name: Baseline, Ansible's own cost per task
  hosts: proxy:primary:secondary
  gather_facts: false
  tasks:
""" + ''.join('    - name: Ping %d\n      ansible.builtin.ping:\n' % n for n in range(20))


def ping_baseline(inventory):
    """Seconds per `ping` task on the three hosts (20 tasks), to compare runs made on a busier or idler machine."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'ping.yml')
        with open(path, 'w') as f:
            f.write(PING_PLAY)
        start = time.monotonic()
        subprocess.run([os.path.join(labtools.VENV_BIN, 'ansible-playbook'), '-i', inventory, path], cwd=ROOT,
                       env=labtools.ansible_env(), capture_output=True, text=True, timeout=600, check=True)
        return (time.monotonic() - start) / 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--write', action='store_true', help='record the results in bench/RESULTS.md')
    args = parser.parse_args()
    inventory = labtools.inventory_path()
    load = os.getloadavg()
    baseline = ping_baseline(inventory)
    print('baseline: %.2f s per ping task (start-up included)' % baseline, flush=True)
    runs = []
    for _run in range(args.runs):
        seconds, tasks, profile = one_run(inventory)
        runs.append(seconds)
        print('%.1f s, %d ok task results, 0 changed' % (seconds, tasks), flush=True)
    print(profile)
    median = statistics.median(runs)
    entry = '\n'.join([
        '### %s UTC, %d runs, 2 cores, load average %.2f %.2f %.2f at the start' % (
            datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), args.runs, *load),
        '',
        '| runs | min / median / max (s) | ok task results per run | changed | s per ping task (baseline) '
        '| goal <= %d s |' % GOAL,
        '|---|---|---|---|---|---|',
        '| %d | %.1f / %.1f / %.1f | %d | 0 | %.2f | %s |' % (
            args.runs, min(runs), median, max(runs), tasks, baseline, 'met' if median <= GOAL else 'NOT met')])
    print(entry)
    if args.write:
        results.write_section('bench/setup_noop.py', HEADER, entry)


if __name__ == '__main__':
    main()
