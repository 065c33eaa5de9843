# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of MWI between the two stacks (blf_sync's asterisk-mwi publication + voicemail_nfs's share), on
the real Asterisk 22: a voicemail left by a real call (SIPp through the proxy, with audio) on the stack the
proxy's mode sends it to lands on the share, seen in mailbox 1001's INBOX on both stacks, and lights the
mailbox's MWI hint (mwi1001 = MWI:1001@default) on the other stack through a PUBLISH from the recording stack;
it stays lit (no flapping while both stacks poll the shared spool); deleting the message through the other stack
puts both hints back to Idle.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_mwi.py

Needs setup.yml converged (proxy, voicemail share, blf_sync). The lab's own messages of mailbox 1001 are put
aside for the module (in /var/tmp/wazo-mm-test-mwi on the primary, reused if an interrupted run left it, so
they are never lost) and put back at the end; messages a test leaves are removed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

pytestmark = pytest.mark.usefixtures('standin')

PEER = {'primary': 'secondary', 'secondary': 'primary'}
MODE_STACK = {'normal': 'primary', 'maintenance': 'secondary'}
INBOX = '/var/spool/asterisk/voicemail/default/1001/INBOX'
STASH = '/var/tmp/wazo-mm-test-mwi'
HINT = 'mwi1001'                     # exten => mwi1001,hint,MWI:1001@default (the lab's extensions.conf)
VM_EXTEN = 'vm1001'                  # added at test time in from-extern: VoiceMail(1001@default,s)
LIGHT_BOUND = 10.0                   # s: well under voicemail.conf's pollfreq (30 s), so not a poll's doing
STABLE_WINDOW = 40.0                 # s sampled after the hint lit: more than one poll of each stack
CALL_MS = 4000                       # the caller speaks 4 s, then hangs up (the message is kept)


def messages(lab, group):
    """The message files of mailbox 1001's INBOX as `group` sees them (sorted names)."""
    out = lab.ssh(group, 'ls -1 %s 2>/dev/null | grep "^msg" || true' % INBOX).stdout
    return sorted(out.split())


@pytest.fixture(scope='module')
def clean_mailbox(lab):
    """Mailbox 1001 empty on the share, both stacks told (voicemail reload publishes its state: Idle), the
    voicemail extension in the dialplan of both stacks; at the end the lab's messages back, as they were."""
    out = lab.ssh('primary', 'mountpoint -q /var/spool/asterisk/voicemail && echo shared || echo local').stdout
    if 'shared' not in out:
        pytest.skip('the voicemail share is not mounted on the primary: run setup.yml first')
    # a stash left by an interrupted run holds the lab's messages: keep it, what is in the INBOX is the test's
    lab.ssh('primary', 'set -e; mkdir -p {inbox}; if [ -d {stash} ]; then rm -f {inbox}/msg*; else '
                       'mkdir -p {stash}.tmp && find {inbox} -maxdepth 1 -name "msg*" -exec mv -t {stash}.tmp {{}} + '
                       '&& mv {stash}.tmp {stash}; fi'.format(inbox=INBOX, stash=STASH))
    for g in PEER:
        labtools.asterisk_rx(lab, g, 'voicemail reload')
        for prio, app in ((1, 'VoiceMail(1001@default,s)'), (2, 'Hangup()')):
            labtools.asterisk_rx(lab, g, 'dialplan add extension %s,%d,%s into from-extern replace'
                                 % (VM_EXTEN, prio, app))
    for g in PEER:
        state, _waited = labtools.wait_hint(lab, g, HINT, 'Idle', LIGHT_BOUND)
        assert state == 'Idle', '%s: %s is %s with an empty mailbox' % (g, HINT, state)
    yield
    lab.ssh('primary', 'set -e; rm -f {inbox}/msg*; if [ -d {stash} ]; then find {stash} -maxdepth 1 -name "msg*" '
                       '-exec mv -t {inbox} {{}} + ; rmdir {stash}; fi'.format(inbox=INBOX, stash=STASH))
    for g in PEER:
        labtools.asterisk_rx(lab, g, 'dialplan remove extension %s@from-extern' % VM_EXTEN, check=False)
        labtools.asterisk_rx(lab, g, 'voicemail reload', check=False)
        labtools.pjsip_history_stop(lab, g)


@pytest.fixture
def mode(lab, request):
    """The proxy in the requested mode for the test, normal again at the end."""
    lab.ssh('proxy', 'wazo-mode %s --no-wait --no-asterisk --force' % request.param)
    assert lab.route_mode()['mode'] == request.param
    yield request.param
    lab.ssh('proxy', 'wazo-mode normal --no-wait --no-asterisk --force')


