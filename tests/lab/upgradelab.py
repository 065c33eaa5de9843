# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab as the upgrade and fault proofs use it: versions, resets, state, SIPp load."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

import labtools

HERE = os.path.dirname(os.path.abspath(__file__))

LOAD = os.path.join(os.path.dirname(HERE), 'load', 'sipp_load.py')
with open(os.path.join(HERE, 'group_vars', 'all', 'standin.yml')) as _fh:
    VERSIONS = yaml.safe_load(_fh)['wazo_standin_versions']
FIRST, LAST = VERSIONS[0], VERSIONS[-1]


class UpgradeLab(labtools.Lab):
    """The lab plus what the upgrade proofs need."""

    def version(self, group):
        out = self.ssh(group, 'LANG=C apt-cache policy wazo-platform').stdout
        return re.search(r'Installed: (\S+)', out).group(1)

    def reset_versions(self):
        """Both stacks back to the first version, no injected failure, short upgrades; mode normal."""
        for group in ('primary', 'secondary'):
            # apt-get clean: the next upgrade downloads its packages again, unless upgrade.yml pre-downloads them
            self.ssh(group, 'rm -f /etc/wazo-standin/fail-next-upgrade; echo 5 > /etc/wazo-standin/upgrade-seconds; '
                            'apt-get clean; '
                            'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades '
                            'wazo-platform=%s wazo-upgrade=%s >/dev/null && wazo-service start >/dev/null' % (FIRST, FIRST))
        # A clean slate for each proof: no call state left by an earlier test (a careless run leaves
        # Kamailio dialogs and stand-in channels that would hold the next drain until its timeout).
        for group in ('primary', 'secondary'):
            self.ssh(group, 'systemctl restart asterisk')
        self.ssh('proxy', 'systemctl restart kamailio && sleep 2 && wazo-mode normal --no-wait --force; '
                          'rm -f /var/lib/wazo-maintenance/upgrade-state.json')
        self.playbook(os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml'), '-e', 'wazo_mm_upgrade_abort=true',
                      check=False)

    def state(self):
        """What a test compares before/after: versions, mode, lock, the primary's HA cron."""
        status = self.route_mode()
        return {
            'versions': {g: self.version(g) for g in ('primary', 'secondary')},
            'mode': status['mode'],
            'lock': status['lock'],
            'cron': self.ssh('primary', 'cat /etc/cron.d/xivo-ha-master').stdout,
            'ha_check': self.ssh('proxy', 'systemctl is-active wazo-ha-check', check=False).stdout.strip(),
        }


class Load(object):
    """SIPp load through the proxy (tests/load/sipp_load.py), bounded in calls and time."""

    def __init__(self, lab, directory):
        self.lab = lab
        self.dir = str(directory)

    def start(self, rate=10, calls=3000, min_ms=2000, max_ms=30000):
        subprocess.run([sys.executable, LOAD, 'start', '--target', self.lab.hosts['proxy'], '--dir', self.dir,
                        '--rate', str(rate), '--calls', str(calls), '--min-ms', str(min_ms),
                        '--max-ms', str(max_ms), '--max-seconds', '1500'], check=True)

    def created(self):
        try:
            with open(os.path.join(self.dir, 'stat.csv')) as handle:
                last = handle.read().strip().splitlines()[-1].split(';')
            return int(last[12])  # TotalCallCreated
        except (OSError, IndexError, ValueError):
            return 0

    def wait_created(self, count, timeout):
        deadline = time.time() + timeout
        while self.created() < count and time.time() < deadline:
            time.sleep(1)

    def stop(self):
        out = subprocess.run([sys.executable, LOAD, 'stop', '--dir', self.dir, '--wait', '90'],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])


# Fixtures of the upgrade and fault proofs (their conftest.py import them).
@pytest.fixture(scope='session')
def lab():
    if not os.path.exists(labtools.inventory_path()):
        pytest.skip('no lab: run make lab-up (or set LAB_INVENTORY)')
    lab = UpgradeLab()
    if lab.ssh('proxy', 'test -x /usr/local/sbin/wazo-mode', check=False).returncode != 0:
        pytest.skip('setup.yml has not run on the lab')
    return lab


@pytest.fixture
def load(lab, tmp_path):
    """The load of one test; stopped at teardown if the test did not stop it (a failed assertion)."""
    handle = Load(lab, tmp_path / 'load')
    yield handle
    pid_file = os.path.join(handle.dir, 'sipp.pid')
    if os.path.exists(pid_file) and not os.path.exists(os.path.join(handle.dir, 'result.json')):
        subprocess.run([sys.executable, LOAD, 'stop', '--dir', handle.dir, '--wait', '5'], check=False,
                       capture_output=True)
