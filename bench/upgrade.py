#!/usr/bin/env python
"""Benchmarks of upgrade.yml on the lab under SIPp load: P1 failed calls, P4 time in maintenance
with and without pre-download, P5 orchestration overhead (all but wazo-upgrade and the drain).

    make lab-up && make standin && .venv/bin/ansible-playbook -i .lab/inventory.yml playbooks/setup.yml
    .venv/bin/python bench/upgrade.py [--runs 1] [--mirror-kbps 2048] [--write]

Each run: both stacks back to the first version with apt's package cache emptied, 10 calls/s of 2-30 s through
the proxy, upgrade.yml (with, then without, `wazo_mm_upgrade_predownload`), load stopped once its calls ended.
The stand-in's mirror serves its packages over HTTP at --mirror-kbps KiB/s during the bench (0 afterwards), so
the primary's upgrade in the maintenance window downloads them unless they were fetched before the switch.
Traffic goes only to the lab's proxy; the mirror is on each stack's loopback.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import results  # bench/results.py (this directory)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests' / 'upgrade'))
from conftest import LAST, Load, UpgradeLab  # noqa: E402  pylint: disable=wrong-import-position

GOAL_P4 = 0.30
GOAL_P5 = 60.0
HEADER = """## P1 / P4 / P5 upgrade under load (bench/upgrade.py)

upgrade.yml on the lab while SIPp places 10 calls/s of 2-30 s through the proxy. Time in maintenance (P4) =
from the end of the switch to maintenance to the end of the switch back to normal (drain + the primary's
upgrade + checks); "without drain" leaves out the drain, which only the calls' length decides. The stand-in's
packages come from its HTTP mirror at a set bandwidth, so what pre-downloading saves is a real apt download:
it scales with the size of the upgrade and the link to the mirror (a real Wazo upgrade fetches far more than
the stand-in's one package). Overhead (P5) = total - wazo-upgrade runs - drain.
Newest first."""


def ended(report, step):
    stamps = [s['ended'] for s in report['steps'] if s['step'] == step]
    return datetime.datetime.fromisoformat(stamps[-1].rstrip('Z')) if stamps else None


def one_run(lab, predownload, work):
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
    upgrades = sum(v for k, v in steps.items() if k.startswith('upgrade ') or k == 'pre-download')
    drain = steps.get('drain primary', 0.0)
    maintenance = (ended(report, 'switch to normal') - ended(report, 'switch to maintenance')).total_seconds()
    return {'failed': calls['failed'], 'calls': calls['created'], 'total': total, 'maintenance': maintenance,
            'overhead': total - upgrades - drain, 'drain': drain, 'download': steps.get('pre-download', 0.0),
            'upgrade_primary': steps.get('upgrade primary', 0.0), 'at_switch': report['drain']['calls_at_switch']}


def fmt(values):
    return '%.1f / %.1f / %.1f' % (min(values), statistics.median(values), max(values))


def set_mirror(lab, kbps):
    for group in ('primary', 'secondary'):
        lab.ssh(group, 'echo %d > /etc/wazo-standin/mirror-kbps' % kbps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=1)
    parser.add_argument('--mirror-kbps', type=int, default=2048, help='bandwidth of the stand-in mirror (KiB/s)')
    parser.add_argument('--write', action='store_true', help='record the results in bench/RESULTS.md')
    args = parser.parse_args()
    lab = UpgradeLab()
    size = int(lab.ssh('primary', 'stat -c %%s /srv/wazo-standin/repo/wazo-platform_%s_all.deb' % LAST).stdout)
    load_before = os.getloadavg()
    rows, medians = [], {}
    set_mirror(lab, args.mirror_kbps)
    try:
        for predownload in (True, False):
            runs = []
            for _run in range(args.runs):
                runs.append(one_run(lab, predownload, Path(tempfile.mkdtemp(prefix='wmm-bench-upgrade-'))))
                print(json.dumps(dict(runs[-1], predownload=predownload)), flush=True)
            medians[predownload] = (statistics.median(r['maintenance'] for r in runs),
                                    statistics.median(r['maintenance'] - r['drain'] for r in runs))
            rows.append('| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |' % (
                'yes' if predownload else 'no', sum(r['calls'] for r in runs), sum(r['failed'] for r in runs),
                fmt([r['maintenance'] for r in runs]), fmt([r['maintenance'] - r['drain'] for r in runs]),
                fmt([r['drain'] for r in runs]),
                fmt([r['upgrade_primary'] for r in runs]), fmt([r['download'] for r in runs]),
                fmt([r['overhead'] for r in runs]), fmt([r['total'] for r in runs])))
    finally:
        set_mirror(lab, 0)
    p4 = [1 - medians[True][i] / medians[False][i] for i in (0, 1)]
    entry = '\n'.join([
        '### %s UTC, lab, %d run(s) per row, load average %.2f at the start, %.2f at the end' % (
            datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), args.runs, load_before[0],
            os.getloadavg()[0]),
        '',
        'Mirror %d KiB/s, upgrade %.1f MiB per stack (one download ~%.0f s), stand-in install 5 s.' % (
            args.mirror_kbps, size / 1048576.0, size / 1024.0 / args.mirror_kbps),
        '',
        '| pre-download | calls | failed (P1) | in maintenance s (P4) | in maintenance without drain s | drain s '
        '| upgrade primary s | pre-download s | overhead s (P5) | total s |',
        '|---|---|---|---|---|---|---|---|---|---|'] + rows + [
        '',
        'P4 (medians, goal >= %d %% shorter with pre-download): whole window %.0f %% shorter (%.1f s vs %.1f s: %s); '
        'without the drain %.0f %% shorter (%.1f s vs %.1f s: %s). P5 goal <= %d s.' % (
            100 * GOAL_P4, 100 * p4[0], medians[True][0], medians[False][0], 'met' if p4[0] >= GOAL_P4 else 'NOT met',
            100 * p4[1], medians[True][1], medians[False][1], 'met' if p4[1] >= GOAL_P4 else 'NOT met', GOAL_P5)])
    print(entry)
    if args.write:
        results.write_section('bench/upgrade.py', HEADER, entry)


if __name__ == '__main__':
    main()
