# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the blf_sync role: both rendered pjsip.d/06-active-active.conf parsed, and the cross references
checked: what one stack publishes as is what the other accepts; second run changes nothing; the real Asterisk
of each stack loaded the objects and a device state set on one stack reaches the other's hint (both ways).

On the real Asterisk 22 of both stacks, with a device name new to each test (Custom:blf-<random>, hint
blf<random> added at test time with `dialplan add extension`), so a state cached from an earlier test can never
make one pass: the state crosses both ways in normal and in maintenance mode and after Asterisk restarted on
either stack (what an upgrade does to it), each change as exactly one PUBLISH (PJSIP history of the receiver);
the wazo-maintenance-mode README's literal rule fails secondary -> primary (404) and rerunning the role repairs
it. Every test leaves the proxy in normal mode, no lock, and the role's file on both stacks.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_blf_sync.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import time
import uuid

import pytest
import yaml

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
            ['endpoint', 'identify', 'outbound-publish', 'outbound-publish', 'inbound-publication',
             'asterisk-publication'])
        (ep, epo), = by_type(objs, 'endpoint')
        (inb, inbo), = by_type(objs, 'inbound-publication')
        (_idn, ido), = by_type(objs, 'identify')
        # only the peer, by its address, is that endpoint, and only that endpoint may publish
        assert epo['identify_by'] == 'ip' and ido['endpoint'] == ep and ido['match'] == lab.hosts[PEER[g]]
        assert inbo['endpoint'] == ep
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


# ------------------------------------------------------------------------------------------------------------------
# Both ways on the real Asterisk: normal mode, maintenance mode, after a restart; the README's literal rule.

CROSS_BOUND = 10.0          # s for a state to show on the peer (seen: well under 1 s)
RESTART_CROSS_BOUND = 20.0  # after a restart: the first PUBLISH can get 412 and is sent again
NEGATIVE_WAIT = 8.0         # s during which a state that must NOT cross is watched
NAME = {'primary': 'instance1', 'secondary': 'instance2'}  # what each stack publishes as (role defaults)
OWNER = 'test_blf_sync'
LOCK_PY = ('PYTHONPATH=/usr/local/lib/wazo-maintenance python3 -c %s' % shlex.quote(
    'import sys; from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as m; '
    'm.take_lock(sys.argv[2], "BLF test: Asterisk restart") if sys.argv[1] == "take" '
    'else m.release_lock(sys.argv[2], force=True)'))


def new_device(lab):
    """A device no test used before: (hint exten, device), the hint added on both stacks."""
    tag = uuid.uuid4().hex[:10]
    exten, device = 'blf%s' % tag, 'Custom:blf-%s' % tag
    for g in PEER:
        out = labtools.asterisk_rx(lab, g, 'dialplan add extension %s,hint,%s into default' % (exten, device))
        assert 'added' in out, out
    return exten, device


def drop_device(lab, exten, device):
    for g in PEER:
        labtools.asterisk_rx(lab, g, 'devstate change %s NOT_INUSE' % device, check=False)
        labtools.asterisk_rx(lab, g, 'dialplan remove extension %s@default hint' % exten, check=False)


def state_publishes(lab, receiver, sender, device):
    """The asterisk-devicestate PUBLISHes `receiver` got from `sender` about `device`, and its answers."""
    got = labtools.pjsip_publishes(lab, receiver, lab.hosts[sender])
    mine = [r for r in got['requests'] if r['event'] == 'asterisk-devicestate' and r['body']
            and r['body'].get('device') == device]
    return mine, got


