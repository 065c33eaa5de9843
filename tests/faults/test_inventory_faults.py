# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operator mistakes refused before anything changes: a swapped inventory, an unknown mode.

A swapped inventory (the inventory's primary is the live HA secondary and the other way round) would make
setup.yml demote the real master and copy the other stack's configuration over it, and upgrade.yml upgrade
the stack that carries the calls first. Preflight reads each stack's HA role (/etc/xivo/ha.conf) and refuses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from conftest import labtools

PREFLIGHT_ONLY = """
- name: Preflight
  hosts: proxy:primary:secondary
  gather_facts: false
  any_errors_fatal: true
  roles:
    - role: wazo.maintenance_mode.preflight
      vars:
        wazo_mm_preflight_checks: [variables, topology, reachable, ha_roles]
"""
SWAPPED = "does not match the stacks' HA roles"
# What the swapped run must leave untouched on each stack and on the proxy.
FINGERPRINT = {
    'primary': 'cat /etc/xivo/ha.conf; md5sum /etc/cron.d/xivo-ha-master /etc/asterisk/pjsip.d/* 2>/dev/null; '
               'md5sum $(pg_conftool -s 15 main show hba_file 2>/dev/null || echo /etc/postgresql/15/main/pg_hba.conf)',
    'secondary': 'cat /etc/xivo/ha.conf 2>/dev/null; md5sum /etc/asterisk/pjsip.d/* 2>/dev/null; '
                 'md5sum /etc/postgresql/15/main/pg_hba.conf',
    'proxy': 'cat /var/lib/wazo-maintenance/routemode.cfg /var/lib/wazo-maintenance/maintenance.lock 2>/dev/null; '
             'md5sum /etc/kamailio/*.cfg /etc/kamailio/dispatcher.list',
}


def fingerprint(lab):
    return {group: lab.ssh(group, cmd, check=False).stdout for group, cmd in FINGERPRINT.items()}


@pytest.fixture(scope='module')
def swapped(lab, tmp_path_factory):
    """An overlay inventory that gives the inventory's primary the secondary's address and the other way round."""
    path = tmp_path_factory.mktemp('swapped') / 'swapped.yml'
    primary, secondary = lab.hosts['primary'], lab.hosts['secondary']
    overlay = {'all': {'children': {
        'primary': {'hosts': {'primary': {'ansible_host': secondary, 'wazo_mm_address': secondary}}},
        'secondary': {'hosts': {'secondary': {'ansible_host': primary, 'wazo_mm_address': primary}}},
    }}}
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_the_lab_inventory_passes_the_ha_roles_check(lab, tmp_path):
    """The control: the same check on the right inventory passes (the lab's primary is the HA master)."""
    assert '"node_type": "master"' in lab.ssh('primary', 'cat /etc/xivo/ha.conf').stdout.replace("'", '"')
    run = labtools.run_playbook(tmp_path, [lab.path], PREFLIGHT_ONLY)
    assert run.rc == 0, run


@pytest.mark.parametrize('playbook', ['setup.yml', 'upgrade.yml'])
def test_a_swapped_inventory_is_refused_before_any_change(lab, tmp_path, swapped, playbook):
    before = fingerprint(lab)
    run = labtools.run_playbook(tmp_path, [lab.path, swapped],
                                '- ansible.builtin.import_playbook: %s\n' % os.path.join(labtools.ROOT, playbook))
    assert run.rc != 0, run
    assert SWAPPED in run.failures, run
    # the message names both stacks, their HA roles, and says nothing changed
    assert "primary primary (%s) is HA 'disabled'" % lab.hosts['secondary'] in run.failures, run
    assert "secondary secondary (%s) is HA 'master'" % lab.hosts['primary'] in run.failures, run
    assert 'Nothing was changed' in run.failures, run
    assert run.changed == 0, run
    assert [p.split(' (')[0] for p in run.plays_with_tasks] == ['Preflight'], run
    assert fingerprint(lab) == before


def test_an_unknown_mode_is_refused(lab, tmp_path):
    before = lab.route_mode()
    proc = lab.ssh('proxy', 'wazo-mode maintenence', check=False)
    assert proc.returncode == 2, proc
    assert "invalid choice: 'maintenence'" in proc.stderr, proc
    run = labtools.run_playbook(tmp_path, [lab.path], """
- name: An unknown mode
  hosts: proxy
  gather_facts: false
  tasks:
    - name: Switch to an unknown mode
      wazo.maintenance_mode.kamailio_mode:
        mode: maintenence
""")
    assert run.rc != 0, run
    assert 'value of mode must be one of: normal, maintenance' in run.failures, run
    after = lab.route_mode()
    assert (after['mode'], after['lock']) == (before['mode'], before['lock'])
