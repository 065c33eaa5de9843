# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the voicemail_nfs role: NFS export (NFS-Ganesha in the lab), and the no-loss migration of
both stacks' voicemail onto the share with real files — an injected failure, a process killed mid-copy,
resume, merge, a conflict, idempotence.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_voicemail_nfs.py

Every scenario starts by unmounting the share on the stacks and rebuilding their spool with planted
messages; the tests depend on each other and run in file order. The lab's own voicemail is not lost: before
the first test the module snapshots the share and both stacks' spools (and mount + fstab state) in
/var/tmp/wazo-mm-test-voicemail on each host; when the module ends, pass or fail, the snapshot is put back
(everything the tests planted, conflicting files included, is gone), then setup.yml (whose voicemail play
mounts the share again) must succeed with 0 changed (if it had something to change, its rerun must change
nothing): test_module_leaves_the_lab_converged, or the module teardown when that test did not run or failed.
A snapshot left by an interrupted run is reused, not replaced, so an aborted run never makes the lab's
messages disappear.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import time

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

VM = '/var/spool/asterisk/voicemail'
VM_OLD = VM + '_old'
STAGING = '/var/lib/wazo-maintenance/voicemail-staging'


# every test needs the lab's three hosts reachable and the stand-in on the stacks (else skipped: conftest.py)
pytestmark = pytest.mark.usefixtures('standin')

ROLE_PLAY = labtools.TOPOLOGY_PLAY + '''
- name: Voicemail on NFS
  hosts: nfs_server:primary:secondary
  environment: %(env)s
  roles:
    - role: wazo.maintenance_mode.voicemail_nfs
'''


def run_role(lab, env=None, args=()):
    return lab.play(ROLE_PLAY % dict(env=repr(dict(env or {}))), args)


def manifest(lab, group, path):
    """{relpath: 'sha256 uid gid mode'} of every file under path on the host."""
    p = lab.ssh(group, 'cd %s && find . -name .wazo-mm-migrated -prune -o -type f -printf "%%P\\t%%U %%G %%m\\n" '
                       '| sort' % shlex.quote(path), check=False)
    if p.returncode != 0:
        return {}
    attrs = dict(line.split('\t') for line in p.stdout.splitlines() if line)
    out = {}
    if attrs:
        sums = lab.ssh(group, 'cd %s && find . -name .wazo-mm-migrated -prune -o -type f -print0 | xargs -0 sha256sum'
                       % shlex.quote(path)).stdout
        for line in sums.splitlines():
            digest, rel = line.split(None, 1)
            rel = rel[2:] if rel.startswith('./') else rel
            out[rel] = '%s %s' % (digest, attrs[rel])
    return out


def share_path(lab):
    return lab.group_vars.get('wazo_mm_voicemail_mount_src', '/srv/lab-share/voicemails')


RESET = r'''
set -e
umount -q {vm} 2>/dev/null || true
umount -q {staging} 2>/dev/null || true
sed -i '\#[[:space:]]{vm}[[:space:]]#d' /etc/fstab
rm -rf {vm} {vm_old}
mkdir -p {vm}
chown asterisk:asterisk {vm} && chmod 0750 {vm}
'''

# Real messages: Asterisk's layout (context/mailbox/INBOX|Old/msgNNNN.{{txt,wav}}), owned by asterisk, 0640.
MAKE_MESSAGES = r'''
set -e
cd {vm}
python3 - <<'PY'
import os, random
rnd = random.Random({seed})
for ctx, box, folder, n, size in {spec}:
    d = os.path.join(ctx, box, folder)
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        base = os.path.join(d, 'msg%04d' % i)
        with open(base + '.txt', 'w') as fh:
            fh.write('[message]\norigmailbox=%s\nmsg=%d\ncontext=%s\nseed={seed}\n' % (box, i, ctx))
        with open(base + '.wav', 'wb') as fh:
            fh.write(bytes(rnd.getrandbits(8) for _ in range(size)) if size < 65536 else os.urandom(size))
PY
chown -R asterisk:asterisk {vm}
find {vm} -type d -exec chmod 0750 {{}} +
find {vm} -type f -exec chmod 0640 {{}} +
'''


