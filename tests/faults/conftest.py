# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the fault proofs: a lab setup.yml converged (the scenario's converge), SIPp load.

Each proof injects one fault, asserts the state it leaves, and puts the lab back (``lab.reset_versions()``
and the proof's own cleanup) so that the next proof starts from a set-up lab in normal mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lab'))
import labtools  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

from upgradelab import FIRST, LAST, VERSIONS, Load, UpgradeLab, lab, load  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
