# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the agent sync proofs on the lab (LAB_INVENTORY; skipped without a lab). Puts tests/lab on sys.path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'lab'))
import labtools  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='module')
def lab():
    value = os.environ.get('LAB_INVENTORY')
    if not value:
        pytest.skip('no lab: set LAB_INVENTORY=.lab-NAME/inventory.yml')
    path = value if os.path.isabs(value) else os.path.join(labtools.ROOT, value)
    if not os.path.isfile(path):
        pytest.skip('no lab: LAB_INVENTORY=%s does not exist (make lab-up)' % value)
    lab = labtools.Lab(os.path.abspath(path))
    if lab.ssh('proxy', 'test -x /usr/local/sbin/wazo-agent-sync', check=False).returncode != 0:
        pytest.skip('the agent sync is not deployed on the lab (setup.yml with agent_sync, or tests/agents/deploy.yml)')
    return lab
