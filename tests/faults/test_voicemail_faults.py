# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault proofs of the voicemail share: no message lost.

- messages written (as the asterisk user, the way app_voicemail does: tmp file then rename) all through the
  migration of a large spool all end on the share, checksummed, and a rerun has nothing left to do;
- a share without the space for the spool is refused before anything is copied or renamed;
- Asterisk does not start on a stack whose share cannot be mounted, and cannot write under the bare mount point;
- a file written under the mount point before the share was mounted is reported (not hidden), and the
  remedy the message gives puts it on the share;
- an NFS server that does not answer stops the voicemail play within its timeout, naming the server.

The migration proofs use a test spool (/var/spool/asterisk/vmfault) and a test share directory beside the lab's
share, so the lab's own voicemail is never unmounted for them. Every proof puts the lab back (fixture teardown).

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/faults/test_voicemail_faults.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex
import time

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

VM = '/var/spool/asterisk/voicemail'
VM_OLD = VM + '_old'
# the test spool and its share (a directory of the lab's shared /srv/lab-share, seen by the proxy too)
TVM = '/var/spool/asterisk/vmfault'
TVM_OLD = TVM + '_old'
TSTAGE = '/var/lib/wazo-maintenance/vmfault-staging'
TSHARE = '/srv/lab-share/vmfault'
# a small file system standing for a full share (mounted on the primary only)
SMALL = '/srv/vmfault-small'
WRITER = '/var/tmp/wazo-mm-vmwriter'

ROLE_PLAY = labtools.TOPOLOGY_PLAY + '''
- name: Voicemail on NFS
  hosts: nfs_server:primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.voicemail_nfs
'''

# The role on the primary alone (the NFS server part is not needed by these proofs: quicker)
PRIMARY_ONLY = ['--limit', 'primary']

# The role's migration and mount on the test spool of the primary (the role's own task files, other paths).
TEST_SPOOL_PLAY = labtools.TOPOLOGY_PLAY + '''
- name: Migrate a test spool of the primary
  hosts: primary
  gather_facts: false
  vars:
    wazo_mm_voicemail_dir: %(vm)s
    wazo_mm_voicemail_backup_dir: %(vm_old)s
    wazo_mm_voicemail_staging_dir: %(stage)s
    wazo_mm_voicemail_mount_src: %(share)s
    wazo_mm_voicemail_mount_fstype: none
    wazo_mm_voicemail_mount_opts: bind
  tasks:
    - name: Migrate
      ansible.builtin.include_role:
        name: wazo.maintenance_mode.voicemail_nfs
        tasks_from: migrate.yml
    - name: Mount
      ansible.builtin.include_role:
        name: wazo.maintenance_mode.voicemail_nfs
        tasks_from: mount.yml
'''


def spool_play(share):
    return TEST_SPOOL_PLAY % dict(vm=TVM, vm_old=TVM_OLD, stage=TSTAGE, share=share)


def flat(out):
    """The YAML callback folds long messages: one line, single spaces."""
    return ' '.join(out.split())


# Messages as app_voicemail lays them out, owned by asterisk: context/mailbox/INBOX/msgNNNN.{txt,wav}.
PLANT = r'''
set -e
mkdir -p {vm}
cd {vm}
python3 - <<'PY'
import os
for box, n, size in {spec}:
    d = os.path.join('default', box, 'INBOX')
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        base = os.path.join(d, 'msg%04d' % i)
        with open(base + '.txt', 'w') as fh:
            fh.write('[message]\norigmailbox=%s\nmsg=%d\n' % (box, i))
        with open(base + '.wav', 'wb') as fh:
            fh.write(os.urandom(size))
PY
chown -R asterisk:asterisk {vm}
find {vm} -type d -exec chmod 0750 {{}} +
find {vm} -type f -exec chmod 0640 {{}} +
'''

# sha256 of every file under a directory (relative paths), the migration marker left out
SUMS = ('cd %s && find . -name .wazo-mm-migrated -prune -o -type f -print0 | LC_ALL=C sort -z '
        '| xargs -0 -r sha256sum')


def sums(lab, group, path):
    p = lab.ssh(group, SUMS % shlex.quote(path), check=False)
    out = {}
    for line in p.stdout.splitlines():
        digest, rel = line.split(None, 1)
        out[rel[2:] if rel.startswith('./') else rel] = digest
    return out


