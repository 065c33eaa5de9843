#!/usr/bin/env python
"""SIP load through the lab's proxy with real SIPp, for the upgrade proofs and benchmarks.

    sipp_load.py start --target 10.89.10.10 --dir DIR [--rate 10] [--calls 3000] [--min-ms 2000] [--max-ms 30000]
    sipp_load.py stop --dir DIR        # no new calls, wait for the calls in progress, print the result
    sipp_load.py result --dir DIR      # print the result (JSON) of a finished run

The UAC follows the route set (tests/standin/sipp/uac_rr.xml) with a call duration drawn uniformly
between --min-ms and --max-ms. Every run is bounded: --calls caps the number of calls and --max-seconds
the run time (SIPp's own -timeout). Traffic goes only to --target (the lab proxy or loopback).
"""
import argparse
import csv
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UAC = HERE.parent / 'standin' / 'sipp' / 'uac_rr.xml'


def _check_target(target):
    ip = ipaddress.ip_address(target)
    if not (ip.is_loopback or ip in ipaddress.ip_network('10.89.0.0/16')):
        sys.exit('sipp_load: refusing target %s: only loopback or the lab network 10.89.0.0/16' % target)


def _local_ip(target):
    """The host's address on the route to target (the lab bridge)."""
    out = subprocess.run(['ip', '-o', 'route', 'get', target], check=True, capture_output=True, text=True).stdout
    match = re.search(r'\bsrc (\S+)', out)
    return match.group(1) if match else '127.0.0.1'


def start(args):
    _check_target(args.target)
    run = Path(args.dir)
    run.mkdir(parents=True, exist_ok=True)
    scenario = UAC.read_text().replace(
        '<pause/>', '<pause distribution="uniform" min="%d" max="%d"/>' % (args.min_ms, args.max_ms))
    (run / 'uac.xml').write_text(scenario)
    cmd = ['sipp', '-sf', str(run / 'uac.xml'), '%s:5060' % args.target,
           '-i', args.local_ip or _local_ip(args.target), '-p', str(args.local_port),
           '-s', args.service, '-r', str(args.rate), '-m', str(args.calls),
           '-l', str(args.limit), '-timeout', '%ds' % args.max_seconds, '-timeout_error',
           '-trace_stat', '-stf', str(run / 'stat.csv'), '-fd', '1',
           '-trace_err', '-error_file', str(run / 'errors.log'),
           '-trace_screen', '-screen_file', str(run / 'screen.log'),
           '-nostdin', '-nd', '-default_behaviors', 'all,-bye']
    with open(run / 'sipp.out', 'w') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=run, start_new_session=True)
    (run / 'sipp.pid').write_text(str(proc.pid))
    (run / 'started').write_text(str(time.time()))
    time.sleep(1)
    if proc.poll() is not None:
        sys.exit('sipp_load: SIPp exited at once: %s' % (run / 'sipp.out').read_text()[-2000:])
    print(json.dumps({'pid': proc.pid, 'cmd': cmd}))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of a dead parent is not alive
        return Path('/proc/%d/stat' % pid).read_text().split(') ')[1][0] != 'Z'
    except (OSError, IndexError):
        return False


def stop(args):
    run = Path(args.dir)
    pid = int((run / 'sipp.pid').read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGUSR1)  # SIPp: place no new call, exit when the calls in progress end
    deadline = time.time() + args.wait
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.5)
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        sys.exit('sipp_load: SIPp still running %ds after the stop request: killed' % args.wait)
    result(args)


def parse(run):
    """Counters of the last line of SIPp's statistics file."""
    stats = Path(run) / 'stat.csv'
    if not stats.exists():
        raise SystemExit('sipp_load: no statistics file %s' % stats)
    with open(stats, newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter=';'))
    if not rows:
        raise SystemExit('sipp_load: empty statistics file %s' % stats)
    last = rows[-1]
    res = {
        'created': int(last['TotalCallCreated']),
        'successful': int(last['SuccessfulCall(C)']),
        'failed': int(last['FailedCall(C)']),
        'current': int(last['CurrentCall']),
        'elapsed': last.get('ElapsedTime(C)', ''),
        'peak_concurrent': max(int(r['CurrentCall']) for r in rows),
    }
    res['failed_by_cause'] = {k: int(v) for k, v in last.items()
                              if k.startswith('Failed') and k.endswith('(C)') and k != 'FailedCall(C)' and v and int(v)}
    return res


def result(args):
    res = parse(args.dir)
    started = Path(args.dir) / 'started'
    if started.exists():
        res['seconds'] = round(time.time() - float(started.read_text()), 1)
    (Path(args.dir) / 'result.json').write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='action', required=True)
    p_start = sub.add_parser('start')
    p_start.add_argument('--target', required=True)
    p_start.add_argument('--dir', required=True)
    p_start.add_argument('--rate', type=float, default=10)
    p_start.add_argument('--calls', type=int, default=3000)
    p_start.add_argument('--limit', type=int, default=1000, help='max concurrent calls')
    p_start.add_argument('--min-ms', type=int, default=2000)
    p_start.add_argument('--max-ms', type=int, default=30000)
    p_start.add_argument('--max-seconds', type=int, default=1800)
    p_start.add_argument('--local-ip')
    p_start.add_argument('--local-port', type=int, default=5070)
    p_start.add_argument('--service', default='1000')
    for name in ('stop', 'result'):
        p = sub.add_parser(name)
        p.add_argument('--dir', required=True)
        p.add_argument('--wait', type=int, default=60)
    args = parser.parse_args()
    {'start': start, 'stop': stop, 'result': result}[args.action](args)


if __name__ == '__main__':
    main()
