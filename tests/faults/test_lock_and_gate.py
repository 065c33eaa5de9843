# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One operation at a time, and no call to a broken stack, on the lab.

One story, in order (the tests share the lab's state; each asserts what the step leaves):

1. two upgrade.yml started at the same time: exactly one proceeds, the other is refused before any change
   with who holds the lock and since when;
2. while that run upgrades the secondary (a long stand-in upgrade), a third upgrade.yml and ``wazo-mode
   maintenance`` are refused and change nothing (versions, mode, cron, HA check, lock);
3. the running upgrade is killed (SIGKILL) while the secondary's upgrade goes on; that upgrade leaves a Wazo
   service that fails to start (a drop-in makes its unit fail);
4. the rerun takes the dead run's lock over, resumes, and the health gate refuses to send calls to the
   secondary: the route stays normal, the message names the stack, the service and what to do;
5. with the service back but a firewall that drops udp/5060 for everyone except the proxy (SIP OPTIONS from the
   proxy still answered), the rerun is refused again, naming the rule;
6. control: without a fault the same rerun switches, upgrades the primary and finishes.

    LAB_INVENTORY=.lab/inventory.yml .venv/bin/pytest -x -q tests/faults/test_lock_and_gate.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import FIRST, LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
STOPPED = 'wazo-chatd'  # a Wazo service the stand-in's wazo-service starts last
DROPIN = '/etc/systemd/system/%s.service.d/lab-fault.conf' % STOPPED
BREAK = ('mkdir -p $(dirname %s) && printf "[Service]\\nExecStartPre=/bin/false\\n" > %s && systemctl daemon-reload'
         % (DROPIN, DROPIN))
REPAIR = 'rm -f %s && systemctl daemon-reload && systemctl reset-failed %s; systemctl start %s' % (DROPIN, STOPPED, STOPPED)
SECONDARY_UPGRADE_SECONDS = 70
HELD_RE = r'held by upgrade\.yml run (\w+) of \S+@\S+ \(pid (\d+)\) since \S+'


def _args(tmp_path):
    return [UPGRADE, '-e', 'wazo_mm_upgrade_report_dir=%s' % (tmp_path / 'reports'),
            '-e', 'wazo_mm_upgrade_drain_timeout=240', '-e', 'wazo_mm_upgrade_gate_timeout=4',
            '-e', 'wazo_mm_upgrade_predownload=false', '-e', 'wazo_mm_upgrade_cel_sync=false']


def _start(lab, tmp_path, name):
    log = open(str(tmp_path / ('%s.log' % name)), 'w+')
    cmd = [os.path.join(labtools.VENV_BIN, 'ansible-playbook'), '-i', lab.path] + _args(tmp_path)
    return subprocess.Popen(cmd, cwd=labtools.ROOT, env=labtools.ansible_env(), stdout=log,
                            stderr=subprocess.STDOUT, text=True), log


def _output(log):
    log.flush()
    log.seek(0)
    return log.read()


def _wait(predicate, timeout, what, interval=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))


def _rerun(lab, tmp_path):
    return lab.playbook(*_args(tmp_path), check=False, timeout=900)


def _upgrading(lab):
    return lab.ssh('secondary', 'pgrep -f "[r]eal-wazo-upgrade"', check=False).returncode == 0


def _lock(lab):
    return lab.route_mode()['lock']


@pytest.fixture(scope='module')
def story(lab, tmp_path_factory):
    lab.reset_versions()
    # the service will fail to start at the end of the secondary's upgrade (wazo-service start: NOK)
    lab.ssh('secondary', 'echo %d > /etc/wazo-standin/upgrade-seconds; %s' % (SECONDARY_UPGRADE_SECONDS, BREAK))
    shared = {'tmp': tmp_path_factory.mktemp('lock-and-gate'), 'procs': []}
    try:
        yield shared
    finally:
        for proc in shared['procs']:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lab.ssh('secondary', '%s; iptables -D INPUT -p udp --dport 5060 -j DROP; '
                             'iptables -D INPUT -s %s -p udp --dport 5060 -j ACCEPT; '
                             'echo 5 > /etc/wazo-standin/upgrade-seconds'
                % (REPAIR, lab.hosts['proxy']), check=False)
        _wait(lambda: not _upgrading(lab), 180, 'the secondary upgrade to end')
        state = lab.state()
        if state['lock'] or state['mode'] != 'normal' or state['ha_check'] != 'active' or \
                state['versions']['primary'] != state['versions']['secondary']:
            lab.reset_versions()


def test_two_upgrades_at_once_exactly_one_proceeds(lab, story):
    tmp = story['tmp']
    a, log_a = _start(lab, tmp, 'a')
    b, log_b = _start(lab, tmp, 'b')
    story['procs'] += [a, b]
    _wait(lambda: a.poll() is not None or b.poll() is not None, 300, 'one of the two runs to stop')
    loser, log, winner, winner_log = (a, log_a, b, log_b) if a.poll() is not None else (b, log_b, a, log_a)
    out = _output(log)
    assert loser.returncode != 0 and winner.poll() is None, out[-4000:]
    assert 'upgrade.yml refused before any change' in out, out[-4000:]
    held = re.search(HELD_RE, out)
    assert held and int(held.group(2)) == winner.pid, out[-4000:]
    # the lock task fails (rescued: the site stops there), then the fleet report ends the run failed
    failed = [task.split(']')[0] for task in out.split('TASK [')[1:] if 'fatal:' in task]
    assert len(failed) == 2 and failed[0].endswith('Take the maintenance lock for this run'), out[-3000:]
    assert failed[1].endswith('Fail the run when a site did not complete'), out[-3000:]
    assert all(r.get('changed', 0) == 0 for r in labtools.recap(out).values()), labtools.recap(out)
    lock = _lock(lab)
    assert lock['run'] == held.group(1) and lock['pid'] == winner.pid
    story.update(winner=winner, winner_log=winner_log, run=held.group(1))