# A voicemail writer as the asterisk user, the way app_voicemail stores a message: the recording in the
# mailbox's tmp/ directory, then renamed into INBOX. It logs every message it stored (and every refusal).
WRITER_PY = r'''
import hashlib, os, sys, time
root, log, stop = sys.argv[1], sys.argv[2], sys.argv[3]
boxes = ['1001', '1002', '1003']
i = 0
with open(log, 'a', buffering=1) as out:
    while not os.path.exists(stop) and i < 5000:
        box = boxes[i % len(boxes)]
        data = ('[message]\nwriter=%d\n' % i).encode() + os.urandom(3000)
        rel = 'default/%s/INBOX/w%05d.wav' % (box, i)
        try:
            tmpdir = os.path.join(root, 'default', box, 'tmp')
            os.makedirs(tmpdir, exist_ok=True)
            os.makedirs(os.path.join(root, 'default', box, 'INBOX'), exist_ok=True)
            tmp = os.path.join(tmpdir, 'w%05d' % i)
            with open(tmp, 'wb') as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, os.path.join(root, rel))
            out.write('ok %.3f %s %s\n' % (time.time(), rel, hashlib.sha256(data).hexdigest()))
        except OSError as e:
            out.write('refused %.3f %s %s\n' % (time.time(), rel, e.strerror))
        i += 1
        time.sleep(0.05)
'''


def start_writer(lab):
    lab.ssh('primary', 'rm -rf {w} && mkdir -p {w} && chmod 0777 {w} && cat > {w}/writer.py <<\'PY\'\n{py}\nPY\n'
                       'chmod 0644 {w}/writer.py && touch {w}/log && chown asterisk {w}/log && '
                       '(nohup setpriv --reuid=asterisk --regid=asterisk --clear-groups python3 {w}/writer.py {vm} '
                       '{w}/log {w}/stop >/dev/null 2>&1 & echo $! > {w}/pid)'.format(w=WRITER, py=WRITER_PY, vm=TVM))


STOP_WRITER = r"""
if [ -f {w}/pid ]; then
  touch {w}/stop
  pid=$(cat {w}/pid)
  for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill $pid 2>/dev/null
  rm -f {w}/pid
fi
true
"""


def stop_writer(lab):
    lab.ssh('primary', STOP_WRITER.format(w=WRITER), check=False)


def writer_log(lab):
    ok, refused = [], []
    for line in lab.ssh('primary', 'cat %s/log' % WRITER).stdout.splitlines():
        words = line.split()
        if words[0] == 'ok':
            ok.append((float(words[1]), words[2], words[3]))
        else:
            refused.append((float(words[1]), words[2], ' '.join(words[3:])))
    return ok, refused


CLEAN_TEST_SPOOL = STOP_WRITER + r'''
for m in {vm} {stage} {small}; do
  n=0
  while findmnt --mountpoint $m >/dev/null && [ $n -lt 5 ]; do umount $m; n=$((n + 1)); done
done
sed -i '\#[[:space:]]{vm}[[:space:]]#d' /etc/fstab
rm -rf {vm} {vm_old} {stage} {small} {w}
true
'''


@pytest.fixture
def test_spool(lab):
    """The primary's test spool and the test share, removed before and after the proof."""
    def clean():
        lab.ssh('primary', CLEAN_TEST_SPOOL.format(w=WRITER, vm=TVM, vm_old=TVM_OLD, stage=TSTAGE, small=SMALL),
                check=False)
        lab.ssh('proxy', 'rm -rf %s' % TSHARE, check=False)
    clean()
    # a fresh export directory: empty, root's (the migration gives it the spool's owner)
    lab.ssh('proxy', 'mkdir -p %s && chmod 0755 %s' % (TSHARE, TSHARE))
    yield
    clean()


