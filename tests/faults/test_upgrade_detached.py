# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults around the upgrade run itself: the SSH connection to a stack lost while its wazo-upgrade runs, the
controller killed while it runs and the run then failing, PostgreSQL down on a stack.

wazo-upgrade runs detached on the stack (transient unit wazo-mm-upgrade, its end recorded in
/var/lib/wazo-maintenance/upgrade-run.json): it goes on when the connection drops, and a rerun of upgrade.yml
waits for it (or reports how it ended) instead of starting a second one.

    LAB_INVENTORY=.lab/inventory.yml .venv/bin/pytest -x -q tests/faults/test_upgrade_detached.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import FIRST, LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
RUN_STATE = '/var/lib/wazo-maintenance/upgrade-run.json'
# real-wazo-upgrade prints this once per full upgrade (not for -d): the number of wazo-upgrade runs on a stack
FULL_RUNS = "grep -c '^Upgrading wazo\\.\\.\\.$' /var/log/wazo-upgrade.log || true"
PRE_STOP_DELAY = '/usr/share/wazo-upgrade/pre-stop.d/10-test-delay'


def _args(tmp_path):
    return ['-e', 'wazo_mm_upgrade_report_dir=%s' % (tmp_path / 'reports'), '-e', 'wazo_mm_upgrade_drain_timeout=120']


def _full_runs(lab, group):
    return int(lab.ssh(group, FULL_RUNS).stdout.strip() or 0)


def _run_record(lab, group):
    out = lab.ssh(group, 'cat %s 2>/dev/null || true' % RUN_STATE).stdout
    return json.loads(out) if out.strip() else {}


def _unit_active(lab, group):
    return lab.ssh(group, 'systemctl is-active wazo-mm-upgrade', check=False).stdout.strip() == 'active'


