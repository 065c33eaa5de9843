# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role wazo.maintenance_mode.preflight: bad inventories fail before any change, a good one exports facts.

Without a lab only the standalone bad inventories run (they fail before connecting to any host). With a lab
(``LAB_INVENTORY=.lab-NAME/inventory.yml``, ``make lab-up`` + stand-in), the lab overlays, the unreachable
host, the version mismatch and the exported facts are tested too. Every negative test checks that the play
stopped in preflight (no later play ran) and that nothing changed on any host.

    LAB_INVENTORY=.lab-setupa/inventory.yml .venv/bin/pytest -v tests/setup/test_preflight.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from pathlib import Path

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

INVENTORIES = Path(__file__).resolve().parent / 'inventories'

# The three roles as setup.yml runs them (preflight first, on every host, nothing else runs if it fails).
PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust', 'ha')

FACTS_PLAYBOOK = """
- name: Preflight only, then show the exported facts
  hosts: proxy:primary:secondary
  gather_facts: false
  any_errors_fatal: true
  roles:
    - role: wazo.maintenance_mode.preflight
  tasks:
    - name: Show the exported facts
      ansible.builtin.debug:
        msg:
          topology: "{{ wazo_mm_topology }}"
          wazo_version: "{{ wazo_mm_wazo_version | default(None) }}"
          pg_version: "{{ wazo_mm_pg_version | default(None) }}"
          pg_conf_dir: "{{ wazo_mm_pg_conf_dir | default(None) }}"
          pg_hba_file: "{{ wazo_mm_pg_hba_file | default(None) }}"
          pg_service: "{{ wazo_mm_pg_service | default(None) }}"
          pg_port: "{{ wazo_mm_pg_port | default(None) }}"
"""


# --------------------------------------------------------------------------------------------- helpers
def assert_stopped_in_preflight(run, expected):
    assert run.rc != 0, run
    assert expected in run.failures, run
    assert run.changed == 0, run
    assert run.plays_with_tasks == ['Preflight'], run


# --------------------------------------------------------------------------------------------- no lab
STANDALONE = {
    'standalone_missing_address': "Host wazo2.example.test: wazo_mm_address (default: ansible_host) must be the IPv4",
    'standalone_not_an_ip': "Host wazo1.example.test: wazo_mm_address (default: ansible_host) must be the IPv4",
    'standalone_bad_octet': "got '192.0.2.256'",
    'standalone_ipv6_address': "Host wazo2.example.test: wazo_mm_address (default: ansible_host) must be the IPv4",
    'standalone_same_address': "secondary wazo2.example.test=192.0.2.11",
    'standalone_two_primaries': "Inventory group 'primary' must hold exactly one host; it holds 2",
    'standalone_no_secondary': "Inventory group 'secondary' must hold exactly one host; it holds 0",
    'standalone_one_sip_domain': "wazo_mm_sip_domains must list exactly two different host names",
    'standalone_same_sip_domain': "wazo_mm_sip_domains must list exactly two different host names",
    'standalone_missing_odbc_password': "Required variable wazo_mm_odbc_password is missing or empty",
    'standalone_missing_replication_password': "Required variable wazo_mm_pg_replication_password is missing or empty",
}


def test_every_standalone_inventory_has_an_expectation():
    assert sorted(p.stem for p in INVENTORIES.glob('standalone_*.yml')) == sorted(STANDALONE)


@pytest.mark.parametrize('name', sorted(STANDALONE))
def test_bad_inventory_fails_in_preflight_without_connecting(tmp_path, name):
    run = labtools.run_playbook(tmp_path, [INVENTORIES / (name + '.yml')], PLAYBOOK)
    assert_stopped_in_preflight(run, STANDALONE[name])
    # nothing past the inventory checks ran: no host was contacted
    tasks = {t for _play, t, _host, _res in run.results()}
    assert 'Wait for the connection to the host' not in tasks, run


def test_the_passwords_are_never_printed(tmp_path):
    run = labtools.run_playbook(tmp_path, [INVENTORIES / 'standalone_two_primaries.yml'], PLAYBOOK)
    assert 'example-only' not in run.stdout + run.stderr


# --------------------------------------------------------------------------------------------- lab
LAB_OVERLAYS = {
    'lab_overlay_same_address': 'The hosts need three different addresses',
    'lab_overlay_missing_address': "Host secondary: wazo_mm_address (default: ansible_host) must be the IPv4",
    'lab_overlay_unreachable': 'Host secondary (',
    'lab_overlay_unrenderable_address': "'hostvars' is undefined",
}


def test_every_lab_overlay_has_an_expectation():
    assert sorted(p.stem for p in INVENTORIES.glob('lab_overlay_*.yml')) == sorted(LAB_OVERLAYS)


@pytest.mark.parametrize('name', sorted(LAB_OVERLAYS))
def test_bad_lab_inventory_fails_in_preflight(tmp_path, name, lab_inventory):
    run = labtools.run_playbook(tmp_path, [lab_inventory, INVENTORIES / (name + '.yml')], PLAYBOOK)
    assert_stopped_in_preflight(run, LAB_OVERLAYS[name])
    if name == 'lab_overlay_unreachable':
        assert 'is unreachable' in run.failures, run


def test_good_lab_inventory_exports_facts(tmp_path, lab):
    run = labtools.run_playbook(tmp_path, [lab.path], FACTS_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run
    shown = {h: r['msg'] for _play, t, h, r in run.results() if t == 'Show the exported facts'}
    assert set(shown) == {'proxy', 'primary', 'secondary'}
    for host in ('proxy', 'primary', 'secondary'):
        assert {h: shown[host]['topology'][h]['address'] for h in ('proxy', 'primary', 'secondary')} == \
            {h: lab.address(h) for h in ('proxy', 'primary', 'secondary')}
    for host in ('primary', 'secondary'):
        # what the host itself says, not a constant
        major = lab.ssh(host, "pg_lsclusters --no-header | awk '$2 == \"main\" {print $1}' | tail -n1").stdout.strip()
        assert shown[host]['pg_version'] == major
        assert shown[host]['pg_conf_dir'] == '/etc/postgresql/%s/main' % major
        assert shown[host]['pg_hba_file'] == '/etc/postgresql/%s/main/pg_hba.conf' % major
        assert shown[host]['pg_service'] == 'postgresql@%s-main.service' % major
        assert int(shown[host]['pg_port']) == 5432
        installed = lab.ssh(host, "dpkg-query -W -f '${Version}' wazo-platform").stdout.strip()
        assert shown[host]['wazo_version'] == installed
    assert shown['proxy']['pg_version'] is None


def test_preflight_is_check_mode_clean(tmp_path, lab_inventory):
    run = labtools.run_playbook(tmp_path, [lab_inventory], FACTS_PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_different_wazo_versions_fail_in_preflight(tmp_path, lab):
    installed = lab.ssh('secondary', "dpkg-query -W -f '${Version}' wazo-platform").stdout.strip()
    versions = lab.ssh('secondary', "apt-cache madison wazo-platform | awk '{print $3}'").stdout.split()
    others = [v for v in versions if v != installed]
    if not others:
        pytest.skip('the stand-in repository has a single wazo-platform version')
    try:
        lab.ssh('secondary', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades '
                             'wazo-platform=%s >/dev/null' % others[0])
        run = labtools.run_playbook(tmp_path, [lab.path], PLAYBOOK)
        assert_stopped_in_preflight(run, 'The stacks must run the same Wazo version')
        assert 'secondary secondary has %s' % others[0] in run.failures, run
    finally:
        lab.ssh('secondary', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades '
                             'wazo-platform=%s >/dev/null' % installed)