def assert_crosses(lab, src, dst, bound=CROSS_BOUND, once=True):
    """devstate change on `src` -> the hint on `dst` InUse, then Idle, each within `bound` seconds; with `once`,
    `dst`'s PJSIP history shows each change arriving as exactly one PUBLISH to sip:<src's name>@<dst>, answered
    2xx. Returns the seconds each state took to show."""
    exten, device = new_device(lab)
    try:
        state, _waited = labtools.wait_hint(lab, dst, exten, 'Idle', 2.0)
        assert state == 'Idle', '%s: the new hint %s is %s before any change' % (dst, exten, state)
        labtools.pjsip_history_start(lab, dst)
        labtools.asterisk_rx(lab, src, 'devstate change %s INUSE' % device)
        state, t_inuse = labtools.wait_hint(lab, dst, exten, 'InUse', bound)
        assert state == 'InUse', '%s -> %s: %s still %s after %.0f s' % (src, dst, device, state, bound)
        labtools.asterisk_rx(lab, src, 'devstate change %s NOT_INUSE' % device)
        state, t_idle = labtools.wait_hint(lab, dst, exten, 'Idle', bound)
        assert state == 'Idle', '%s -> %s: %s back to NOT_INUSE, still %s after %.0f s' % (src, dst, device, state,
                                                                                           bound)
        if once:
            mine, got = state_publishes(lab, dst, src, device)
            assert [r['body']['state'] for r in mine] == ['INUSE', 'NOT_INUSE'], (
                '%s -> %s: each change must arrive as exactly one PUBLISH: %s' % (src, dst, got))
            want = 'sip:%s@%s' % (NAME[src], lab.hosts[dst])
            assert {r['uri'] for r in got['requests']} == {want}, (
                '%s -> %s: a PUBLISH to another URI than %s (a stale publish client?): %s' % (src, dst, want, got))
            assert got['responses'] and all(200 <= c < 300 for c in got['responses']), got
        return t_inuse, t_idle
    finally:
        labtools.pjsip_history_stop(lab, dst)
        drop_device(lab, exten, device)


@pytest.fixture
def proxy_normal_at_end(lab):
    """Whatever the test did to the proxy: back to normal, no lock, at the end."""
    yield
    lab.ssh('proxy', 'wazo-mode normal --no-wait --no-asterisk --force')
    lab.ssh('proxy', '%s release %s' % (LOCK_PY, OWNER), check=False)
    status = lab.route_mode()
    assert status['mode'] == 'normal' and not status['lock'], status


def switch(lab, mode):
    lab.ssh('proxy', 'wazo-mode %s --no-wait --no-asterisk --force' % mode)
    assert lab.route_mode()['mode'] == mode


@pytest.mark.parametrize('mode', ['normal', 'maintenance'])
@pytest.mark.parametrize('src', ['primary', 'secondary'])
def test_state_crosses_in_each_mode(lab, converged, proxy_normal_at_end, mode, src):
    """Device state set on `src` shows InUse then Idle on the other stack's hint within 10 s, with the proxy in
    `mode`, each change as exactly one PUBLISH to the name the peer accepts.
    Fails if: the state does not reach the peer (PUBLISH refused, not sent, objects not loaded) or not within
    the bound, the hint was not Idle before, the NOT_INUSE does not follow, a change is PUBLISHed twice or to
    another URI (a duplicate or stale publish client left by a reload), or the switch of the proxy breaks it."""
    switch(lab, mode)
    assert_crosses(lab, src, PEER[src])


