# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of module_utils/wazo_upgrade.py, on the texts wazo-upgrade, apt, wazo-service and iptables print."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import wazo_upgrade as wu

# LANG=C apt-cache policy wazo-platform
POLICY_UPGRADE = """wazo-platform:
  Installed: 24.05
  Candidate: 25.03
  Version table:
     25.03 500
        500 http://mirror.wazo.community/debian pelican-bookworm/main amd64 Packages
 *** 24.05 100
        100 /var/lib/dpkg/status
"""
POLICY_CURRENT = """wazo-platform:
  Installed: 25.03
  Candidate: 25.03
  Version table:
 *** 25.03 500
        500 http://mirror.wazo.community/debian pelican-bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
"""
POLICY_NOT_INSTALLED = """wazo-platform:
  Installed: (none)
  Candidate: 25.03
  Version table:
     25.03 500
        500 http://mirror.wazo.community/debian pelican-bookworm/main amd64 Packages
"""
POLICY_THREE_PARTS = """wazo-platform:
  Installed: 23.16.1
  Candidate: 23.16.2
  Version table:
     23.16.2 500
"""
POLICY_PINNED_OLDER = """wazo-platform:
  Installed: 25.03
  Candidate: 24.16
  Version table:
 *** 25.03 100
        100 /var/lib/dpkg/status
     24.16 990
        990 http://mirror.wazo.community/archive wazo-24.16/main amd64 Packages
"""

# fatal_error() of real-wazo-upgrade, after an apt failure
FATAL = """Upgrading wazo...
E: Unable to locate package wazo-platform
******************* ERROR *************************
An error occurred during the upgrade.
Please check /var/log/wazo-upgrade.log for details.
******************* ERROR *************************
"""
FATAL_PRE_STOP = """Executing upgrade script /usr/share/wazo-upgrade/pre-stop.d/10-check...
******************* ERROR *************************
An error occurred during the upgrade.
Please check /var/log/wazo-upgrade.log for details.
Error: Failed to execute /usr/share/wazo-upgrade/pre-stop.d/10-check
Please, fix this issue before re-executing wazo-upgrade
******************* ERROR *************************
"""
WIZARD = ('ERROR: You must configure Wazo by running the wizard (POST /api/confd/1.1/wizard) '
          'before using wazo-upgrade\n')
CONFD = 'ERROR: wazo-confd is not running: cannot check if the wizard has been run.\n'
NO_DEBIAN = ('Could not find any Debian repository to download "bash" from. '
             'Check your /etc/apt/sources.list.\n')
NO_WAZO = ('Could not find any Wazo repository to download "wazo-upgrade" from. '
           'Check your /etc/apt/sources.list.d or run "wazo-dist -m pelican-bullseye".\n')
CONFFILES = """Executing upgrade script /usr/share/wazo-upgrade/post-start.d/20-plugins...
WARNING: The following configuration files were overwritten during the upgrade:

/etc/systemd/system.conf
/etc/xivo/asterisk/xivo_ring.conf

To finish the upgrade, you must merge the new version with the old
one. For example:

   vimdiff FILENAME FILENAME.dpkg-old

Once this is done, remove the old files and run "wazo-service restart".
"""
SUCCESS = """
===========================================
wazo-upgrade started at 2026-01-10_02:00:01
===========================================

Upgrading wazo-upgrade
Reading package lists...
wazo-upgrade is already the newest version (25.03).
installed version : 24.05
proposed update\t: 25.03
Upgrading wazo...
Setting up wazo-platform (25.03) ...
Executing upgrade script /usr/share/wazo-upgrade/post-start.d/10-confd-sync-db...

===========================================
wazo-upgrade stopped at 2026-01-10_02:09:44
===========================================

"""


class TestVersions:
    def test_upgrade_available(self):
        assert wu.parse_apt_policy(POLICY_UPGRADE) == {
            'installed': '24.05', 'candidate': '25.03', 'upgrade_available': True}

    def test_current(self):
        assert wu.parse_apt_policy(POLICY_CURRENT) == {
            'installed': '25.03', 'candidate': '25.03', 'upgrade_available': False}

    def test_not_installed(self):
        assert wu.parse_apt_policy(POLICY_NOT_INSTALLED) == {
            'installed': None, 'candidate': '25.03', 'upgrade_available': True}

    def test_three_part_versions(self):
        parsed = wu.parse_apt_policy(POLICY_THREE_PARTS)
        assert (parsed['installed'], parsed['candidate'], parsed['upgrade_available']) == ('23.16.1', '23.16.2', True)

    def test_candidate_older_is_no_upgrade(self):
        parsed = wu.parse_apt_policy(POLICY_PINNED_OLDER)
        assert (parsed['installed'], parsed['candidate'], parsed['upgrade_available']) == ('25.03', '24.16', False)

    def test_debian_revision_is_cut_like_wazo_upgrade_does(self):
        text = 'wazo-platform:\n  Installed: 25.03~20250301.1-1\n  Candidate: 25.04+dev1\n'
        parsed = wu.parse_apt_policy(text)
        assert (parsed['installed'], parsed['candidate']) == ('25.03', '25.04')

    @pytest.mark.parametrize('text', ['', 'N: Unable to locate package wazo-platform\n', 'wazo-platform:\n'])
    def test_unknown_package(self, text):
        with pytest.raises(wu.WazoVersionError):
            wu.parse_apt_policy(text)

    def test_candidate_none(self):
        parsed = wu.parse_apt_policy('wazo-platform:\n  Installed: 25.03\n  Candidate: (none)\n')
        assert parsed == {'installed': '25.03', 'candidate': None, 'upgrade_available': False}

    @pytest.mark.parametrize('installed, candidate, expected', [
        ('24.05', '25.03', True), ('25.03', '25.03', False), ('25.9', '25.10', True), ('25.10', '25.9', False),
        ('25.03.1', '25.03', False), (None, '25.03', True), ('25.03', None, False),
    ])
    def test_is_upgrade_available(self, installed, candidate, expected):
        assert wu.is_upgrade_available(installed, candidate) is expected

    def test_version_tuple(self):
        assert wu.version_tuple('25.03.1') == (25, 3, 1)
        assert wu.version_tuple(None) is None