def _wait_upgrade_running(lab, group, proc, timeout=240):
    """Until the stack's detached full upgrade (not the pre-download) runs; fails if upgrade.yml ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _unit_active(lab, group) and _run_record(lab, group).get('mode') == 'upgraded':
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError('upgrade.yml ended before the upgrade of the %s started:\n%s'
                                 % (group, proc.stdout.read()[-4000:]))
        time.sleep(0.5)
    raise AssertionError('no wazo-upgrade running on the %s after %d s' % (group, timeout))


def _start_upgrade(lab, tmp_path):
    cmd = [os.path.join(labtools.VENV_BIN, 'ansible-playbook'), '-i', lab.path, UPGRADE] + _args(tmp_path)
    return subprocess.Popen(cmd, cwd=labtools.ROOT, env=labtools.ansible_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.fixture
def clean_lab(lab):
    """First version on both stacks, normal mode, no lock; put back the same way afterwards."""
    lab.reset_versions()
    yield lab
    for group in ('primary', 'secondary'):
        lab.ssh(group, 'rm -f %s /var/run/reboot-required /var/run/reboot-required.pkgs '
                       '/etc/wazo-standin/reboot-required-next-upgrade; systemctl start ssh; '
                       'systemctl start postgresql' % PRE_STOP_DELAY, check=False)
    lab.reset_versions()


def test_stack_lost_mid_upgrade_goes_on_and_rerun_attaches(clean_lab, tmp_path):
    """The secondary stops answering SSH while its wazo-upgrade runs: the run gets a message naming the host
    and what to do (not a bare UNREACHABLE), the upgrade finishes on the stack anyway, and the rerun waits for
    it instead of starting a second one, then completes. The upgrade needed a reboot: said and reported."""
    lab = clean_lab
    runs_before = _full_runs(lab, 'secondary')
    lab.ssh('secondary', 'echo 25 > /etc/wazo-standin/upgrade-seconds; '
                         'echo linux-image-6.1.0-99-amd64 > /etc/wazo-standin/reboot-required-next-upgrade')
    proc = _start_upgrade(lab, tmp_path)
    try:
        _wait_upgrade_running(lab, 'secondary', proc)
        # The fault: sshd stops and every SSH session to the secondary is cut (the controller's included);
        # sshd comes back by itself 40 s later (the stack "answers again"). Run detached on the stack, so that
        # cutting this very session does not stop it half-way.
        lab.ssh('secondary', "systemd-run --quiet --unit=test-cut-ssh --collect sh -c "
                             "'sleep 1; systemctl stop ssh; "
                             "for p in $(pgrep -f \"^sshd: \"); do kill $p; done; "
                             "sleep 40; systemctl start ssh'")
        out, _unused = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert 'secondary stopped answering SSH' in out, out[-5000:]
    assert 'rerun upgrade.yml: it waits for that run' in out
    assert 'UPGRADE STOPPED BEFORE ANY TRAFFIC MOVED' in out
    # sshd back: the upgrade went on without its connection and ended on the stack (its record says so)
    deadline = time.time() + 90
    while time.time() < deadline and lab.ssh('secondary', 'true', check=False).returncode != 0:
        time.sleep(2)
    record = _run_record(lab, 'secondary')
    assert record['mode'] == 'upgraded' and record['collected'] is False
    assert record['status'] in ('running', 'finished')
    # the rerun attaches (while it still runs, or once it is finished), starts no second wazo-upgrade, completes
    proc = lab.playbook(UPGRADE, *_args(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert _full_runs(lab, 'secondary') == runs_before + 1, 'a second wazo-upgrade ran on the secondary'
    record = _run_record(lab, 'secondary')
    assert record['status'] == 'succeeded' and record['collected'] is True and record['rc'] == 0
    state = lab.state()
    assert state['versions'] == {'primary': LAST, 'secondary': LAST}
    assert state['mode'] == 'normal' and not state['lock'] and state['ha_check'] == 'active'
    # the reboot the upgrade asked for: in the run's output and in the report
    assert 'secondary needs a reboot to finish its upgrade (linux-image-6.1.0-99-amd64)' in proc.stdout
    with open(tmp_path / 'reports' / ('upgrade-%s.json' % LAST)) as handle:
        report = json.load(handle)
    secondary = report['stacks']['secondary']
    assert secondary['reboot_required'] is True, report['stacks']
    assert secondary['version_before'] == FIRST and secondary['version_after'] == LAST
    assert any('needs a reboot' in w for w in secondary['warnings'])
    assert report['stacks']['primary']['reboot_required'] is False
    md = (tmp_path / 'reports' / ('upgrade-%s.md' % LAST)).read_text()
    assert 'needs a reboot' in md


def test_controller_killed_then_run_fails_reported_on_rerun(clean_lab, tmp_path):
    """ansible-playbook killed while the secondary's wazo-upgrade runs; that run then fails on the stack. The run
    went on without its controller, its end and wazo-upgrade's failure message are kept on the stack, and the
    rerun reports that failure before any change and starts no second wazo-upgrade."""
    lab = clean_lab
    runs_before = _full_runs(lab, 'secondary')
    # a pre-stop script (Wazo's hook directory) keeps the run going long enough to kill the controller in it
    lab.ssh('secondary', "printf '#!/bin/sh\\nsleep 10\\n' > %s && chmod 755 %s; "
                         "echo 'message: disk full (injected)' > /etc/wazo-standin/fail-next-upgrade"
                         % (PRE_STOP_DELAY, PRE_STOP_DELAY))
    proc = _start_upgrade(lab, tmp_path)
    try:
        _wait_upgrade_running(lab, 'secondary', proc)
    finally:
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    deadline = time.time() + 120
    while time.time() < deadline and _run_record(lab, 'secondary').get('status') == 'running':
        time.sleep(1)
    record = _run_record(lab, 'secondary')
    # it outlived its controller: it ended after the kill (the lab's containers share the host's clock)
    assert record.get('finished_ts', 0) > killed_at, ('wazo-upgrade died with the controller', record)
    # its end, kept on the stack (judged or not by the module the killed controller left behind), not acknowledged
    assert record['status'] in ('finished', 'failed') and record['collected'] is False, record
    assert record['finished'] and record['rc'] == 0  # the wrapper's exit code: 0 even on failure
    output = lab.ssh('secondary', 'cat /var/lib/wazo-maintenance/upgrade-run.out').stdout
    assert 'An error occurred during the upgrade.' in output and 'Error: disk full (injected)' in output
    before = lab.state()
    proc = lab.playbook(UPGRADE, *_args(tmp_path), check=False)
    assert proc.returncode != 0
    out = proc.stdout
    assert 'UPGRADE REFUSED BEFORE ANY CHANGE' in out, out[-5000:]
    assert 'failed on secondary' in out and '(disk full (injected))' in out
    assert 'An error occurred during the upgrade.' in out
    assert 'restore the secondary from its snapshot' in out
    assert 'UNREACHABLE' not in out
    assert _full_runs(lab, 'secondary') == runs_before + 1
    after = lab.state()
    assert after['lock']['owner'] == before['lock']['owner'] == 'upgrade.yml'  # still held, as the killed run left it
    assert dict(after, lock=None) == dict(before, lock=None)
    record = _run_record(lab, 'secondary')
    assert record['status'] == 'failed' and record['collected'] is True and 'disk full' in record['msg']


def test_postgresql_down_on_a_stack_refused_with_what_to_do(lab, tmp_path):
    """PostgreSQL stopped on the secondary before upgrade.yml: refused before any change (preflight), the
    message names the host and the missing cluster."""
    before = lab.state()
    lab.ssh('secondary', 'systemctl stop postgresql')
    try:
        proc = lab.playbook(UPGRADE, *_args(tmp_path), check=False)
    finally:
        lab.ssh('secondary', 'systemctl start postgresql')
    assert proc.returncode != 0
    out = proc.stdout
    assert 'Host secondary: no running PostgreSQL cluster' in out, out[-4000:]
    assert lab.state() == before
