# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the blf_sync role: both rendered pjsip.d/06-active-active.conf parsed, and the cross references
checked: what one stack publishes as is what the other accepts; second run changes nothing; the real Asterisk
of each stack loaded the objects and a device state set on one stack reaches the other's hint (both ways).

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_blf_sync.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

# every test needs the lab's three hosts reachable and the stand-in on the stacks (else skipped: conftest.py)
pytestmark = pytest.mark.usefixtures('standin')

ROLE_PLAY = labtools.TOPOLOGY_PLAY + """
- name: BLF and MWI synchronization
  hosts: primary:secondary
  roles:
    - role: wazo.maintenance_mode.blf_sync
"""
CONF = '/etc/asterisk/pjsip.d/06-active-active.conf'
PEER = {'primary': 'secondary', 'secondary': 'primary'}


@pytest.fixture(scope='module')
def converged(lab):
    rc1, out1 = lab.play(ROLE_PLAY)
    assert rc1 == 0, out1[-4000:]
    rc2, out2 = lab.play(ROLE_PLAY)
    assert rc2 == 0, out2[-4000:]
    return out1, out2


def parse_pjsip(text):
    """[(name, {option: value})] in file order; Asterisk allows one name for objects of different types."""
    objs, cur = [], None
    for raw in text.splitlines():
        line = raw.split(';', 1)[0].strip()
        if not line:
            continue
        m = re.match(r'^\[([^\]]+)\]$', line)
        if m:
            cur = (m.group(1), {})
            objs.append(cur)
            continue
        k, v = [x.strip() for x in line.split('=', 1)]
        cur[1][k] = v
    return objs


def by_type(objs, t):
    return [(n, o) for n, o in objs if o.get('type') == t]


def test_second_run_changes_nothing(lab, converged):
    r = labtools.recap(converged[1])
    # the proxy may be in the recap too (preflight's topology play), with nothing changed
    assert {'primary', 'secondary'} <= set(r) and all(v['changed'] == 0 for v in r.values()), r


def test_cross_references(lab, converged):
    conf = {g: parse_pjsip(lab.ssh(g, 'cat %s' % CONF).stdout) for g in PEER}
    names = {}
    for g, objs in conf.items():
        assert sorted(o['type'] for _n, o in objs) == sorted(
            ['endpoint', 'outbound-publish', 'outbound-publish', 'inbound-publication', 'asterisk-publication'])
        (ep, _options), = by_type(objs, 'endpoint')
        (inb, inbo), = by_type(objs, 'inbound-publication')
        (ap, apo), = by_type(objs, 'asterisk-publication')
        outs = dict((o['event'], (n, o)) for n, o in by_type(objs, 'outbound-publish'))
        assert set(outs) == {'asterisk-devicestate', 'asterisk-mwi'}
        # one peer name for all objects; the asterisk-publication references this side's outbound-publish
        assert ep == inb == ap
        assert apo['devicestate_publish'] == outs['asterisk-devicestate'][0]
        assert apo['mailboxstate_publish'] == outs['asterisk-mwi'][0]
        assert apo['device_state'] == 'yes' and apo['mailbox_state'] == 'yes'
        # accepted publications are mapped to the peer's name
        assert inbo['event_asterisk-devicestate'] == ep and inbo['event_asterisk-mwi'] == ep
        users = set()
        for _ev, (n, o) in outs.items():
            m = re.match(r'^sip:([^@]+)@(.+)$', o['server_uri'])
            assert m and m.group(2) == lab.hosts[PEER[g]], o['server_uri']
            users.add(m.group(1))
        assert len(users) == 1
        names[g] = dict(objects=ep, publishes_as=users.pop(), accepts=inbo['event_asterisk-devicestate'])
    for g, peer in PEER.items():
        # what g publishes as is what its peer accepts, and the peer's objects are named after g
        assert names[g]['publishes_as'] == names[peer]['accepts'] == names[peer]['objects'], names
        assert names[g]['publishes_as'] != names[peer]['publishes_as']
    # Asterisk's documented example: primary = instance1 (objects instance2), secondary = instance2
    assert names['primary'] == dict(objects='instance2', publishes_as='instance1', accepts='instance2')
    assert names['secondary'] == dict(objects='instance1', publishes_as='instance2', accepts='instance1')


def hint_state(lab, group, exten):
    """The state `core show hints` gives the hint exten@default on a stack (e.g. 'Idle', 'InUse')."""
    out = lab.ssh(group, "asterisk -rx 'core show hints'").stdout
    m = re.search(r'^\s*%s@default\s*: \S+\s+State:(\S+)' % re.escape(exten), out, re.M)
    return m.group(1) if m else out


def wait_state(lab, group, exten, want, timeout=20.0):
    deadline = time.monotonic() + timeout
    state = hint_state(lab, group, exten)
    while state != want and time.monotonic() < deadline:
        time.sleep(0.5)
        state = hint_state(lab, group, exten)
    return state


def test_asterisk_loaded_the_peer_objects(lab, converged):
    """The reload made Asterisk read the file: the peer's endpoint is live in `pjsip show endpoints`."""
    for g in PEER:
        name = 'instance2' if g == 'primary' else 'instance1'
        out = lab.ssh(g, "asterisk -rx 'pjsip show endpoints'").stdout
        assert re.search(r'^ Endpoint:  %s\s' % name, out, re.M), out
        mods = lab.ssh(g, "asterisk -rx 'module show like publish'").stdout
        for module in ('res_pjsip_publish_asterisk.so', 'res_pjsip_outbound_publish.so'):
            assert re.search(r'^%s\s.*\sRunning\s' % re.escape(module), mods, re.M), mods


@pytest.mark.parametrize('side', ['primary', 'secondary'])
def test_device_state_crosses_to_the_peer(lab, converged, side):
    """A BLF state set on one stack shows on the other's hint (real PUBLISH between the two Asterisks)."""
    peer = PEER[side]
    exten = '1001' if side == 'primary' else '1002'
    try:
        lab.ssh(side, "asterisk -rx 'devstate change Custom:%s INUSE'" % exten)
        assert wait_state(lab, side, exten, 'InUse') == 'InUse'
        assert wait_state(lab, peer, exten, 'InUse') == 'InUse', 'the %s did not get the state' % peer
    finally:
        lab.ssh(side, "asterisk -rx 'devstate change Custom:%s NOT_INUSE'" % exten)
    assert wait_state(lab, peer, exten, 'Idle') == 'Idle'