def reset(lab, primary_spec, secondary_spec, secondary_copies_primary=()):
    """Unmount, rebuild both spools, empty the share (root-owned, like a fresh export)."""
    for g in ('primary', 'secondary'):
        lab.ssh(g, RESET.format(vm=VM, vm_old=VM_OLD, staging=STAGING))
    lab.ssh('proxy', 'mkdir -p {s} && find {s} -mindepth 1 -delete && chown root:root {s} && chmod 0755 {s}'
            .format(s=share_path(lab)))
    lab.ssh('primary', MAKE_MESSAGES.format(vm=VM, seed=1, spec=repr(primary_spec)))
    lab.ssh('secondary', MAKE_MESSAGES.format(vm=VM, seed=2, spec=repr(secondary_spec)))
    # What wazo-sync leaves on the secondary: byte-identical copies of some primary mailboxes.
    for rel in secondary_copies_primary:
        lab.ssh('primary', 'tar -C %s -cf /srv/lab-share/.copy.tar %s' % (VM, rel))
        lab.ssh('secondary', 'tar -C %s -xpf /srv/lab-share/.copy.tar && rm -f /srv/lab-share/.copy.tar' % VM)


STATE = {}


# --- the lab's own voicemail: snapshot before the module, put back and converged after it ----------------
SNAP = '/var/tmp/wazo-mm-test-voicemail'

# Every file, directory and link of a tree: path, type, owner, mode; then every file's sha256. The same text
# before and after means nothing was lost, added or altered. (Braces doubled: every script goes through format.)
DIGEST_SH = r"""
digest() {{
  (cd "$1" && find . -printf '%P\t%y %U %G %m %l\n' | LC_ALL=C sort &&
   find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}}
"""

# A snapshot is complete once its `complete` file exists; a complete one is left by a run that did not finish
# putting it back: it is the lab's state before that run, so it is kept (never overwritten by a test state).
SNAPSHOT_SHARE = DIGEST_SH + r"""
set -e
S={snap}
if [ -e $S/complete ]; then echo REUSED; exit 0; fi
rm -rf $S && mkdir -p $S && chmod 0700 $S
if [ -d {share} ]; then
  tar -C {share} --numeric-owner -cpf $S/share.tar .
  digest {share} > $S/share.digest
else
  touch $S/share-absent
fi
touch $S/complete
"""

SNAPSHOT_STACK = DIGEST_SH + r"""
set -e
S={snap}
if [ -e $S/complete ]; then echo REUSED; exit 0; fi
rm -rf $S && mkdir -p $S && chmod 0700 $S
if findmnt --mountpoint {vm} >/dev/null; then touch $S/mounted; fi
grep -E '^[^#]*[[:space:]]{vm}[[:space:]]' /etc/fstab > $S/fstab || true
if [ -d {vm_old} ]; then
  tar -C {parent} --numeric-owner -cpf $S/old.tar {old_name}
  digest {vm_old} > $S/old.digest
fi
if [ ! -e $S/mounted ] && [ -d {vm} ]; then
  tar -C {parent} --numeric-owner -cpf $S/vm.tar {vm_name}
  digest {vm} > $S/vm.digest
fi
touch $S/complete
"""

# 1) the stacks let go of the share (never rm -rf a directory that is still a mount point)
RESTORE_UNMOUNT = r"""
set -e
[ -e {snap}/complete ] || {{ echo 'no snapshot in {snap}'; exit 1; }}
for m in {vm} {staging}; do
  n=0
  while findmnt --mountpoint $m >/dev/null; do
    umount $m
    n=$((n + 1)); [ $n -lt 10 ] || {{ echo "$m still mounted"; exit 1; }}
  done
done
sed -i '\#[[:space:]]{vm}[[:space:]]#d' /etc/fstab
rm -rf {vm} {vm_old} /tmp/nfs-probe
"""