# --- 1. messages written during the migration ------------------------------------------------------------
def test_messages_written_during_migration_all_reach_the_share(lab, test_spool):
    # a large spool: 900 messages and 6 long recordings (about 115 MB), so the copy lasts seconds
    spec = [('1001', 300, 20000), ('1002', 300, 20000), ('1003', 300, 20000), ('1004', 6, 16 * 1024 * 1024)]
    lab.ssh('primary', PLANT.format(vm=TVM, spec=repr(spec)))
    planted = sums(lab, 'primary', TVM)
    assert len(planted) == 2 * 906
    start_writer(lab)
    time.sleep(1)
    t0 = time.time()
    rc, out = lab.play(spool_play(TSHARE), PRIMARY_ONLY)
    t1 = time.time()
    assert rc == 0, out[-4000:]
    time.sleep(1.5)  # the writer goes on writing onto the mounted share
    stop_writer(lab)
    ok, refused = writer_log(lab)
    during = [m for m in ok if t0 <= m[0] <= t1]
    assert len(during) >= 20, 'the writer stored only %d messages during the migration' % len(during)
    assert [m for m in ok if m[0] > t1], 'the writer stored nothing after the migration'
    share = sums(lab, 'proxy', TSHARE)
    missing = [rel for _t, rel, digest in ok if share.get(rel) != digest]
    assert not missing, '%d of the %d stored messages are not on the share (or differ): %s' % (
        len(missing), len(ok), missing[:10])
    assert all(share.get(rel) == digest for rel, digest in planted.items()), 'a planted message is not on the share'
    # the spool is the share now; the local tree was kept
    assert lab.ssh('primary', 'findmnt -n -o TARGET %s' % TVM).stdout.strip() == TVM
    assert lab.ssh('primary', 'test -e %s/.wazo-mm-migrated' % TVM_OLD, check=False).returncode == 0
    # a rerun finds nothing left to copy
    rc, out = lab.play(spool_play(TSHARE), PRIMARY_ONLY)
    assert rc == 0, out[-4000:]
    assert labtools.recap(out)['primary']['changed'] == 0, out[-3000:]
    print('writer: %d stored (%d during the migration of %.1f s), %d refused while held'
          % (len(ok), len(during), t1 - t0, len(refused)))


# --- 3. a share without the space for the spool ------------------------------------------------------------
def test_full_share_is_refused_before_anything_is_copied(lab, test_spool):
    # the share: a 16 MiB file system on the primary; the spool: about 24 MiB
    lab.ssh('primary', 'mkdir -p {s} && mount -t tmpfs -o size=16m tmpfs {s} && chmod 0755 {s}'.format(s=SMALL))
    lab.ssh('primary', PLANT.format(vm=TVM, spec=repr([('1001', 12, 2 * 1024 * 1024)])))
    before = sums(lab, 'primary', TVM)
    rc, out = lab.play(spool_play(SMALL), PRIMARY_ONLY)
    text = flat(out)
    assert rc != 0, out[-3000:]
    assert re.search(r'not enough space', text) and 'MiB' in text and 'nothing was copied' in text, out[-3000:]
    # nothing copied, nothing renamed, nothing left mounted
    assert lab.ssh('primary', 'find %s -mindepth 1 | wc -l' % SMALL).stdout.strip() == '0'
    assert sums(lab, 'primary', TVM) == before
    assert lab.ssh('primary', 'test -e %s' % TVM_OLD, check=False).returncode != 0
    assert lab.ssh('primary', 'findmnt %s' % TSTAGE, check=False).returncode != 0
    assert lab.ssh('primary', 'findmnt %s' % TVM, check=False).returncode != 0


# --- 2. the share not mounted ------------------------------------------------------------------------------
def asterisk_start_without_share(lab, fstab_edit):
    """Stop Asterisk, unmount the share, edit its fstab line (sed script), start Asterisk: (rc, state)."""
    lab.ssh('secondary', 'systemctl stop asterisk && { ! findmnt %s >/dev/null || umount %s; } && sed -i %s /etc/fstab '
                         '&& systemctl daemon-reload' % (VM, VM, shlex.quote(fstab_edit)))
    p = lab.ssh('secondary', 'systemctl start asterisk', check=False)
    state = lab.ssh('secondary', 'systemctl is-active asterisk', check=False).stdout.strip()
    assert lab.ssh('secondary', 'findmnt %s' % VM, check=False).returncode != 0
    return p.returncode, state, p.stderr