def test_during_the_upgrade_another_run_and_wazo_mode_change_nothing(lab, story):
    _wait(lambda: lab.version('secondary') == LAST and _upgrading(lab), 300,
          'the winner to be in the secondary upgrade')
    before = lab.state()
    assert before['mode'] == 'normal' and '#wazo-maintenance#' in before['cron'] and before['ha_check'] != 'active'
    proc = _rerun(lab, story['tmp'])
    assert proc.returncode != 0
    assert re.search(r'upgrade\.yml refused before any change: ' + HELD_RE, proc.stdout), proc.stdout[-4000:]
    assert 'still going on this controller' in proc.stdout
    res = lab.ssh('proxy', 'wazo-mode maintenance --no-wait', check=False)
    assert res.returncode == 4
    assert 'upgrade.yml run %s of' % story['run'] in res.stdout + res.stderr, res.stdout + res.stderr
    assert 'nothing changed' in res.stdout + res.stderr
    assert _upgrading(lab), 'the secondary upgrade ended before the checks: raise SECONDARY_UPGRADE_SECONDS'
    assert lab.state() == before


def test_killed_run_then_rerun_resumes_and_the_gate_refuses_a_stopped_service(lab, story):
    story['winner'].send_signal(signal.SIGKILL)
    story['winner'].wait()
    _wait(lambda: not _upgrading(lab), 180, 'the secondary upgrade to end')
    state = lab.state()
    assert state['versions'] == {'primary': FIRST, 'secondary': LAST} and state['mode'] == 'normal'
    assert state['lock']['run'] == story['run']  # the killed run's lock is still there
    status = lab.ssh('secondary', 'wazo-service status', check=False)
    assert status.returncode != 0 and re.search(r'(stopped|failed)\s+%s' % STOPPED, status.stdout), status.stdout

    proc = _rerun(lab, story['tmp'])
    out = proc.stdout
    assert proc.returncode != 0, out[-5000:]
    assert 'a run whose process is gone' in out and story['run'] in out, out[-5000:]  # taken over, and said so
    if 'UPGRADE REFUSED BEFORE ANY CHANGE' in out:
        # the killed run's wazo-upgrade failed on the secondary, reported once by this rerun (nothing changed)
        assert lab.route_mode()['mode'] == 'normal'
        proc = _rerun(lab, story['tmp'])
        out = proc.stdout
        assert proc.returncode != 0, out[-5000:]
    assert 'Upgrade plan: resume' in out, out[-5000:]
    assert 'NO SWITCH TO MAINTENANCE: the health gate refused the secondary' in out, out[-5000:]
    assert 'secondary (%s) is not healthy' % lab.hosts['secondary'] in out
    assert re.search(r'wazo-service status: \w+ \(rc=\d\), %s (stopped|failed)' % STOPPED, out), out[-5000:]
    assert 'wazo-service start' in out
    assert 'The route mode was not changed: it is normal, new calls go to the primary' in out
    state = lab.state()
    assert state['mode'] == 'normal' and state['versions'] == {'primary': FIRST, 'secondary': LAST}
    assert state['lock']['owner'] == 'upgrade.yml' and state['lock']['run'] != story['run']


def test_the_gate_refuses_a_udp_5060_drop(lab, story):
    lab.ssh('secondary', '%s && iptables -I INPUT 1 -s %s -p udp --dport 5060 -j ACCEPT && '
                         'iptables -A INPUT -p udp --dport 5060 -j DROP' % (REPAIR, lab.hosts['proxy']))
    status = lab.ssh('secondary', 'wazo-service status', check=False).stdout
    assert re.search(r'running\s+%s' % STOPPED, status), status
    proc = _rerun(lab, story['tmp'])
    out = proc.stdout
    assert proc.returncode != 0
    assert 'NO SWITCH TO MAINTENANCE' in out, out[-5000:]
    assert 'udp/5060 dropped or rejected by the firewall: -A INPUT -p udp -m udp --dport 5060 -j DROP' in out
    assert 'no answer to SIP OPTIONS' not in out  # the proxy's OPTIONS were answered: the rule is the reason
    assert lab.route_mode()['mode'] == 'normal'


def test_control_without_fault_the_same_rerun_switches_and_finishes(lab, story):
    lab.ssh('secondary', 'iptables -D INPUT -p udp --dport 5060 -j DROP; '
                         'iptables -D INPUT -s %s -p udp --dport 5060 -j ACCEPT' % lab.hosts['proxy'])
    proc = _rerun(lab, story['tmp'])
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'Upgrade plan: resume' in proc.stdout and 'NO SWITCH' not in proc.stdout
    state = lab.state()
    assert state['versions'] == {'primary': LAST, 'secondary': LAST} and state['mode'] == 'normal'
    assert not state['lock'] and state['ha_check'] == 'active' and '#wazo-maintenance#' not in state['cron']
