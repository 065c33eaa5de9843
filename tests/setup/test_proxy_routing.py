# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the kamailio_proxy role: a SIP call from the host through the proxy is
answered by the primary's stand-in in normal mode and by the secondary's in maintenance mode, and each
stack's `asterisk -rx 'core show channels count'` counts it while it lasts.

    LAB_INVENTORY=.lab/inventory.yml .venv/bin/pytest -v tests/setup/test_proxy_routing.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'lab'))
import labtools  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(not os.path.exists(labtools.inventory_path()),
                                reason='no lab: run make lab-up (or set LAB_INVENTORY)')


@pytest.fixture(scope='module')
def lab():
    lab = labtools.Lab()
    if lab.ssh('proxy', 'test -x /usr/local/sbin/wazo-mode', check=False).returncode != 0:
        pytest.skip('setup.yml has not configured the proxy yet')
    yield lab
    lab.ssh('proxy', 'wazo-mode normal --no-wait --force', check=False)


def _call_and_sample(lab, stack, duration_ms=8000):
    """One call through the proxy; the stacks' channel counts sampled while it is up (polled until `stack` shows
    it, at most for most of its duration, so a slow start of SIPp or of an SSH sample does not miss it)."""
    result = {}
    local_ip = labtools.host_ip_towards(lab.hosts['proxy'])

    def call():
        result['sipp'] = labtools.sipp_call(lab.hosts['proxy'], local_ip, duration_ms=duration_ms, timeout=30)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + duration_ms * 0.6 / 1000.0
    during = {}
    while time.monotonic() < deadline:
        during = {group: lab.channels(group)['channels'] for group in ('primary', 'secondary')}
        if during[stack] >= 1:
            break
        time.sleep(0.2)
    thread.join(60)
    after = {group: lab.channels(group)['channels'] for group in ('primary', 'secondary')}
    ok, failed, output = result['sipp']
    return ok, failed, during, after, output


@pytest.mark.parametrize('mode,stack,other', [('normal', 'primary', 'secondary'),
                                              ('maintenance', 'secondary', 'primary'),
                                              ('normal', 'primary', 'secondary')])
def test_call_goes_to_the_stack_of_the_mode(lab, mode, stack, other):
    lab.ssh('proxy', 'wazo-mode %s --no-wait --force' % mode)
    assert lab.route_mode()['mode'] == mode
    ok, failed, during, after, output = _call_and_sample(lab, stack)
    assert (ok, failed) == (1, 0), output[-3000:]
    assert during[stack] >= 1, (during, output[-2000:])
    assert during[other] == 0, during
    assert after[stack] == 0 and after[other] == 0, after