@pytest.mark.parametrize('mode', ['normal', 'maintenance'], indirect=True)
def test_voicemail_lights_mwi_on_the_other_stack(lab, clean_mailbox, mode, tmp_path):
    """A real call to vm1001 through the proxy leaves a message in 1001@default on the stack of the mode
    (normal: primary, maintenance: secondary). Then:
    - the message is in mailbox 1001's INBOX on both stacks (the share), recorded from the call (caller sipp);
    - the other stack received a PUBLISH asterisk-mwi for 1001@default with new messages from the recording stack,
      and its mwi1001 hint is InUse within 10 s (a third of the 30 s mailbox poll);
    - sampled every second for 40 s (each stack polls the shared spool at least once meanwhile), neither stack's
      hint leaves InUse (the reference saw flapping with two different spools);
    - the message deleted through the OTHER stack (`voicemail remove`): gone on both stacks, and both hints Idle
      within 10 s (the clearing crosses back to the recording stack).
    Fails if: the call fails or lands on the wrong stack, no message is recorded, it is not on the share, the
    MWI does not reach the other stack (no PUBLISH, refused, or too late), a hint flaps or drops, or the deletion
    does not clear both stacks."""
    recorder = MODE_STACK[mode]
    other = PEER[recorder]
    assert messages(lab, recorder) == [] and messages(lab, other) == []
    processed = {g: lab.channels(g).get('processed', 0) for g in PEER}
    labtools.pjsip_history_start(lab, other)

    local_ip = labtools.host_ip_towards(lab.hosts['proxy'])
    ok, failed, output = labtools.sipp_call_with_audio(lab.hosts['proxy'], local_ip, tmp_path, VM_EXTEN,
                                                       duration_ms=CALL_MS)
    assert (ok, failed) == (1, 0), output[-3000:]
    after = {g: lab.channels(g).get('processed', 0) for g in PEER}
    assert after[recorder] == processed[recorder] + 1 and after[other] == processed[other], (processed, after)

    # the message, on the share: the same files seen from both stacks
    files = messages(lab, recorder)
    assert files == ['msg0000.txt', 'msg0000.wav'], files
    assert messages(lab, other) == files
    info = lab.ssh(other, 'cat %s/msg0000.txt' % INBOX).stdout
    assert re.search(r'^callerid="sipp"', info, re.M) and re.search(r'^origmailbox=1001$', info, re.M), info
    duration = int(re.search(r'^duration=(\d+)$', info, re.M).group(1))
    assert duration >= 2, 'a %d s message for a %d ms call' % (duration, CALL_MS)
    msg_id = re.search(r'^msg_id=(\S+)$', info, re.M).group(1)

    # the other stack's MWI: lit by the recording stack's PUBLISH
    state, waited = labtools.wait_hint(lab, other, HINT, 'InUse', LIGHT_BOUND)
    assert state == 'InUse', '%s: %s still %s %.0f s after the message' % (other, HINT, state, waited)
    got = labtools.pjsip_publishes(lab, other, lab.hosts[recorder])
    labtools.pjsip_history_stop(lab, other)
    mwi = [r['body'] for r in got['requests'] if r['event'] == 'asterisk-mwi' and r['body']
           and r['body'].get('uniqueid') == '1001@default']
    assert any(b.get('new', 0) >= 1 for b in mwi), 'no asterisk-mwi PUBLISH with the new message: %s' % got
    assert got['responses'] and all(200 <= c < 300 for c in got['responses']), got
    assert labtools.hint_states(lab, recorder).get(HINT) == 'InUse'

    # no flapping while both stacks poll the same spool
    samples = labtools.sample_hints(lab, [recorder, other], HINT, STABLE_WINDOW, interval=1.0)
    bad = [(t, s) for t, s in samples if set(s.values()) != {'InUse'}]
    assert not bad, 'the MWI hint left InUse: %s (of %d samples)' % (bad, len(samples))

    # deleted through the other stack: cleared on both
    out = labtools.asterisk_rx(lab, other, 'voicemail remove 1001 default INBOX %s' % msg_id)
    assert 'Removed message' in out, out
    assert messages(lab, recorder) == [] and messages(lab, other) == []
    for g in (other, recorder):
        state, waited = labtools.wait_hint(lab, g, HINT, 'Idle', LIGHT_BOUND)
        assert state == 'Idle', '%s: %s still %s %.0f s after the deletion' % (g, HINT, state, waited)