class TestUpgradeOutput:
    def test_success_has_no_marker(self):
        parsed = wu.parse_upgrade_output(SUCCESS)
        assert parsed == {'errors': [], 'error_messages': [], 'markers': [], 'overwritten_conffiles': [], 'warnings': []}

    def test_fatal_error(self):
        parsed = wu.parse_upgrade_output(FATAL)
        assert parsed['markers'] == ['E:', wu.MARKER_ERROR_BANNER, wu.MARKER_ERROR_OCCURRED]
        assert parsed['errors'] == [
            'E: Unable to locate package wazo-platform',
            wu.MARKER_ERROR_BANNER, wu.MARKER_ERROR_OCCURRED, wu.MARKER_ERROR_BANNER]
        assert parsed['error_messages'] == []

    def test_fatal_error_with_message(self):
        parsed = wu.parse_upgrade_output(FATAL_PRE_STOP)
        assert parsed['error_messages'] == ['Failed to execute /usr/share/wazo-upgrade/pre-stop.d/10-check']
        assert 'Error:' in parsed['markers']

    def test_error_line_outside_banner_is_not_fatal(self):
        # a package printing "Error: ..." on its own is not fatal_error
        assert wu.parse_upgrade_output('Error: no such table, retrying\n')['markers'] == []

    @pytest.mark.parametrize('text, marker', [
        (WIZARD, wu.MARKER_WIZARD),
        (CONFD, wu.MARKER_CONFD_DOWN),
        (NO_DEBIAN, wu.MARKER_NO_DEBIAN_REPO),
        (NO_WAZO, wu.MARKER_NO_WAZO_REPO),
    ])
    def test_preconditions(self, text, marker):
        parsed = wu.parse_upgrade_output(SUCCESS + text)
        assert parsed['markers'] == [marker]
        assert parsed['errors'] == [text.strip()]

    def test_bad_option(self):
        parsed = wu.parse_upgrade_output('/usr/bin/real-wazo-upgrade : option t is not valid\nusage: wazo-upgrade [-d] [-f] [-h]\n')
        assert parsed['markers'] == ['option t is not valid']

    def test_overwritten_conffiles(self):
        parsed = wu.parse_upgrade_output(SUCCESS + CONFFILES)
        assert parsed['markers'] == []
        assert parsed['overwritten_conffiles'] == ['/etc/systemd/system.conf', '/etc/xivo/asterisk/xivo_ring.conf']
        assert parsed['warnings'] == [
            wu.MARKER_CONFFILES + ' /etc/systemd/system.conf, /etc/xivo/asterisk/xivo_ring.conf']

    def test_conffiles_list_ends_at_text(self):
        text = wu.MARKER_CONFFILES + '\n\n/etc/a.conf\nTo finish the upgrade\n/etc/not-a-conffile\n'
        assert wu.parse_upgrade_output(text)['overwritten_conffiles'] == ['/etc/a.conf']

    def test_apt_warning_is_not_an_error(self):
        text = 'W: Some index files failed to download. They have been ignored, or old ones used instead.\n'
        assert wu.parse_upgrade_output(text)['errors'] == []

    def test_none(self):
        assert wu.parse_upgrade_output(None)['errors'] == []


class TestLog:
    def test_slice_appended(self):
        assert wu.log_slice('old run\n', 'old run\nnew run\n') == 'new run\n'

    def test_slice_rotated(self):
        assert wu.log_slice('old run\n', 'new run\n') == 'new run\n'

    def test_slice_new_log(self):
        assert wu.log_slice(None, 'new run\n') == 'new run\n'

    def test_last_run(self):
        run, finished = wu.last_run(SUCCESS + SUCCESS.replace('02:', '03:'))
        assert run.startswith('wazo-upgrade started at 2026-01-10_03:00:01')
        assert finished is True

    def test_last_run_unfinished(self):
        text = SUCCESS + '\n===\nwazo-upgrade started at 2026-01-11_02:00:01\n===\nUpgrading wazo...\n'
        run, finished = wu.last_run(text)
        assert run.startswith('wazo-upgrade started at 2026-01-11_02:00:01')
        assert finished is False

    def test_last_run_without_banner(self):
        assert wu.last_run('Upgrading wazo...\n') == ('Upgrading wazo...\n', False)


