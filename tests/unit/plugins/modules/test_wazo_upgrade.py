# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wazo_upgrade with a scripted host: apt-cache, the wrapper writing its log like `| tee -a`,
wazo-service status and iptables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import wazo_upgrade_run as runs
from ansible_collections.wazo.maintenance_mode.plugins.modules import wazo_upgrade

POLICY = 'wazo-platform:\n  Installed: {0}\n  Candidate: {1}\n  Version table:\n     {1} 500\n'
START = '\n===========================================\nwazo-upgrade started at 2026-01-10_02:00:01\n' \
        '===========================================\n\n'
STOP = '\n===========================================\nwazo-upgrade stopped at 2026-01-10_02:09:44\n' \
       '===========================================\n\n'
OK_RUN = 'Upgrading wazo-upgrade\ninstalled version : 24.05\nproposed update\t: 25.03\nUpgrading wazo...\n' \
         'Setting up wazo-platform (25.03) ...\n'
FATAL = 'Upgrading wazo...\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n' \
        '******************* ERROR *************************\nAn error occurred during the upgrade.\n' \
        'Please check /var/log/wazo-upgrade.log for details.\n******************* ERROR *************************\n'
CONFFILES = 'WARNING: The following configuration files were overwritten during the upgrade:\n\n' \
            '/etc/systemd/system.conf\n\nTo finish the upgrade, you must merge the new version with the old\n'
OLD_LOG = START + 'an older run\n' + STOP
DROP = '-P INPUT ACCEPT\n-A INPUT -p udp -m udp --dport 5060 -j DROP\n'


class Stack(object):
    """A Wazo stack behind the fake run_command. systemd-run runs the command at once, as the detached
    runner would (output file, end written into the run record); systemctl says whether the unit is active."""

    def __init__(self, host, log, installed='24.05', candidate='25.03'):
        self.host = host
        self.log = log
        self.state_dir = log.parent / 'state'
        self.active = []  # what `systemctl is-active` answers next (then: inactive)
        self.started = 0
        self.installed = installed
        self.candidate = candidate
        self.output = OK_RUN
        self.upgrades_to = candidate
        self.services_rc = 0
        self.iptables = (0, '-P INPUT ACCEPT\n', '')
        log.write_text(OLD_LOG)
        host.handlers.update({
            'apt-cache': lambda argv: (0, POLICY.format(self.installed or '(none)', self.candidate), ''),
            'apt-get': (0, 'Reading package lists...\n', ''),
            'wazo-upgrade': self.wrapper,
            'wazo-service': lambda argv: (self.services_rc, '', ''),
            'iptables': lambda argv: self.iptables,
            'systemd-run': self.systemd_run,
            'systemctl': self.systemctl,
        })

    @property
    def record(self):
        return json.loads((self.state_dir / runs.STATE_FILE).read_text())

    def systemctl(self, argv):
        assert argv[1:] == ['is-active', 'wazo-mm-upgrade.service'], argv
        return (0, 'active\n', '') if self.active and self.active.pop(0) else (3, 'inactive\n', '')

    def systemd_run(self, argv):
        self.started += 1
        assert '--unit=wazo-mm-upgrade' in argv and '--collect' in argv, argv
        python, dash_c, code, state_path, run_id, output, limit, kill_after = argv[argv.index('--') + 1:][:8]
        cmd = argv[argv.index('--') + 9:]
        assert dash_c == '-c' and code == runs.runner_code() and kill_after == '60'
        handler = self.host.handlers[cmd[0].rsplit('/', 1)[-1]]
        rc, out, err = handler(cmd) if callable(handler) else handler
        with open(output, 'a') as handle:
            handle.write(out + err)
        record = json.loads(open(state_path).read())
        assert record['id'] == run_id and record['status'] == 'running' and record['cmd'] == cmd
        record.update(status='finished', rc=rc, timed_out=rc == 124, finished='2026-01-10T02:09:44Z')
        runs.write_state(state_path, record)
        return 0, '', ''

    def wrapper(self, argv):
        # like bin/wazo-upgrade: banners + `run_upgrade |& tee -a LOG`, and rc 0 whatever happened
        with self.log.open('a') as log:
            log.write(START + self.output + STOP)
        if '-d' not in argv:
            self.installed = self.upgrades_to
        return 0, self.output, ''


