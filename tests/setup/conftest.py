# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the setup roles' lab tests. The lab is the one LAB_INVENTORY names (absolute, or relative to
the checkout): these tests never fall back to .lab/inventory.yml. Without it the tests that need a lab skip
with the reason; the others (the standalone bad inventories of test_preflight.py) use none of these fixtures.

Also puts tests/lab on sys.path: the test modules `import labtools`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'lab'))
import labtools  # noqa: E402  pylint: disable=wrong-import-position


# molecule's idempotence and check steps run the whole setup.yml twice on the converged lab before its verify step
# (0 changed both times): a test module's own rerun of its plays proves the same; outside molecule it runs.
MOLECULE_RAN_SETUP_TWICE = pytest.mark.skipif(bool(os.environ.get('MOLECULE_SCENARIO_NAME')),
                                              reason="molecule's idempotence and check steps proved it")


@pytest.fixture(scope='session')
def lab_inventory():
    """The absolute path of the lab inventory in LAB_INVENTORY; skips when it is unset or missing."""
    value = os.environ.get('LAB_INVENTORY')
    if not value:
        pytest.skip('no lab: set LAB_INVENTORY=.lab-NAME/inventory.yml (make lab-up; the stand-in installed)')
    path = value if os.path.isabs(value) else os.path.join(labtools.ROOT, value)
    if not os.path.isfile(path):
        pytest.skip('no lab: LAB_INVENTORY=%s does not exist (make lab-up)' % value)
    return os.path.abspath(path)


@pytest.fixture(scope='module')
def lab(lab_inventory):
    """The lab, not probed: a lab that is named but down makes the tests fail, not skip."""
    return labtools.Lab(lab_inventory)


@pytest.fixture(scope='module')
def standin(lab):
    """Skips unless the three hosts answer over SSH and the stacks carry the Wazo stand-in (make standin)."""
    for group in ('proxy', 'primary', 'secondary'):
        if group not in lab.hosts:
            pytest.skip('no lab: group %s missing in %s' % (group, lab.path))
        try:
            if lab.ssh(group, 'true', check=False, timeout=20).returncode != 0:
                pytest.skip('no lab: %s (%s) unreachable' % (group, lab.hosts[group]))
        except subprocess.TimeoutExpired:
            pytest.skip('no lab: %s (%s) unreachable' % (group, lab.hosts[group]))
    if lab.ssh('primary', 'id asterisk', check=False).returncode != 0:
        pytest.skip('no Wazo stand-in on the lab stacks (make standin)')
    return lab


@pytest.fixture(scope='module')
def setup_converged(lab, tmp_path_factory):
    """setup.yml's preflight, ssh_trust and ha plays run once per module on the lab; they must succeed."""
    run = labtools.run_playbook(tmp_path_factory.mktemp('converge'), [lab.path],
                                labtools.setup_playbook('preflight', 'ssh_trust', 'ha'))
    assert run.rc == 0, run
    return run
