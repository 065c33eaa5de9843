# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the agent sync unit tests (module_utils agentd and agent_sync, module agent_reconcile):
two stand-in stacks' agent APIs on loopback (agent_standin.py), started once per test module, every agent
logged off and a stopped agentd started again around each test."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.tests.unit.plugins.agent_standin import ADDRESSES, Stacks


@pytest.fixture(scope='module')
def running(tmp_path_factory):
    s = Stacks(tmp_path_factory.mktemp('stacks')).start()
    yield s
    s.stop()


@pytest.fixture
def stacks(running):
    for stack in ADDRESSES:
        running.set_logins(stack, {})
    yield running
    for stack in ADDRESSES:
        if (stack, 'agentd') not in running.procs:
            running.start(stack, roles=('agentd',))