# 2) the share as it was (the tests' planted files and leftovers gone), checked against the snapshot
RESTORE_SHARE = DIGEST_SH + r"""
set -e
S={snap}
[ -e $S/complete ] || {{ echo 'no snapshot in {snap}'; exit 1; }}
rm -f {lab_share}/.copy.tar
if [ -e $S/share-absent ]; then rm -rf {share}; exit 0; fi
mkdir -p {share}
find {share} -mindepth 1 -delete
tar -C {share} --numeric-owner -xpf $S/share.tar
digest {share} | diff $S/share.digest - >&2
"""

# 3) the stacks' spools, fstab line and mount as they were, checked against the snapshot
RESTORE_STACK = DIGEST_SH + r"""
set -e
S={snap}
[ ! -f $S/old.tar ] || tar -C {parent} --numeric-owner -xpf $S/old.tar
if [ -f $S/vm.tar ]; then
  tar -C {parent} --numeric-owner -xpf $S/vm.tar
else
  mkdir -p {vm} && chown asterisk:asterisk {vm} && chmod 0750 {vm}
fi
cat $S/fstab >> /etc/fstab
if [ -e $S/mounted ]; then
  if [ -s $S/fstab ]; then mount {vm}; else mount -t {fstype} -o {opts} {src} {vm}; fi
fi
[ ! -f $S/old.digest ] || digest {vm_old} | diff $S/old.digest - >&2
[ ! -f $S/vm.digest ] || digest {vm} | diff $S/vm.digest - >&2
"""


def _fmt(lab, script):
    gv = lab.group_vars
    return script.format(
        snap=SNAP, share=shlex.quote(share_path(lab)),
        lab_share=shlex.quote(lab.vars.get('wazo_mm_lab_share', '/srv/lab-share')),
        vm=VM, vm_old=VM_OLD, staging=STAGING, parent=os.path.dirname(VM), vm_name=os.path.basename(VM),
        old_name=os.path.basename(VM_OLD),
        fstype=shlex.quote(gv.get('wazo_mm_voicemail_mount_fstype', 'none')),
        opts=shlex.quote(gv.get('wazo_mm_voicemail_mount_opts', 'bind')), src=shlex.quote(share_path(lab)))


def snapshot_voicemail(lab):
    """Keep the share and both stacks' voicemail before the tests plant theirs (reuse a snapshot left behind)."""
    reused = []
    for g, script in (('proxy', SNAPSHOT_SHARE), ('primary', SNAPSHOT_STACK), ('secondary', SNAPSHOT_STACK)):
        if 'REUSED' in lab.ssh(g, _fmt(lab, script)).stdout:
            reused.append(g)
    if reused:
        print('voicemail snapshot left by an unfinished run reused on %s (%s)' % (', '.join(reused), SNAP))


def stop_background_run():
    """The role run test_killed_mid_copy_then_resumed starts in the background, if a failure left it running."""
    proc = STATE.pop('background', None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=60)


