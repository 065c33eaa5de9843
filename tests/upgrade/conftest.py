# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the upgrade proofs on the lab."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lab'))
import labtools  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

import celproof  # noqa: E402  pylint: disable=wrong-import-position
from upgradelab import FIRST, LAST, VERSIONS, Load, UpgradeLab, lab, load  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


@pytest.fixture
def postgresql_down_during_upgrade(lab):  # pylint: disable=redefined-outer-name
    """Each stack's PostgreSQL stopped while wazo-upgrade has Wazo stopped (as the real upgrade's PostgreSQL
    package does), for the CEL proofs; yields {stack: [stop|start]} of the outages so far."""
    with celproof.postgresql_down_during_upgrade(lab) as outages:
        yield outages
