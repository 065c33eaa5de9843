# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/switch.yml on the lab: a maintenance window without an upgrade.

Proofs: under SIPp load through the proxy, opening the window sends new calls to the secondary and drains the
primary (its real Asterisk at 0 calls when the run returns), the lock is held by switch.yml (upgrade.yml and
`wazo-mode` are refused during the window), closing it sends new calls back and drains the secondary, releases
the lock, and not one call failed. The health gate refuses a destination with a stopped service: the route and
the lock are left as they were. An unknown mode is refused before any change.

    LAB_INVENTORY=.lab/inventory.yml .venv/bin/pytest -v tests/upgrade/test_switch.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from conftest import labtools

SWITCH = os.path.join(labtools.ROOT, 'playbooks', 'switch.yml')
UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
STOPPED = 'wazo-chatd'
DROPIN = '/etc/systemd/system/%s.service.d/lab-fault.conf' % STOPPED
BREAK = ('mkdir -p $(dirname %s) && printf "[Service]\\nExecStartPre=/bin/false\\n" > %s && systemctl daemon-reload '
         '&& systemctl restart %s' % (DROPIN, DROPIN, STOPPED))
REPAIR = 'rm -f %s && systemctl daemon-reload && systemctl reset-failed %s; systemctl start %s' % (DROPIN, STOPPED, STOPPED)


def calls(lab, group):
    out = labtools.asterisk_rx(lab, group, 'core show channels count')
    return int(out.split('active call')[0].split()[-1])


def switch(lab, mode, *args):
    return lab.playbook(SWITCH, '-e', 'wazo_mm_switch_mode=%s' % mode, '-e', 'wazo_mm_switch_drain_deadline=120s',
                        *args, check=False, timeout=600)


@pytest.fixture
def normal(lab):
    """Mode normal, no lock, before and after the test."""
    lab.ssh('proxy', 'wazo-mode normal --no-wait --force')
    yield lab
    lab.ssh('proxy', 'wazo-mode normal --no-wait --force')


def test_window_under_load_drops_no_call(normal, load):
    lab = normal
    load.start(rate=5, calls=2000, min_ms=2000, max_ms=10000)
    load.wait_created(40, timeout=60)
    assert calls(lab, 'primary') > 0  # calls in progress on the primary when the window opens

    opened = switch(lab, 'maintenance')
    assert opened.returncode == 0, opened.stdout[-4000:]
    assert 'Maintenance window open' in opened.stdout
    assert calls(lab, 'primary') == 0  # drained when the run returns
    status = lab.route_mode()
    assert status['mode'] == 'maintenance'
    assert status['lock']['owner'] == 'switch.yml', status
    created = load.created()
    load.wait_created(created + 25, timeout=60)
    assert calls(lab, 'secondary') > 0 and calls(lab, 'primary') == 0  # new calls land on the secondary

    # one operation at a time: the window's lock stops an upgrade and wazo-mode
    upgrade = lab.playbook(UPGRADE, check=False, timeout=600)
    assert upgrade.returncode != 0 and 'held by switch.yml' in upgrade.stdout, upgrade.stdout[-3000:]
    forced = lab.ssh('proxy', 'wazo-mode normal --no-wait', check=False)
    assert forced.returncode == 4, (forced.stdout, forced.stderr)
    assert lab.route_mode()['mode'] == 'maintenance'

    closed = switch(lab, 'normal')
    assert closed.returncode == 0, closed.stdout[-4000:]
    assert 'Maintenance window closed' in closed.stdout
    assert calls(lab, 'secondary') == 0
    status = lab.route_mode()
    assert status['mode'] == 'normal' and not status['lock'], status
    result = load.stop()
    assert result['failed'] == 0 and result['successful'] == result['created'] > 100, result


def test_the_gate_refuses_a_stopped_service_and_changes_nothing(normal):
    lab = normal
    lab.ssh('secondary', BREAK, check=False)
    try:
        refused = switch(lab, 'maintenance')
    finally:
        lab.ssh('secondary', REPAIR)
    assert refused.returncode != 0
    assert 'NO SWITCH TO MAINTENANCE' in refused.stdout and STOPPED in refused.stdout, refused.stdout[-3000:]
    assert 'nothing changed' in refused.stdout
    status = lab.route_mode()
    assert status['mode'] == 'normal' and not status['lock'], status


def test_an_unknown_mode_is_refused_before_any_change(normal):
    lab = normal
    refused = switch(lab, 'maintenence')
    assert refused.returncode != 0
    assert "got 'maintenence'" in refused.stdout and 'Nothing was changed' in refused.stdout, refused.stdout[-3000:]
    status = lab.route_mode()
    assert status['mode'] == 'normal' and not status['lock'], status