def restore_and_converge(lab):
    """Put the lab's voicemail back as it was before the module, then prove setup.yml (its voicemail play
    mounts the share again) runs green and converged. Returns what it measured; raises AssertionError on any failure (the
    snapshot is then kept in SNAP on each host, and the next run of the module reuses it)."""
    stop_background_run()
    for g in ('primary', 'secondary'):
        lab.ssh(g, _fmt(lab, RESTORE_UNMOUNT))
    lab.ssh('proxy', _fmt(lab, RESTORE_SHARE))
    for g in ('primary', 'secondary'):
        lab.ssh(g, _fmt(lab, RESTORE_STACK))
    for g in ('primary', 'secondary'):
        assert lab.ssh(g, 'findmnt --mountpoint %s' % STAGING, check=False).returncode != 0, '%s: staging mounted' % g
    report = {}
    # setup.yml as an operator runs it: green; and converged (a run after it changes nothing)
    for attempt in (1, 2):
        proc = lab.playbook('playbooks/setup.yml', check=False)
        out = proc.stdout + proc.stderr
        recap = labtools.recap(proc.stdout)
        assert proc.returncode == 0, 'setup.yml after the module: rc %d\n%s' % (proc.returncode, out[-6000:])
        assert recap and all(v['failed'] == 0 and v['unreachable'] == 0 for v in recap.values()), recap
        changed = sum(v['changed'] for v in recap.values())
        report['setup_run%d_changed' % attempt] = changed
        if changed == 0:
            break
    else:
        raise AssertionError('setup.yml still changes something on its second run: %s\n%s' % (recap, out[-6000:]))
    for g in ('primary', 'secondary'):
        assert lab.ssh(g, 'findmnt --mountpoint %s' % VM, check=False).returncode == 0, '%s: share not mounted' % g
    for g in ('proxy', 'primary', 'secondary'):
        lab.ssh(g, 'rm -rf %s' % SNAP)
    STATE['restored'] = report
    return report


@pytest.fixture(scope='module', autouse=True)
def lab_voicemail_kept(standin):
    """Snapshot before the module; after it (pass or fail), unless test_module_leaves_the_lab_converged already
    did it, restore the snapshot and converge the lab (setup.yml green and converged)."""
    snapshot_voicemail(standin)
    STATE.pop('restored', None)
    yield
    if 'restored' not in STATE:
        report = restore_and_converge(standin)
        print('lab restored and converged after the module: %s' % report)


# --- NFS server ------------------------------------------------------------------------------------
def test_first_run_exports_and_migrates(lab):
    reset(lab,
          primary_spec=[('default', '1001', 'INBOX', 30, 4000), ('default', '1001', 'Old', 10, 3000),
                        ('default', '1002', 'INBOX', 20, 5000), ('other', '2001', 'INBOX', 40, 2000)],
          secondary_spec=[('default', '1003', 'INBOX', 15, 4000)],
          secondary_copies_primary=['default/1002'])
    STATE['primary'] = manifest(lab, 'primary', VM)
    STATE['secondary'] = manifest(lab, 'secondary', VM)
    assert len(STATE['primary']) == 200 and len(STATE['secondary']) == 70
    # 1) a real fault mid-copy on each stack: a directory on the share where the module writes the temporary
    #    file of one of its later messages (nobody, root included, can unlink it), so each stack copies part of
    #    its messages, then fails. The directories leading to it, and the share root, get what the module
    #    itself would give them (the local tree's owner and mode), so the rest of the module sees no difference.
    share_root = shlex.quote(share_path(lab))
    obstacles = {}
    for g, box, name in (('primary', 'other/2001/INBOX', 'msg0020.wav'),
                         ('secondary', 'default/1003/INBOX', 'msg0005.wav')):
        parts = box.split('/')
        dirs = ' '.join('/'.join(parts[:i + 1]) for i in range(len(parts)))
        obstacles[g] = lab.ssh(g, 'set -e; cd %s; chown asterisk:asterisk . && chmod 0750 .; '
                                  'install -d -o asterisk -g asterisk -m 0750 %s; '
                                  'd="$PWD/%s/.wazo-mm-tmp.$(uname -n).%s"; mkdir "$d"; echo "$d"'
                                  % (share_root, dirs, box, name)).stdout.strip()
    rc, out = run_role(lab)
    flat = ' '.join(out.split())  # the YAML result format folds long messages
    assert rc != 0 and 'voicemail migration stopped after' in flat and 'Is a directory' in flat, out[-3000:]
    recap = labtools.recap(out)
    assert recap['primary']['failed'] >= 1 and recap['secondary']['failed'] >= 1, recap
    for g in ('primary', 'secondary'):
        assert manifest(lab, g, VM) == STATE[g], '%s: local tree changed by a failed run' % g
        assert lab.ssh(g, 'test -e %s' % VM_OLD, check=False).returncode != 0
        assert lab.ssh(g, 'findmnt --mountpoint %s' % STAGING, check=False).returncode != 0, 'staging left mounted'
    share = manifest(lab, 'proxy', share_path(lab))
    union = dict(STATE['secondary'], **STATE['primary'])
    assert share and all(union[rel] == v for rel, v in share.items()), 'share holds a file no stack had'
    assert 'other/2001/INBOX/msg0019.wav' in share and 'other/2001/INBOX/msg0020.wav' not in share, sorted(share)
    assert 'default/1003/INBOX/msg0004.wav' in share and 'default/1003/INBOX/msg0005.wav' not in share, sorted(share)
    STATE['after_injected'] = len(share)
    # the fault goes away: the next run (test_killed_mid_copy_then_resumed) resumes
    for g, path in obstacles.items():
        lab.ssh(g, 'rmdir %s' % shlex.quote(path))