def wait_asterisk_up(lab, group, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        out = lab.ssh(group, "asterisk -rx 'core waitfullybooted'", check=False, timeout=30).stdout
        if 'fully booted' in out:
            return
        assert time.monotonic() < deadline, '%s: Asterisk not up after %.0f s: %s' % (group, timeout, out)
        time.sleep(1)


@pytest.mark.parametrize('restarted', ['primary', 'secondary'])
def test_state_crosses_after_asterisk_restart(lab, converged, proxy_normal_at_end, restarted):
    """`wazo-service restart` on one stack (the stand-in's restarts the real asterisk.service, as an upgrade
    does), as upgrade.yml does it: the primary in maintenance mode, the secondary in normal mode, the maintenance
    lock held (the HA check makes no decision meanwhile). Then the state crosses both ways (restarted -> peer,
    peer -> restarted) within 20 s: the first PUBLISH to the restarted stack can get 412 and is sent again.
    Fails if: Asterisk is not back within 90 s, or the state does not cross one of the ways within the bound
    (publication not restarted after the restart, 412 not recovered)."""
    if restarted == 'primary':
        switch(lab, 'maintenance')                            # takes the lock too
    else:
        lab.ssh('proxy', '%s take %s' % (LOCK_PY, OWNER))
    before = lab.ssh(restarted, 'systemctl show -p ExecMainPID --value asterisk.service').stdout.strip()
    out = lab.ssh(restarted, 'wazo-service restart', timeout=180)
    wait_asterisk_up(lab, restarted)
    after = lab.ssh(restarted, 'systemctl show -p ExecMainPID --value asterisk.service').stdout.strip()
    assert before != after, 'asterisk.service was not restarted (pid %s): %s' % (before, out.stdout[-2000:])
    # the first exchange may need the 412 retry: no exactly-once accounting here
    assert_crosses(lab, restarted, PEER[restarted], bound=RESTART_CROSS_BOUND, once=False)
    assert_crosses(lab, PEER[restarted], restarted, bound=RESTART_CROSS_BOUND, once=False)


def role_reload_commands():
    """The Asterisk commands the role runs when its file changed, read from the role (one home)."""
    role = os.path.join(labtools.ROOT, 'roles', 'blf_sync')
    with open(os.path.join(role, 'defaults', 'main.yml')) as handle:
        first = yaml.safe_load(handle)['wazo_mm_blf_reload_command']
    with open(os.path.join(role, 'vars', 'main.yml')) as handle:
        return [first] + yaml.safe_load(handle)['__wazo_mm_blf_publish_reloads']


@pytest.fixture
def role_file_restored(lab, converged):
    """At the end, pass or fail: the role rerun, so both stacks carry its file again (state['restored'] tells the
    test already did it and saw it work)."""
    state = {'restored': False}
    yield state
    if not state['restored']:
        rc, out = lab.play(ROLE_PLAY)
        assert rc == 0, out[-4000:]


def test_readme_literal_rule_fails_secondary_to_primary(lab, converged, role_file_restored):
    """On the secondary, the file the wazo-maintenance-mode README's literal rule gives: the primary's file (as
    the role renders it) with every instance2 replaced by instance1, pointing at the primary; applied with the
    role's own reload commands. Primary -> secondary still works; secondary -> primary does not: the primary
    answers the PUBLISH to sip:instance1@<primary> 404 (it accepts only instance2) and the state never shows
    there. Then the role, rerun, repairs it: both ways work again, each change one PUBLISH.
    Fails if: the literal file is not what the rule gives (instance1 objects, server_uri sip:instance1@<primary>,
    inbound-publication instance1), secondary -> primary crosses anyway (the rule would be fine, or a stale
    client of the role's file is still publishing), the primary does not answer 404, primary -> secondary breaks,
    the role does not rewrite the file, or either way fails after the role ran."""
    primary_file = lab.ssh('primary', 'cat %s' % CONF).stdout
    secondary_file = lab.ssh('secondary', 'cat %s' % CONF).stdout
    primary_address = re.search(r'^server_uri = sip:[^@]+@(\S+)$', secondary_file, re.M).group(1)
    secondary_address = re.search(r'^server_uri = sip:[^@]+@(\S+)$', primary_file, re.M).group(1)
    literal = primary_file.replace('instance2', 'instance1').replace(secondary_address, primary_address)
    objs = parse_pjsip(literal)
    assert {n for n, _o in objs} == {'instance1', 'instance1-devicestate', 'instance1-mwi'}, objs
    assert {o['server_uri'] for _n, o in by_type(objs, 'outbound-publish')} == {'sip:instance1@%s' % primary_address}
    (_n, inbound), = by_type(objs, 'inbound-publication')
    assert inbound['event_asterisk-devicestate'] == inbound['event_asterisk-mwi'] == 'instance1', inbound

    lab.ssh('secondary', 'printf %%s %s > %s' % (shlex.quote(literal), CONF))
    for command in role_reload_commands():
        out = labtools.asterisk_rx(lab, 'secondary', command)
        assert 'successfully' in out, out

    assert_crosses(lab, 'primary', 'secondary')   # objects instance1 on the secondary: still accepted
    exten, device = new_device(lab)
    try:
        labtools.pjsip_history_start(lab, 'primary')
        labtools.asterisk_rx(lab, 'secondary', 'devstate change %s INUSE' % device)
        seen = labtools.sample_hints(lab, ['primary'], exten, NEGATIVE_WAIT, interval=1.0)
        assert all(s['primary'] == 'Idle' for _t, s in seen), ('secondary -> primary crossed with the literal '
                                                               'rule: %s' % seen)
        got = labtools.pjsip_publishes(lab, 'primary', lab.hosts['secondary'])
        assert got['requests'], 'the secondary sent no PUBLISH at all (so the test proves nothing): %s' % got
        assert {r['uri'] for r in got['requests']} == {'sip:instance1@%s' % primary_address}, got
        assert got['responses'] and set(got['responses']) == {404}, got
    finally:
        labtools.pjsip_history_stop(lab, 'primary')
        drop_device(lab, exten, device)

    rc, out = lab.play(ROLE_PLAY)
    assert rc == 0, out[-4000:]
    assert labtools.recap(out)['secondary']['changed'] >= 1, out[-3000:]
    assert lab.ssh('secondary', 'cat %s' % CONF).stdout == secondary_file
    role_file_restored['restored'] = True
    assert_crosses(lab, 'secondary', 'primary')
    assert_crosses(lab, 'primary', 'secondary')