class Clock(object):
    """time.time/time.sleep for the module: sleeping advances the clock, nothing waits."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(wazo_upgrade, 'time', fake)
    return fake


@pytest.fixture
def stack(host, tmp_path, clock):
    return Stack(host, tmp_path / 'wazo-upgrade.log')


def args(stack, **kwargs):
    kwargs.setdefault('log_path', str(stack.log))
    kwargs.setdefault('state_dir', str(stack.state_dir))
    return kwargs


def test_upgrade(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack), diff=True)
    assert 'failed' not in result, result['msg']
    assert result['changed'] is True
    assert (result['version_before'], result['version_after'], result['candidate']) == ('24.05', '25.03', '25.03')
    assert result['cmd'] == ['/usr/bin/wazo-upgrade', '-f']
    assert result['log'] == (START + OK_RUN + STOP).splitlines()
    assert result['errors'] == [] and result['upgrade_warnings'] == []
    assert result['services_status'] == 'running'
    assert result['firewall_drop_rules'] == []
    assert result['diff'] == {'before': 'wazo-platform 24.05\n', 'after': 'wazo-platform 25.03\n'}
    assert host.commands() == ['apt-get', 'systemctl', 'apt-cache', 'systemd-run', 'systemctl', 'apt-cache',
                               'wazo-service', 'iptables']
    upgrade_argv = host.calls[3][0]
    assert upgrade_argv[-2:] == ['/usr/bin/wazo-upgrade', '-f']
    assert upgrade_argv[-4:-2] == ['7200', '60']  # the runner's time limit and kill delay
    assert '--setenv=DEBIAN_FRONTEND=noninteractive' in upgrade_argv and '--setenv=LC_ALL=C' in upgrade_argv
    assert host.calls[0][0][:2] == ['/usr/bin/apt-get', 'update']
    assert host.calls[2][0] == ['/usr/bin/apt-cache', 'policy', 'wazo-platform']
    assert host.calls[2][1]['environ_update']['LANG'] == 'C'
    # the run's record on the stack: its end, the verdict, reported by this task
    record = stack.record
    assert record['status'] == 'succeeded' and record['collected'] is False and record['rc'] == 0
    assert (record['mode'], record['target'], record['version_before']) == ('upgraded', '25.03', '24.05')
    assert result['run']['status'] == 'succeeded' and result['run']['attached'] is False
    assert result['reboot_required'] is False


def test_already_upgraded_runs_nothing(stack, host, run_module):
    stack.installed = '25.03'
    result = run_module(wazo_upgrade, args(stack))
    assert result['changed'] is False and 'failed' not in result
    assert (result['version_before'], result['version_after'], result['candidate']) == ('25.03', '25.03', '25.03')
    assert result['upgrade_available'] is False
    assert 'wazo-upgrade' not in host.commands() and 'systemd-run' not in host.commands()


def test_check_mode(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack), check_mode=True, diff=True)
    assert result['changed'] is True and result['upgrade_available'] is True
    assert (result['version_before'], result['version_after'], result['candidate']) == ('24.05', '25.03', '25.03')
    assert result['cmd'] == [] and result['log'] == []
    # fresh package lists in check mode too, no upgrade
    assert host.commands() == ['apt-get', 'systemctl', 'apt-cache']
    assert result['diff']['after'] == 'wazo-platform 25.03\n'


def test_check_mode_up_to_date(stack, host, run_module):
    stack.installed = '25.03'
    result = run_module(wazo_upgrade, args(stack), check_mode=True)
    assert result['changed'] is False  # the apt-get update it ran is not a change
    assert host.commands() == ['apt-get', 'systemctl', 'apt-cache']


def test_check_mode_without_update_cache(stack, host, run_module):
    run_module(wazo_upgrade, args(stack, update_cache=False), check_mode=True)
    assert host.commands() == ['systemctl', 'apt-cache']


def test_fatal_error_despite_rc_0(stack, host, run_module):
    stack.output = FATAL
    stack.upgrades_to = '24.05'
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and result['changed'] is True
    assert result['rc'] == 0
    assert '"An error occurred during the upgrade."' in result['msg']
    assert '"******************* ERROR *************************"' in result['msg']
    assert str(stack.log) in result['msg']
    assert 'wazo-platform is at 24.05, not at the candidate 25.03' in result['msg']
    assert result['version_after'] == '24.05'
    assert 'An error occurred during the upgrade.' in result['errors']
    assert result['log'] == (START + FATAL + STOP).splitlines()


def test_fatal_error_message_reported(stack, run_module):
    stack.output = ('******************* ERROR *************************\nAn error occurred during the upgrade.\n'
                    'Please check /var/log/wazo-upgrade.log for details.\n'
                    'Error: Failed to execute /usr/share/wazo-upgrade/pre-stop.d/50-x\n'
                    'Please, fix this issue before re-executing wazo-upgrade\n'
                    '******************* ERROR *************************\n')
    stack.upgrades_to = '24.05'
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True
    assert '(Failed to execute /usr/share/wazo-upgrade/pre-stop.d/50-x)' in result['msg']


@pytest.mark.parametrize('output, marker', [
    ('ERROR: You must configure Wazo by running the wizard (POST /api/confd/1.1/wizard) before using wazo-upgrade\n',
     'ERROR: You must configure Wazo by running the wizard'),
    ('ERROR: wazo-confd is not running: cannot check if the wizard has been run.\n', 'ERROR: wazo-confd is not running'),
    ('Could not find any Wazo repository to download "wazo-upgrade" from. Check your /etc/apt/sources.list.d '
     'or run "wazo-dist -m pelican-bullseye".\n', 'Could not find any Wazo repository'),
    ('Could not find any Debian repository to download "bash" from. Check your /etc/apt/sources.list.\n',
     'Could not find any Debian repository'),
])
def test_precondition_failures(stack, run_module, output, marker):
    stack.output = output
    stack.upgrades_to = '24.05'
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True
    assert result['error_markers'] == [marker]
    assert '"%s"' % marker in result['msg']


def test_services_failed(stack, host, clock, run_module):
    stack.services_rc = 2
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True
    assert result['services_status'] == 'failed'
    assert 'wazo-service status: failed (rc=2)' in result['msg']
    assert sum(clock.sleeps) == 60 and host.commands().count('wazo-service') == 31


def test_services_come_up(stack, host, clock, run_module):
    status = iter([1, 1, 0])
    host.handlers['wazo-service'] = lambda argv: (next(status), '', '')
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result and result['services_status'] == 'running'
    assert clock.sleeps == [2, 2]


def test_services_checked_once(stack, host, clock, run_module):
    stack.services_rc = 1
    result = run_module(wazo_upgrade, args(stack, services_wait=0))
    assert result['failed'] is True and clock.sleeps == []
    assert host.commands().count('wazo-service') == 1


def test_services_stopped(stack, run_module):
    stack.services_rc = 1
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and result['services_status'] == 'stopped'


def test_services_not_checked(stack, host, run_module):
    stack.services_rc = 2
    result = run_module(wazo_upgrade, args(stack, check_services=False))
    assert 'failed' not in result and 'services_status' not in result
    assert 'wazo-service' not in host.commands()


def test_leftover_sip_drop(stack, run_module):
    stack.iptables = (0, DROP, '')
    result = run_module(wazo_upgrade, args(stack))
    assert 'services_status' in result
    assert result['failed'] is True
    assert result['firewall_drop_rules'] == ['-A INPUT -p udp -m udp --dport 5060 -j DROP']
    assert 'udp/5060 is still dropped' in result['msg']


def test_iptables_unusable_is_a_warning(stack, host, run_module):
    stack.iptables = (4, '', 'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied\n')
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result
    assert any('iptables -S INPUT failed' in w for w in host.warnings)


def test_iptables_missing_is_a_warning(stack, host, run_module):
    host.missing.add('iptables')
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result
    assert any('iptables not found' in w for w in host.warnings)


def test_overwritten_conffiles_warn(stack, host, run_module):
    stack.output = OK_RUN + CONFFILES
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result
    assert result['overwritten_conffiles'] == ['/etc/systemd/system.conf']
    assert result['upgrade_warnings'] == [
        'WARNING: The following configuration files were overwritten during the upgrade: /etc/systemd/system.conf']
    assert host.warnings == result['upgrade_warnings']


def test_overwritten_conffiles_fail(stack, run_module):
    stack.output = OK_RUN + CONFFILES
    result = run_module(wazo_upgrade, args(stack, fail_on_conffiles=True))
    assert result['failed'] is True
    assert 'configuration files overwritten: /etc/systemd/system.conf' in result['msg']


def test_version_not_reached_without_marker(stack, run_module):
    stack.upgrades_to = '24.05'
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True
    assert result['error_markers'] == []
    assert 'wazo-platform is at 24.05, not at the candidate 25.03' in result['msg']


def test_timeout_killed(stack, host, run_module):
    host.handlers['wazo-upgrade'] = (124, 'Upgrading wazo...\n', '')
    result = run_module(wazo_upgrade, args(stack, timeout=60))
    assert result['failed'] is True
    assert 'killed after the 60 s timeout' in result['msg']
    # the log did not grow: the command output is what is returned
    assert result['log'] == ['Upgrading wazo...']


def test_no_timeout(stack, host, run_module):
    run_module(wazo_upgrade, args(stack, timeout=0))
    argv = [argv for argv, dummy in host.calls if argv[0].endswith('systemd-run')][0]
    assert argv[-4:] == ['0', '60', '/usr/bin/wazo-upgrade', '-f']


def test_log_rotated_during_run(stack, host, run_module):
    def rotating_wrapper(argv):
        stack.log.unlink()
        return Stack.wrapper(stack, argv)
    host.handlers['wazo-upgrade'] = rotating_wrapper
    result = run_module(wazo_upgrade, args(stack))
    assert result['log'] == (START + OK_RUN + STOP).splitlines()


def test_log_missing_before(stack, run_module):
    stack.log.unlink()
    result = run_module(wazo_upgrade, args(stack))
    assert result['log'] == (START + OK_RUN + STOP).splitlines()


def test_download(stack, host, run_module):
    stack.output = 'Upgrading wazo-upgrade\nNeed to get 120 MB/120 MB of archives.\nDownload complete and in download only mode\n'
    result = run_module(wazo_upgrade, args(stack, state='downloaded'))
    assert 'failed' not in result and result['changed'] is True
    assert result['cmd'] == ['/usr/bin/wazo-upgrade', '-d', '-f']
    assert result['version_after'] == '24.05' and result['candidate'] == '25.03'
    assert 'wazo-service' not in host.commands() and 'iptables' not in host.commands()


def test_download_already_cached(stack, run_module):
    stack.output = 'Upgrading wazo-upgrade\nNeed to get 0 B/120 MB of archives.\nDownload complete and in download only mode\n'
    result = run_module(wazo_upgrade, args(stack, state='downloaded'))
    assert result['changed'] is False


def test_download_apt_error(stack, run_module):
    stack.output = 'Upgrading wazo-upgrade\nE: Failed to fetch http://mirror.wazo.community/debian/pool/main/w/x.deb  404  Not Found\n'
    result = run_module(wazo_upgrade, args(stack, state='downloaded'))
    assert result['failed'] is True
    assert result['msg'].startswith('wazo-upgrade -d (download only) failed')
    assert '"E:"' in result['msg']


def test_download_nothing_to_do(stack, host, run_module):
    stack.installed = '25.03'
    result = run_module(wazo_upgrade, args(stack, state='downloaded'))
    assert result['changed'] is False and 'systemd-run' not in host.commands()


def test_expected_version(stack, run_module):
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert 'failed' not in result and result['version_after'] == '25.03'


def test_expected_version_mismatch_runs_nothing(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack, expected_version='25.04'))
    assert result['failed'] is True
    assert 'not the expected 25.04' in result['msg'] and 'wazo-dist -a wazo-25.04' in result['msg']
    assert 'systemd-run' not in host.commands()


def test_expected_version_already_installed(stack, host, run_module):
    stack.installed, stack.candidate = '25.03', '25.04'
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert result['changed'] is False and 'failed' not in result
    assert 'systemd-run' not in host.commands()


def test_not_a_wazo_stack(stack, host, run_module):
    host.handlers['apt-cache'] = (0, '', 'N: Unable to locate package wazo-platform\n')
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and 'cannot read the wazo-platform version' in result['msg']


def test_wazo_platform_not_installed(stack, run_module):
    stack.installed = None
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and 'not installed' in result['msg']


def test_apt_update_failure(stack, host, run_module):
    host.handlers['apt-get'] = (100, '', 'E: Could not get lock /var/lib/apt/lists/lock\n')
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and 'apt-get update failed' in result['msg']


def test_no_update_cache(stack, host, run_module):
    run_module(wazo_upgrade, args(stack, update_cache=False))
    assert 'apt-get' not in host.commands()


def test_custom_command(stack, host, run_module):
    host.handlers['my-upgrade'] = stack.wrapper
    result = run_module(wazo_upgrade, args(stack, command='/opt/bin/my-upgrade'))
    assert result['cmd'] == ['/opt/bin/my-upgrade', '-f'] and 'failed' not in result


# --- the detached run: a run left by a task whose connection was lost ------------------------------------------
def left_run(stack, status='running', output=OK_RUN, mode='upgraded', collected=False, timeout=3600, started_ts=990.0):
    """A run record as a task that lost its connection leaves it (started 10 s before the clock's now)."""
    stack.state_dir.mkdir(exist_ok=True)
    out = stack.state_dir / runs.OUTPUT_FILE
    out.write_text(output)
    record = runs.new_run(mode, ['/usr/bin/wazo-upgrade', '-f'], '25.03', '24.05', timeout, str(stack.log),
                          runs.log_mark(str(stack.log)), 'boot-1', str(out), now=started_ts)
    record.update(status=status, collected=collected)
    if status == 'finished':
        record.update(rc=0, finished='2026-01-10T02:09:44Z')
    runs.write_state(str(stack.state_dir / runs.STATE_FILE), record)
    return record


def test_running_run_is_waited_for_not_started_twice(stack, host, clock, run_module):
    left_run(stack)
    stack.active = [True, True, True]

    def finish(argv):  # the third `systemctl is-active` sees it end: the runner wrote its end just before
        active = stack.systemctl(argv)
        if not stack.active:
            with stack.log.open('a') as log:
                log.write(START + OK_RUN + STOP)
            stack.installed = '25.03'
            record = stack.record
            record.update(status='finished', rc=0, finished='2026-01-10T02:09:44Z')
            runs.write_state(str(stack.state_dir / runs.STATE_FILE), record)
        return active
    host.handlers['systemctl'] = finish
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert 'failed' not in result, result['msg']
    assert stack.started == 0  # no second wazo-upgrade
    assert clock.sleeps == [2]  # waited for it
    assert result['run']['status'] == 'succeeded' and result['run']['attached'] is True
    assert result['log'] == (START + OK_RUN + STOP).splitlines()
    assert result['version_after'] == '25.03' and result['changed'] is False
    assert stack.record['status'] == 'succeeded'


def test_finished_failed_run_reported_once_then_a_new_run(stack, host, run_module):
    left_run(stack, status='finished', output=FATAL.replace(
        'for details.\n', 'for details.\nError: disk full (injected)\n'))
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert result['failed'] is True and stack.started == 0
    assert 'in a detached run this task did not start' in result['msg']
    assert '(disk full (injected))' in result['msg'] and '"An error occurred during the upgrade."' in result['msg']
    assert result['run']['status'] == 'failed' and result['run']['error_messages'] == ['disk full (injected)']
    record = stack.record
    assert record['status'] == 'failed' and record['collected'] is False and 'disk full' in record['msg']
    # reported again until the controller acknowledges it (its result may never have reached anyone)
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert result['failed'] is True and stack.started == 0
    assert 'whose result never reached the controller' in result['msg'] and 'disk full' in result['msg']
    result = run_module(wazo_upgrade, args(stack, state='collected', acknowledge=record['id']))
    assert 'failed' not in result and result['changed'] is False and stack.record['collected'] is True
    # then the next call upgrades again
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert 'failed' not in result and stack.started == 1 and result['version_after'] == '25.03'


def test_own_failure_reported_until_acknowledged(stack, run_module):
    stack.output = FATAL
    stack.upgrades_to = '24.05'
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and stack.started == 1
    run_id = result['run']['id']
    assert stack.record['status'] == 'failed' and stack.record['collected'] is False
    run_module(wazo_upgrade, args(stack, state='collected', acknowledge='another-run'))
    assert stack.record['collected'] is False  # not that run
    run_module(wazo_upgrade, args(stack, state='collected', acknowledge=run_id))
    stack.output, stack.upgrades_to = OK_RUN, '25.03'
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result and stack.started == 2


def test_finished_failed_download_reported_before_an_upgrade(stack, run_module):
    left_run(stack, status='finished', mode='downloaded',
             output='E: Failed to fetch http://mirror.wazo.community/debian/pool/main/w/x.deb  404  Not Found\n')
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and stack.started == 0
    assert result['msg'].startswith('wazo-upgrade -d (download only) failed on this stack in a detached run')


def test_lost_run(stack, run_module):
    left_run(stack)  # recorded running, unit gone: killed before it could write its end
    result = run_module(wazo_upgrade, args(stack, state='collected'))
    assert result['failed'] is True and stack.started == 0
    assert 'ended without recording its end' in result['msg']
    assert stack.record['status'] == 'failed'


def test_running_run_waited_for_at_most_its_bound(stack, clock, run_module):
    left_run(stack, timeout=60)
    stack.active = [True] * 1000
    result = run_module(wazo_upgrade, args(stack, state='collected'))
    assert result['failed'] is True and 'wazo-upgrade is still running on this stack' in result['msg']
    assert 'It is not started twice' in result['msg']
    assert clock.now == pytest.approx(990 + 60 + runs.WAIT_MARGIN, abs=2)
    assert stack.started == 0 and stack.record['status'] == 'running'


def test_check_mode_reports_a_run_without_waiting_or_marking(stack, clock, run_module):
    left_run(stack, status='finished', output=FATAL)
    result = run_module(wazo_upgrade, args(stack, state='collected'), check_mode=True)
    assert 'failed' not in result and result['changed'] is False
    assert result['run']['status'] == 'finished' and result['run']['attached'] is True
    assert 'An error occurred during the upgrade.' in result['run']['error_markers']
    assert stack.record['collected'] is False
    stack.active = [True]
    left_run(stack)
    result = run_module(wazo_upgrade, args(stack), check_mode=True)
    assert result['run']['status'] == 'running' and clock.sleeps == []


def test_collected_nothing(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack, state='collected'))
    assert 'failed' not in result and result['changed'] is False and 'run' not in result
    assert 'apt-get' not in host.commands() and stack.started == 0