def test_killed_mid_copy_then_resumed(lab):
    # A big message makes the copy slow enough to kill the module while it writes its temporary file.
    lab.ssh('primary', 'mkdir -p %s/default/1009/INBOX && head -c 400M /dev/urandom > %s/default/1009/INBOX/msg0000.wav'
            ' && chown -R asterisk:asterisk %s/default/1009 && chmod 0640 %s/default/1009/INBOX/msg0000.wav'
            % (VM, VM, VM, VM))
    STATE['primary'] = manifest(lab, 'primary', VM)
    proc = lab.play(ROLE_PLAY % dict(env='{}'), background=True)
    STATE['background'] = proc  # killed by the module teardown if a failure leaves it running
    killed = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        # the module is the process holding the temporary file open (with pipelining it has no file name)
        p = lab.ssh('primary', 'for d in /proc/[0-9]*; do ls -l $d/fd 2>/dev/null | grep -q "wazo-mm-tmp.*msg0000.wav" '
                               '&& echo ${d#/proc/}; done', check=False)
        pids = p.stdout.split()
        if pids:
            lab.ssh('primary', 'kill -9 %s' % pids[0], check=False)
            killed = pids[0]
            break
        time.sleep(0.2)
    out = proc.communicate(timeout=600)[0]
    STATE.pop('background', None)
    assert killed, 'never caught the module mid-copy:\n' + out[-3000:]
    assert labtools.recap(out)['primary']['failed'] >= 1, out[-3000:]
    # killed: the local tree is intact, no file on the share differs from a source file
    assert manifest(lab, 'primary', VM) == STATE['primary']
    assert lab.ssh('primary', 'test -e %s' % VM_OLD, check=False).returncode != 0
    share_files = lab.ssh('proxy', 'cd %s && find . -type f -printf "%%P\\n"' % share_path(lab)).stdout.split()
    STATE['tmp_after_kill'] = [f for f in share_files if '.wazo-mm-tmp.' in f]
    assert STATE['tmp_after_kill'], 'expected the partial temporary file of the killed run'
    # The secondary was not killed: it finished its migration in that run.
    assert lab.ssh('secondary', 'findmnt --mountpoint %s' % VM, check=False).returncode == 0


