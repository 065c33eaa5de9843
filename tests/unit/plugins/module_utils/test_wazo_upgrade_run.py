# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/wazo_upgrade_run.py: the run record, and the detached runner run as the process
``python3 -c`` starts on a stack (a shell script stands for wazo-upgrade)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys
import time

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import wazo_upgrade_run as runs


def record(tmp_path, cmd, timeout=0):
    state_path = str(tmp_path / runs.STATE_FILE)
    state = runs.new_run('upgraded', cmd, '25.03', '24.05', timeout, str(tmp_path / 'log'), None, 'boot-1',
                         str(tmp_path / runs.OUTPUT_FILE))
    runs.write_state(state_path, state)
    return state_path, state


def run_runner(state_path, state, kill_after=1):
    argv = runs.systemd_run_argv('/usr/bin/systemd-run', sys.executable, state_path, state, {'LANG': 'C'})
    # what systemd starts: everything after `--`, with the runner's kill delay shortened for the test
    argv = argv[argv.index('--') + 1:]
    argv[7] = str(kill_after)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_runner_records_the_end(tmp_path):
    script = tmp_path / 'wazo-upgrade'
    script.write_text('#!/bin/sh\necho "Upgrading wazo..."\necho oops >&2\nexit 3\n')
    script.chmod(0o755)
    state_path, state = record(tmp_path, [str(script), '-f'])
    proc = run_runner(state_path, state)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(open(state_path).read())
    assert (done['status'], done['rc'], done['timed_out']) == ('finished', 3, False)
    assert done['finished'] and done['id'] == state['id'] and done['collected'] is False
    assert (tmp_path / runs.OUTPUT_FILE).read_text() == 'Upgrading wazo...\noops\n'


def test_runner_kills_at_its_limit(tmp_path):
    script = tmp_path / 'wazo-upgrade'
    script.write_text('#!/bin/sh\necho started\ntrap "" TERM\nsleep 30\n')  # ignores SIGTERM: SIGKILL follows
    script.chmod(0o755)
    state_path, state = record(tmp_path, [str(script)], timeout=1)
    begin = time.time()
    run_runner(state_path, state, kill_after=1)
    done = json.loads(open(state_path).read())
    assert done['status'] == 'finished' and done['timed_out'] is True and done['rc'] == -9
    assert time.time() - begin < 10


def test_runner_leaves_another_runs_record_alone(tmp_path):
    state_path, state = record(tmp_path, ['/bin/true'])
    other = dict(state, id='other')
    runs.write_state(state_path, other)
    run_runner(state_path, state)
    assert json.loads(open(state_path).read()) == other


def test_runner_command_missing(tmp_path):
    state_path, state = record(tmp_path, [str(tmp_path / 'nope')])
    run_runner(state_path, state)
    done = json.loads(open(state_path).read())
    assert done['rc'] == 127 and 'cannot run' in (tmp_path / runs.OUTPUT_FILE).read_text()


def test_systemd_run_argv():
    state = runs.new_run('downloaded', ['/usr/bin/wazo-upgrade', '-d', '-f'], None, '24.05', 600, '/var/log/x',
                         None, None, '/var/lib/wazo-maintenance/upgrade-run.out', now=1000.0)
    argv = runs.systemd_run_argv('/usr/bin/systemd-run', '/usr/bin/python3',
                                 '/var/lib/wazo-maintenance/upgrade-run.json', state, {'B': '2', 'A': '1'})
    assert argv[:5] == ['/usr/bin/systemd-run', '--unit=wazo-mm-upgrade', '--collect', '--quiet',
                        '--property=Type=exec']
    assert argv[6:8] == ['--setenv=A=1', '--setenv=B=2']
    tail = argv[argv.index('--') + 1:]
    assert tail[:2] == ['/usr/bin/python3', '-c'] and tail[2] == runs.runner_code()
    assert tail[3:] == ['/var/lib/wazo-maintenance/upgrade-run.json', state['id'],
                        '/var/lib/wazo-maintenance/upgrade-run.out', '600', '60', '/usr/bin/wazo-upgrade', '-d', '-f']


@pytest.mark.parametrize('recorded, active, expected', [
    ('running', True, 'running'),
    ('running', False, 'lost'),
    ('finished', False, 'finished'),
    ('finished', True, 'finished'),  # ended between the two reads
    ('failed', False, 'failed'),
    ('succeeded', False, 'succeeded'),
])
def test_status(recorded, active, expected):
    assert runs.status({'id': 'x', 'status': recorded}, active) == expected


def test_status_without_record():
    assert runs.status(None, False) == 'none' and not runs.uncollected(None, False)


@pytest.mark.parametrize('recorded, collected, active, expected', [
    ('running', False, True, True),
    ('running', False, False, True),  # lost: to be judged
    ('finished', False, False, True),
    ('finished', True, False, False),
    ('failed', True, False, False),
])
def test_uncollected(recorded, collected, active, expected):
    assert runs.uncollected({'id': 'x', 'status': recorded, 'collected': collected}, active) is expected


@pytest.mark.parametrize('text', ['[]', '{"status": "running"}', 'not json'])
def test_parse_state_refuses_what_is_not_a_record(text):
    with pytest.raises(runs.RunStateError):
        runs.parse_state(text)


def test_parse_state_empty():
    assert runs.parse_state('') is None and runs.parse_state(None) is None


def test_wait_deadline():
    assert runs.wait_deadline({'timeout': 600, 'started_ts': 1000.0}, 5000.0, 7200) == 1000 + 600 + runs.WAIT_MARGIN
    assert runs.wait_deadline({'timeout': 0, 'started_ts': 1000.0}, 5000.0, 300) == 5300.0
    assert runs.wait_deadline({'timeout': 0}, 5000.0, 0) is None


def test_log_mark_and_since(tmp_path):
    log = tmp_path / 'wazo-upgrade.log'
    assert runs.log_mark(str(log)) is None
    log.write_text('old run\n')
    mark = runs.log_mark(str(log))
    json.dumps(mark)  # kept in the JSON record
    with log.open('a') as handle:
        handle.write('this run\n')
    assert runs.log_since(str(log), mark) == 'this run\n'
    log.unlink()  # rotated during the run
    log.write_text('rotated, this run\n')
    assert runs.log_since(str(log), mark) == 'rotated, this run\n'
    assert runs.log_since(str(tmp_path / 'missing'), mark) == ''


def test_describe():
    state = {'id': '1-2', 'cmd': ['/usr/bin/wazo-upgrade', '-f'], 'started': '2026-01-10T02:00:01Z'}
    assert runs.describe(state) == 'wazo-upgrade -f (run 1-2, started 2026-01-10T02:00:01Z, unit wazo-mm-upgrade)'