def test_collected_run_is_not_reported_again(stack, run_module):
    left_run(stack, status='failed', collected=True)
    result = run_module(wazo_upgrade, args(stack, state='collected'))
    assert 'failed' not in result and result['run']['status'] == 'failed' and result['run']['attached'] is False


def test_bad_record_refused(stack, run_module):
    stack.state_dir.mkdir()
    (stack.state_dir / runs.STATE_FILE).write_text('{"something": "else"}')
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and 'is not a wazo-upgrade run record' in result['msg']
    assert stack.started == 0


def test_systemd_run_refused(stack, host, run_module):
    host.handlers['systemd-run'] = (1, '', 'Failed to start transient service unit: Unit wazo-mm-upgrade.service '
                                           'was already loaded or has a fragment file.\n')
    result = run_module(wazo_upgrade, args(stack))
    assert result['failed'] is True and 'could not start' in result['msg'] and 'already loaded' in result['msg']
    assert stack.record['status'] == 'failed' and stack.record['collected'] is True


@pytest.fixture
def reboot_files(tmp_path, monkeypatch):
    flag, pkgs = tmp_path / 'reboot-required', tmp_path / 'reboot-required.pkgs'
    monkeypatch.setattr(wazo_upgrade, 'REBOOT_REQUIRED_FILE', str(flag))
    monkeypatch.setattr(wazo_upgrade, 'REBOOT_REQUIRED_PKGS_FILE', str(pkgs))
    return flag, pkgs


