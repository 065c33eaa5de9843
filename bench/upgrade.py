#!/usr/bin/env python
"""Benchmarks of upgrade.yml on the lab under SIPp load (issue 5): P1 failed calls, P4 time in maintenance
with and without pre-download, P5 orchestration overhead (all but wazo-upgrade and the drain).

    make lab-up && .venv/bin/ansible-playbook -i .lab/inventory.yml playbooks/setup.yml
    .venv/bin/python bench/upgrade.py [--runs 1] [--write]

Each run: both stacks back to the first version, 10 calls/s of 2-30 s through the proxy, upgrade.yml,
load stopped once its calls ended. Traffic goes only to the lab's proxy.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests' / 'upgrade'))
from conftest import LAST, Load, UpgradeLab  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = ROOT / 'bench' / 'RESULTS.md'
BEGIN, END = '<!-- bench/upgrade.py: begin -->', '<!-- bench/upgrade.py: end -->'


def one_run(lab, predownload):
    work = Path(tempfile.mkdtemp(prefix='wmm-bench-upgrade-'))
    lab.reset_versions()
    load = Load(lab, work / 'load')
    load.start(rate=10, calls=5000, min_ms=2000, max_ms=30000)
    load.wait_created(150, timeout=60)
    proc = lab.playbook(str(ROOT / 'playbooks' / 'upgrade.yml'), '-e', 'wazo_mm_upgrade_report_dir=%s' % (work / 'r'),
                        '-e', 'wazo_mm_upgrade_predownload=%s' % str(predownload).lower(), check=False)
    calls = load.stop()
    if proc.returncode != 0:
        raise SystemExit('upgrade.yml failed:\n' + proc.stdout[-4000:])
    report = json.loads((work / 'r' / ('upgrade-%s.json' % LAST)).read_text())
    steps = {s['step']: float(s['seconds']) for s in report['steps'] if not s['step'].startswith('replicate')}
    total = (datetime.datetime.fromisoformat(report['finished'].rstrip('Z'))
             - datetime.datetime.fromisoformat(report['started'].rstrip('Z'))).total_seconds()
    upgrades = sum(v for k, v in steps.items() if k.startswith('upgrade '))
    drain = steps.get('drain primary', 0.0)
    in_maintenance = sum(v for k, v in steps.items()
                         if k in ('drain primary', 'switch to normal') or k.startswith('upgrade primary'))
    return {'failed': calls['failed'], 'calls': calls['created'], 'total': round(total, 1),
            'maintenance': round(in_maintenance, 1), 'overhead': round(total - upgrades - drain, 1),
            'drain': drain, 'at_switch': report['drain']['calls_at_switch']}


def fmt(values):
    return '%.1f / %.1f / %.1f' % (min(values), statistics.median(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=1)
    parser.add_argument('--write', action='store_true', help='record the results in bench/RESULTS.md')
    args = parser.parse_args()
    lab = UpgradeLab()
    rows = []
    for predownload in (True, False):
        runs = [one_run(lab, predownload) for _run in range(args.runs)]
        rows.append('| %s | %d | %d | %s | %s | %s |' % (
            'yes' if predownload else 'no', sum(r['calls'] for r in runs), sum(r['failed'] for r in runs),
            fmt([r['maintenance'] for r in runs]), fmt([r['overhead'] for r in runs]), fmt([r['total'] for r in runs])))
    section = '\n'.join([
        BEGIN, '## P1 / P4 / P5 upgrade under load (bench/upgrade.py)', '',
        '### %s UTC, lab, %d run(s) per row, load average %s' % (
            datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M'), args.runs, os.getloadavg()[0]), '',
        '| pre-download | calls | failed (P1) | time in maintenance s (P4) | overhead s (P5) | total s |',
        '|---|---|---|---|---|---|'] + rows + [END])
    print(section)
    if args.write:
        text = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n'
        text = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), '', text, flags=re.S).rstrip() + '\n\n'
        RESULTS.write_text(text + section + '\n')


if __name__ == '__main__':
    main()
