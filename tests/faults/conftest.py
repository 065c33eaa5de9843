# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the fault proofs: the lab after setup.yml (and the upgrade scenario), SIPp load.

Each proof injects one fault, asserts the state it leaves, and puts the lab back (``lab.reset_versions()``
and the proof's own cleanup) so that the next proof starts from a set-up lab in normal mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lab'))
import labtools  # noqa: E402  pylint: disable=wrong-import-position

from upgradelab import FIRST, LAST, LOAD, VERSIONS, Load, UpgradeLab  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


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