def test_rerun_completes_without_loss(lab):
    rc, out = run_role(lab)
    assert rc == 0, out[-4000:]
    union = dict(STATE['secondary'], **STATE['primary'])
    share = manifest(lab, 'proxy', share_path(lab))
    assert share == union, 'share differs from the union of both stacks'
    for g in ('primary', 'secondary'):
        assert manifest(lab, g, VM_OLD) == STATE[g], '%s: voicemail_old is not the original tree' % g
        assert lab.ssh(g, 'findmnt --mountpoint %s' % VM).returncode == 0
        assert manifest(lab, g, VM) == union, '%s sees something else than the share' % g
        fstab = lab.ssh(g, 'cat /etc/fstab').stdout
        assert re.search(r'^\S+\s+%s\s+' % re.escape(VM), fstab, re.M), fstab
        assert lab.ssh(g, 'stat -c "%%U %%a" %s' % VM).stdout.split() == ['asterisk', '750']
        assert lab.ssh(g, 'findmnt --mountpoint %s' % STAGING, check=False).returncode != 0
    files = lab.ssh('proxy', 'cd %s && find . -type f -printf "%%P\\n"' % share_path(lab)).stdout.split()
    assert not [f for f in files if '.wazo-mm-tmp.' in f], 'temporary files left on the share'
    STATE['report'] = dict(primary=len(STATE['primary']), secondary=len(STATE['secondary']),
                           identical=len(set(STATE['primary']) & set(STATE['secondary'])), share=len(share))
    print('no-loss: %s' % STATE['report'])


def test_second_run_changes_nothing(lab):
    rc, out = run_role(lab)
    assert rc == 0, out[-3000:]
    r = labtools.recap(out)
    assert all(v['changed'] == 0 for v in r.values()), r
    rc, out = run_role(lab, args=['--check', '--diff'])
    assert rc == 0, out[-3000:]
    assert all(v['changed'] == 0 for v in labtools.recap(out).values()), labtools.recap(out)


def test_ganesha_serves_exactly_the_two_stacks(lab):
    if lab.group_vars.get('wazo_mm_nfs_server_implementation') != 'ganesha':
        pytest.skip('the lab does not use NFS-Ganesha')
    conf = lab.ssh('proxy', 'cat /etc/ganesha/ganesha.conf').stdout
    clients = re.search(r'Clients\s*=\s*([^;]+);', conf).group(1)
    assert sorted(c.strip() for c in clients.split(',')) == sorted([lab.hosts['primary'], lab.hosts['secondary']])
    assert 'No_Root_Squash' in conf and 'Access_Type = RW' in conf
    assert lab.ssh('proxy', 'systemctl is-active nfs-ganesha').stdout.strip() == 'active'
    url = 'nfs://%s%s' % (lab.hosts['proxy'], lab.group_vars['wazo_mm_nfs_export_path'])
    for g in ('primary', 'secondary', 'proxy'):
        lab.ssh(g, 'command -v nfs-ls >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
                   'libnfs-utils >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q '
                   'libnfs-utils >/dev/null)')
    for g in ('primary', 'secondary'):
        p = lab.ssh(g, 'nfs-ls %s' % url, check=False)
        assert p.returncode == 0 and 'default' in p.stdout, (g, p.stdout, p.stderr)
        # write through NFS as root (no_root_squash), read it back on the share, remove it
        lab.ssh(g, 'echo via-nfs-%s > /tmp/nfs-probe && nfs-cp /tmp/nfs-probe %s/.probe-%s' % (g, url, g))
        assert lab.ssh('proxy', 'cat %s/.probe-%s' % (share_path(lab), g)).stdout.strip() == 'via-nfs-%s' % g
        assert lab.ssh('proxy', 'stat -c %%u %s/.probe-%s' % (share_path(lab), g)).stdout.strip() == '0'
        lab.ssh('proxy', 'rm -f %s/.probe-%s' % (share_path(lab), g))
    # any other host (the proxy itself) is refused
    p = lab.ssh('proxy', 'nfs-ls %s' % url, check=False)
    assert p.returncode != 0 or 'default' not in p.stdout, p.stdout