def test_reboot_required_after_the_upgrade(stack, host, reboot_files, run_module):
    flag, pkgs = reboot_files

    def wrapper(argv):
        flag.write_text('*** System restart required ***\n')
        pkgs.write_text('linux-image-6.1.0-28-amd64\nlibc6\nlibc6\n')
        return Stack.wrapper(stack, argv)
    host.handlers['wazo-upgrade'] = wrapper
    result = run_module(wazo_upgrade, args(stack))
    assert 'failed' not in result
    assert result['reboot_required'] is True
    assert result['reboot_required_packages'] == ['linux-image-6.1.0-28-amd64', 'libc6']
    assert any('needs a reboot' in w and 'linux-image-6.1.0-28-amd64' in w for w in result['upgrade_warnings'])
    assert host.warnings == result['upgrade_warnings']
    # a later call (the stack already at the target) still says so, until the reboot
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert result['reboot_required'] is True and result['changed'] is False


def test_no_reboot_required(stack, reboot_files, run_module):
    result = run_module(wazo_upgrade, args(stack))
    assert result['reboot_required'] is False and result['upgrade_warnings'] == []


def test_controller_gone_leaves_the_run_to_the_rerun(stack, monkeypatch, run_module):
    """The module of a killed controller (its stdout has no reader) neither judges nor marks the run."""
    left_run(stack, status='finished', output=FATAL)
    monkeypatch.setattr(wazo_upgrade, '_controller_gone', lambda: True)
    result = run_module(wazo_upgrade, args(stack, state='collected'))
    assert 'connection to the controller is gone' in result['msg']
    assert stack.record['status'] == 'finished' and stack.record['collected'] is False


def test_controller_gone_detects_a_pipe_without_reader():
    import os
    read_end, write_end = os.pipe()
    try:
        assert wazo_upgrade._controller_gone(write_end) is False
        os.close(read_end)
        assert wazo_upgrade._controller_gone(write_end) is True
    finally:
        os.close(write_end)
