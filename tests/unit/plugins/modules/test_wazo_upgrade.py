# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wazo_upgrade with a scripted host: apt-cache, the wrapper writing its log like `| tee -a`,
wazo-service status and iptables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

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
    """A Wazo stack behind the fake run_command."""

    def __init__(self, host, log, installed='24.05', candidate='25.03'):
        self.host = host
        self.log = log
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
        })

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
    assert host.commands() == ['apt-get', 'apt-cache', 'timeout', 'apt-cache', 'wazo-service', 'iptables']
    upgrade_argv, upgrade_kwargs = host.calls[2]
    assert upgrade_argv == ['/usr/bin/timeout', '--kill-after=60', '7200', '/usr/bin/wazo-upgrade', '-f']
    assert upgrade_kwargs['environ_update']['DEBIAN_FRONTEND'] == 'noninteractive'
    assert host.calls[0][0][:2] == ['/usr/bin/apt-get', 'update']
    assert host.calls[1][0] == ['/usr/bin/apt-cache', 'policy', 'wazo-platform']
    assert host.calls[1][1]['environ_update']['LANG'] == 'C'


def test_already_upgraded_runs_nothing(stack, host, run_module):
    stack.installed = '25.03'
    result = run_module(wazo_upgrade, args(stack))
    assert result['changed'] is False and 'failed' not in result
    assert (result['version_before'], result['version_after'], result['candidate']) == ('25.03', '25.03', '25.03')
    assert result['upgrade_available'] is False
    assert 'wazo-upgrade' not in host.commands() and 'timeout' not in host.commands()


def test_check_mode(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack), check_mode=True, diff=True)
    assert result['changed'] is True and result['upgrade_available'] is True
    assert (result['version_before'], result['version_after'], result['candidate']) == ('24.05', '25.03', '25.03')
    assert result['cmd'] == [] and result['log'] == []
    assert host.commands() == ['apt-cache']  # no apt-get update, no upgrade
    assert result['diff']['after'] == 'wazo-platform 25.03\n'


def test_check_mode_up_to_date(stack, host, run_module):
    stack.installed = '25.03'
    result = run_module(wazo_upgrade, args(stack), check_mode=True)
    assert result['changed'] is False
    assert host.commands() == ['apt-cache']


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
    assert ['/usr/bin/wazo-upgrade', '-f'] in [argv for argv, dummy in host.calls]


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
    assert result['changed'] is False and 'timeout' not in host.commands()


def test_expected_version(stack, run_module):
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert 'failed' not in result and result['version_after'] == '25.03'


def test_expected_version_mismatch_runs_nothing(stack, host, run_module):
    result = run_module(wazo_upgrade, args(stack, expected_version='25.04'))
    assert result['failed'] is True
    assert 'not the expected 25.04' in result['msg'] and 'wazo-dist -a wazo-25.04' in result['msg']
    assert 'timeout' not in host.commands()


def test_expected_version_already_installed(stack, host, run_module):
    stack.installed, stack.candidate = '25.03', '25.04'
    result = run_module(wazo_upgrade, args(stack, expected_version='25.03'))
    assert result['changed'] is False and 'failed' not in result
    assert 'timeout' not in host.commands()


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