def test_conflict_stops_and_overwrites_nothing(lab):
    reset(lab,
          primary_spec=[('default', '1001', 'INBOX', 5, 3000)],
          secondary_spec=[('default', '1001', 'INBOX', 3, 3000), ('default', '1004', 'INBOX', 2, 3000)])
    prim, sec = manifest(lab, 'primary', VM), manifest(lab, 'secondary', VM)
    # run the primary first: it migrates; then the secondary meets different msg0000..0002 of mailbox 1001
    rc, out = run_role(lab, args=['--limit', 'proxy,primary'])
    assert rc == 0, out[-3000:]
    rc, out = run_role(lab, args=['--limit', 'proxy,secondary'])
    assert rc != 0
    for n in range(3):
        for ext in ('txt', 'wav'):
            assert 'default/1001/INBOX/msg%04d.%s' % (n, ext) in out, out[-3000:]
    assert 'different content' in out
    share = manifest(lab, 'proxy', share_path(lab))
    assert share == prim, 'the share changed: something was overwritten or added'
    assert manifest(lab, 'secondary', VM) == sec
    assert lab.ssh('secondary', 'findmnt --mountpoint %s' % VM, check=False).returncode != 0


# --- last: the module leaves the lab as it found it, converged ----------------------------------------
def test_module_leaves_the_lab_converged(lab):
    """The planted messages (the conflict included) are removed, the lab's own voicemail is back byte for byte
    (share, voicemail_old, mounts, fstab), then setup.yml runs green
    with 0 changed (or, if it changed something, its rerun changes nothing). The module teardown does the same
    if this test did not run or failed."""
    report = restore_and_converge(lab)
    print('lab restored and converged: %s' % report)
    assert 'setup_run1_changed' in report


def asterisk_new_messages(lab, group):
    """{mailbox: new messages} of mailboxes 1001/1002 as the stack's real Asterisk counts them (app_voicemail)."""
    out = lab.ssh(group, "asterisk -rx 'voicemail show users for default'").stdout
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(r'^default\s+(100[12])\s.*?(\d+)\s*$', out, re.M))


def share_inbox_counts(lab):
    """{mailbox: msgNNNN.txt files in INBOX} of mailboxes 1001/1002, read on the share itself (the NFS server)."""
    out = {}
    for box in ('1001', '1002'):
        p = lab.ssh('proxy', 'ls %s/default/%s/INBOX 2>/dev/null | grep -c "^msg[0-9]\\{4\\}\\.txt$"'
                    % (share_path(lab), box), check=False)
        out[box] = int(p.stdout.strip() or 0)
    return out


def test_asterisk_reads_the_share(lab):
    """Asterisk was already running when the role mounted the share on its spool: both stacks' Asterisk count the
    share's messages (the mount reached Asterisk's own mount namespace), and a message written through one stack
    is counted at once by the other stack's Asterisk."""
    want = share_inbox_counts(lab)
    assert sum(want.values()) > 0, 'no message on the share for 1001/1002: nothing to prove'
    for g in ('primary', 'secondary'):
        assert lab.ssh(g, 'findmnt -n -o TARGET %s' % VM).stdout.strip() == VM, '%s: share not mounted' % g
        # unmounted and mounted again (fstab) while Asterisk runs: it sees both changes
        lab.ssh(g, 'umount %s' % VM)
        try:
            assert asterisk_new_messages(lab, g) == {'1001': 0, '1002': 0}, g
        finally:
            lab.ssh(g, 'mount %s' % VM)
        assert asterisk_new_messages(lab, g) == want, g
    inbox = '%s/default/1002/INBOX' % VM
    lab.ssh('secondary', "install -d -o asterisk -g asterisk -m 0750 %s && printf '[message]\\norigmailbox=1002\\n' "
                         "> %s/msg0999.txt && chown asterisk:asterisk %s/msg0999.txt" % (inbox, inbox, inbox))
    try:
        assert asterisk_new_messages(lab, 'primary')['1002'] == want['1002'] + 1
    finally:
        lab.ssh('secondary', 'rm -f %s/msg0999.txt' % inbox)
    assert asterisk_new_messages(lab, 'primary') == want
