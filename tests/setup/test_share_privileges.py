# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The voicemail share cannot carry privileges onto a stack: mounted nosuid,nodev on both stacks.

A set-uid root program planted on the share is inert: it runs with the caller's uid. (Device nodes cannot be
made in the lab's containers: nodev is checked in the mount options only.)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

VM = '/var/spool/asterisk/voicemail'
PROBE = VM + '/.wazo-mm-probe-id'


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_the_share_is_mounted_nosuid_nodev(lab, stack):
    options = lab.ssh(stack, 'findmnt -no OPTIONS %s' % VM).stdout.strip().split(',')
    assert 'nosuid' in options and 'nodev' in options, options


def test_a_setuid_program_on_the_share_is_inert(lab):
    try:
        lab.ssh('primary', 'cp /usr/bin/id %s && chmod 4755 %s' % (PROBE, PROBE))
        for stack in ('primary', 'secondary'):
            # the asterisk user can reach the spool; as set-uid root the program would print 0
            euid = lab.ssh(stack, 'runuser -u asterisk -- %s -u' % PROBE).stdout.strip()
            assert euid == lab.ssh(stack, 'id -u asterisk').stdout.strip() and euid != '0', (stack, euid)
    finally:
        lab.ssh('primary', 'rm -f %s' % PROBE, check=False)