@pytest.mark.parametrize('rc, status', [(0, 'running'), (1, 'stopped'), (2, 'failed'), (3, 'unknown'), (127, 'unknown')])
def test_services_status(rc, status):
    assert wu.services_status(rc) == status


class TestFirewall:
    # what `wazo-service stop` leaves: iptables -I INPUT 1 -p udp --dport 5060 -j DROP
    S_DROP = '-P INPUT ACCEPT\n-A INPUT -p udp -m udp --dport 5060 -j DROP\n-A INPUT -i lo -j ACCEPT\n'
    S_CLEAN = '-P INPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n'
    NVL_DROP = (
        'Chain INPUT (policy ACCEPT 120 packets, 9840 bytes)\n'
        ' pkts bytes target     prot opt in     out     source               destination\n'
        '   12   720 DROP       udp  --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:5060\n'
        '   3K  210K ACCEPT     all  --  lo     *       0.0.0.0/0            0.0.0.0/0\n'
    )
    NL_DROP = (
        'Chain INPUT (policy ACCEPT)\n'
        'target     prot opt source               destination\n'
        'DROP       udp  --  0.0.0.0/0            0.0.0.0/0            udp dpt:5060\n'
    )

    def test_s_drop(self):
        assert wu.find_sip_drop_rules(self.S_DROP) == ['-A INPUT -p udp -m udp --dport 5060 -j DROP']

    def test_s_clean(self):
        assert wu.find_sip_drop_rules(self.S_CLEAN) == []

    def test_nvl_drop(self):
        rules = wu.find_sip_drop_rules(self.NVL_DROP)
        assert len(rules) == 1 and rules[0].startswith('12   720 DROP')

    def test_nl_drop(self):
        assert len(wu.find_sip_drop_rules(self.NL_DROP)) == 1

    @pytest.mark.parametrize('text', [
        '-A INPUT -p tcp -m tcp --dport 5060 -j DROP\n',
        '-A INPUT -p udp -m udp --dport 50600 -j DROP\n',
        '-A INPUT -p udp -m udp ! --dport 5060 -j DROP\n',
        '-A FORWARD -p udp -m udp --dport 5060 -j DROP\n',
        '-A INPUT -p udp -m udp --dport 5060 -j REJECT --reject-with icmp-port-unreachable\n',
        'Chain INPUT (policy ACCEPT)\ntarget prot opt source destination\n'
        'DROP       udp  --  0.0.0.0/0            0.0.0.0/0            udp dpt:50600\n'
        'DROP       tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:5060\n',
        # the rule in another chain of a full `iptables -nvL`
        'Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n'
        ' pkts bytes target     prot opt in     out     source               destination\n\n'
        'Chain FORWARD (policy DROP 0 packets, 0 bytes)\n'
        ' pkts bytes target     prot opt in     out     source               destination\n'
        '    0     0 DROP       udp  --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:5060\n',
        '',
    ])
    def test_not_the_leftover(self, text):
        assert wu.find_sip_drop_rules(text) == []

    def test_full_listing_input_chain(self):
        text = self.NVL_DROP + '\nChain FORWARD (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target prot opt in out source destination\n'
        assert len(wu.find_sip_drop_rules(text)) == 1


STATUS_PROVD_STOPPED = (
    'Checking services...\n'
    '\trunning\t\twazo-confd\n'
    '\tstopped\t\twazo-provd\n'
    '\trunning\t\tasterisk\n'
)


def test_not_running_services_lists_what_is_down():
    assert wu.not_running_services(STATUS_PROVD_STOPPED) == {'wazo-provd': 'stopped'}


def test_not_running_services_ignores_services_stopped_on_purpose():
    assert wu.not_running_services(STATUS_PROVD_STOPPED, ['wazo-provd']) == {}


def test_not_running_services_unreadable_output():
    assert wu.not_running_services('something else\n') is None


@pytest.mark.parametrize('flag, pkgs, output, expected', [
    (False, '', '', (False, [])),
    (True, '', '', (True, [])),
    (True, 'linux-image-6.1.0-28-amd64\nlibc6\n\nlibc6\n', '', (True, ['linux-image-6.1.0-28-amd64', 'libc6'])),
    # wazo-dist-upgrade's display_reboot_notice
    (False, '', '\n* You must RESTART the machine before using Wazo again.\n\n', (True, [])),
])
def test_reboot_required(flag, pkgs, output, expected):
    assert wu.reboot_required(flag, pkgs, output) == expected


def test_reboot_warning_names_the_host_and_packages():
    text = wu.reboot_warning('secondary', ['linux-image-6.1.0-28-amd64'])
    assert text.startswith('secondary needs a reboot') and 'linux-image-6.1.0-28-amd64' in text
    assert '/var/run/reboot-required' in text