def test_asterisk_does_not_start_without_the_share(lab):
    fstab = lab.ssh('secondary', 'cat /etc/fstab').stdout
    line = [ln for ln in fstab.splitlines() if re.match(r'^\S+\s+%s\s' % re.escape(VM), ln)]
    assert len(line) == 1, fstab
    vm_re = VM.replace('/', '\\/')
    try:
        # the share cannot be mounted (its source is unreachable, as an NFS server down at boot)
        rc, state, err = asterisk_start_without_share(
            lab, 's#^\\S\\+\\(\\s\\+%s\\s\\)#/etc/hostname/voicemails\\1#' % VM)
        assert rc != 0 and state != 'active', (rc, state, err)
        # nothing can be recorded under the bare mount point either
        p = lab.ssh('secondary', 'runuser -u asterisk -- mkdir %s/default-probe' % VM, check=False)
        assert p.returncode != 0, 'asterisk can write under the bare mount point'
        # the share's fstab line is gone: no mount unit, Asterisk does not start either
        lab.ssh('secondary', 'systemctl reset-failed asterisk', check=False)
        rc, state, err = asterisk_start_without_share(lab, '/\\s%s\\s/d' % vm_re)
        assert rc != 0 and state != 'active', (rc, state, err)
    finally:
        lab.ssh('secondary', 'rmdir %s/default-probe 2>/dev/null; grep -v "[[:space:]]%s[[:space:]]" /etc/fstab '
                             '> /etc/fstab.new; echo %s >> /etc/fstab.new && cat /etc/fstab.new > /etc/fstab && '
                             'rm /etc/fstab.new && systemctl daemon-reload; systemctl reset-failed asterisk'
                % (VM, VM, shlex.quote(line[0])), check=False)
        lab.ssh('secondary', 'systemctl start asterisk')
    # the share back: Asterisk starts, with its share mounted
    assert lab.ssh('secondary', 'findmnt -n -o TARGET %s' % VM).stdout.strip() == VM
    assert lab.ssh('secondary', 'systemctl is-active asterisk').stdout.strip() == 'active'
    assert labtools.asterisk_rx(lab, 'secondary', 'core show version').startswith('Asterisk')


UNDERNEATH = ('unshare -m sh -c \'mount --bind %s /mnt && %%s\'' % shlex.quote(VM.rsplit('/', 1)[0]))
HIDDEN_REL = 'default/1001/INBOX/msg0777.txt'


def test_messages_under_the_mount_are_reported_then_moved(lab):
    under = '/mnt/' + VM.rsplit('/', 1)[1]
    lab.ssh('primary', UNDERNEATH % ('mkdir -p %s/default/1001/INBOX && echo hidden-message > %s/%s'
                                     % (under, under, HIDDEN_REL)))
    try:
        rc, out = lab.play(ROLE_PLAY, PRIMARY_ONLY)
        text = flat(out)
        assert rc != 0, out[-3000:]
        assert labtools.recap(out)['primary']['failed'] == 1
        assert re.search(r'fatal: \[primary\].*hidden under the share mounted on %s' % re.escape(VM), text), \
            out[-3000:]
        assert HIDDEN_REL in text and 'umount %s' % VM in text, out[-3000:]
        # the remedy the message gives: unmount, rerun; the message ends on the share
        lab.ssh('primary', 'umount %s' % VM)
        rc, out = lab.play(ROLE_PLAY, PRIMARY_ONLY)
        assert rc == 0, out[-4000:]
        assert lab.ssh('proxy', 'cat %s/%s' % (share_dir(lab), HIDDEN_REL)).stdout.strip() == 'hidden-message'
        assert lab.ssh('primary', 'findmnt -n -o TARGET %s' % VM).stdout.strip() == VM
    finally:
        lab.ssh('primary', 'findmnt %s >/dev/null || mount %s' % (VM, VM), check=False)
        lab.ssh('primary', UNDERNEATH % ('rm -f %s/%s' % (under, HIDDEN_REL)), check=False)
        lab.ssh('primary', 'rm -f %s/%s' % (VM_OLD, HIDDEN_REL), check=False)
        lab.ssh('proxy', 'rm -f %s/%s' % (share_dir(lab), HIDDEN_REL), check=False)


def share_dir(lab):
    return lab.group_vars.get('wazo_mm_voicemail_mount_src', '/srv/lab-share/voicemails')


def test_dead_nfs_server_stops_the_play_in_bounded_time(lab):
    proxy = lab.address('proxy')
    rule = 'OUTPUT -p tcp -d %s --dport 2049 -j DROP' % proxy
    lab.ssh('primary', 'iptables -I %s' % rule)
    try:
        t0 = time.time()
        rc, out = lab.play(ROLE_PLAY, PRIMARY_ONLY + ['-e', 'wazo_mm_nfs_server_timeout=5'])
        elapsed = time.time() - t0
    finally:
        lab.ssh('primary', 'iptables -D %s' % rule, check=False)
    text = flat(out)
    assert rc != 0, out[-3000:]
    assert labtools.recap(out)['primary']['failed'] == 1
    assert re.search(r'fatal: \[primary\].*NFS server %s' % re.escape(proxy), text), out[-3000:]
    assert 'port 2049' in text and 'within 5 s' in text, out[-3000:]
    assert elapsed < 120, elapsed
