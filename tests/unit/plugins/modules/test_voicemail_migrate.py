# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of voicemail_migrate on real files in a temporary directory (no lab, no network)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import errno
import functools
import hashlib
import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.wazo.maintenance_mode.plugins.modules import voicemail_migrate


class Exit(Exception):
    def __init__(self, kind, result):
        super(Exit, self).__init__(kind)
        self.kind = kind
        self.result = result


def run(monkeypatch, check=False, diff=False, **params):
    def exit_json(self, **kw):
        raise Exit('exit', kw)

    def fail_json(self, **kw):
        raise Exit('fail', kw)

    monkeypatch.setattr(voicemail_migrate.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(voicemail_migrate.AnsibleModule, 'fail_json', fail_json)
    args = dict(params, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(Exit) as e:
            voicemail_migrate.main()
    return e.value.kind, e.value.result


def tree_digest(root, skip=('.wazo-mm-migrated',)):
    out = {}
    for cur, _dirs, files in os.walk(root):
        for f in files:
            if f in skip:
                continue
            p = os.path.join(cur, f)
            with open(p, 'rb') as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def make_messages(root, mailboxes=3, per_box=4, ctx='default', salt=''):
    for m in range(mailboxes):
        box = os.path.join(root, ctx, str(1000 + m), 'INBOX')
        os.makedirs(box, exist_ok=True)
        os.makedirs(os.path.join(root, ctx, str(1000 + m), 'Old'), exist_ok=True)
        for n in range(per_box):
            base = os.path.join(box, 'msg%04d' % n)
            with open(base + '.txt', 'w') as fh:
                fh.write('[message]\norigmailbox=%d\nmsg=%d\n%s' % (1000 + m, n, salt))
            with open(base + '.wav', 'wb') as fh:
                fh.write(os.urandom(2048 + n))
            os.chmod(base + '.wav', 0o640)


@pytest.fixture
def paths(tmp_path):
    src = tmp_path / 'spool' / 'voicemail'
    backup = tmp_path / 'spool' / 'voicemail_old'
    dest = tmp_path / 'share'
    src.mkdir(parents=True)
    dest.mkdir()
    os.chmod(str(src), 0o750)
    return dict(src=str(src), dest=str(dest), backup=str(backup))


def test_copies_verifies_then_renames(monkeypatch, paths):
    make_messages(paths['src'])
    before = tree_digest(paths['src'])
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert res['changed'] and res['finalized']
    assert res['copied'] == len(before) == res['verified'] == res['total'] == 24
    assert tree_digest(paths['dest']) == before
    assert tree_digest(paths['backup']) == before  # the old tree is kept
    assert os.listdir(paths['src']) == []  # the mount point, empty
    # the bare mount point: root's, not writable by Asterisk
    assert oct(os.stat(paths['src']).st_mode & 0o777) == oct(0o755) and os.stat(paths['src']).st_uid == 0
    assert oct(os.stat(paths['dest']).st_mode & 0o777) == oct(0o750)  # empty share root took the attrs
    wav = os.path.join('default', '1000', 'INBOX', 'msg0000.wav')
    assert os.stat(os.path.join(paths['dest'], wav)).st_mode & 0o777 == 0o640
    assert os.stat(os.path.join(paths['dest'], wav)).st_mtime_ns == os.stat(
        os.path.join(paths['backup'], wav)).st_mtime_ns
    marker = json.load(open(os.path.join(paths['backup'], '.wazo-mm-migrated')))
    assert marker['files'] == 24


def test_second_run_is_noop_and_does_not_resurrect(monkeypatch, paths):
    make_messages(paths['src'])
    assert run(monkeypatch, **paths)[0] == 'exit'
    # The user deletes a message on the share afterwards: a rerun must not bring it back.
    gone = os.path.join(paths['dest'], 'default', '1000', 'INBOX', 'msg0000.txt')
    os.unlink(gone)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit' and not res['changed'], res
    assert res['copied'] == 0
    assert not os.path.exists(gone)


def test_check_mode_writes_nothing(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=1, per_box=2)
    kind, res = run(monkeypatch, check=True, diff=True, **paths)
    assert kind == 'exit' and res['changed']
    assert res['copied'] == 4 and res['verified'] == 0
    assert 'default/1000/INBOX/msg0000.wav' in res['diff']['after']
    assert os.listdir(paths['dest']) == []
    assert not os.path.exists(paths['backup'])


def test_conflict_stops_before_writing(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=2, per_box=2)
    make_messages(paths['dest'], mailboxes=1, per_box=2, salt='other stack')  # same names, other content
    share_before = tree_digest(paths['dest'])
    kind, res = run(monkeypatch, **paths)
    assert kind == 'fail'
    assert 'default/1000/INBOX/msg0000.txt' in res['msg'] and 'different content' in res['msg']
    assert {c['path'] for c in res['conflicts']} == {'default/1000/INBOX/msg%04d.%s' % (n, ext)
                                                     for n in (0, 1) for ext in ('txt', 'wav')}
    assert tree_digest(paths['dest']) == share_before  # nothing copied, nothing overwritten
    assert not os.path.exists(paths['backup'])


def test_merge_identical_and_new(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=2, per_box=2)
    # the other stack already migrated: identical copies of mailbox 1000 plus its own mailbox 2000
    for rel in tree_digest(paths['src']):
        if rel.startswith('default/1000/'):
            target = os.path.join(paths['dest'], rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(os.path.join(paths['src'], rel), 'rb') as a, open(target, 'wb') as b:
                b.write(a.read())
    make_messages(paths['dest'], mailboxes=1, per_box=1, ctx='other')
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert res['present'] == 4 and res['copied'] == 4 and res['verified'] == 8
    assert len(tree_digest(paths['dest'])) == 10


def fail_copy_after(monkeypatch, count):
    """The share fails (ENOSPC) when the module writes its file number count + 1; returns a switch to heal it."""
    state = dict(calls=0, failing=True)
    copy_one = voicemail_migrate.Migration.copy_one

    def failing_copy_one(self, rel, root, st, dig):
        if state['failing'] and state['calls'] >= count:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(self.dest, rel))
        state['calls'] += 1
        return copy_one(self, rel, root, st, dig)

    monkeypatch.setattr(voicemail_migrate.Migration, 'copy_one', failing_copy_one)
    return state


def test_interrupted_run_resumes_without_loss(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=4, per_box=5)
    before = tree_digest(paths['src'])
    fault = fail_copy_after(monkeypatch, 7)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'fail' and res['copied'] == 7, res
    assert 'stopped after 7 file(s)' in res['msg'] and 'No space left on device' in res['msg'], res['msg']
    assert 'NOT renamed' in res['msg'] and not res['finalized']
    fault['failing'] = False
    assert tree_digest(paths['src']) == before  # the local tree is untouched
    assert not os.path.exists(paths['backup'])
    # a killed run leaves a partial temporary file: the next run removes it
    stray = os.path.join(paths['dest'], 'default', '1003', 'INBOX')
    os.makedirs(stray, exist_ok=True)
    with open(os.path.join(stray, '.wazo-mm-tmp.%s.msg0004.wav' % voicemail_migrate.socket.gethostname()),
              'wb') as fh:
        fh.write(b'partial')
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert res['present'] == 7 and res['copied'] == len(before) - 7 and res['verified'] == len(before)
    assert tree_digest(paths['dest'], skip=()) == before
    assert tree_digest(paths['backup']) == before


def test_name_in_the_way_on_the_share_stops_then_resumes(monkeypatch, paths):
    """The lab's real fault (tests/setup/test_voicemail_nfs.py): a directory where the module writes its
    temporary file. Nobody, root included, can unlink it: the run stops mid-copy, cleanly, and resumes."""
    make_messages(paths['src'], mailboxes=2, per_box=2)
    before = tree_digest(paths['src'])
    box = os.path.join(paths['dest'], 'default', '1001', 'INBOX')
    obstacle = os.path.join(box, '.wazo-mm-tmp.%s.msg0001.txt' % voicemail_migrate.socket.gethostname())
    os.makedirs(obstacle)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'fail' and res['copied'] == 6, res
    assert 'default/1001/INBOX/msg0001.txt' in res['msg'] and 'Is a directory' in res['msg'], res['msg']
    assert tree_digest(paths['src']) == before and not os.path.exists(paths['backup'])
    os.rmdir(obstacle)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert res['present'] == 6 and res['copied'] == len(before) - 6 and res['verified'] == len(before)
    assert tree_digest(paths['dest'], skip=()) == before


def test_interrupted_after_rename_resumes_from_backup(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=2, per_box=2)
    before = tree_digest(paths['src'])
    # simulate a crash right after the rename (no marker, nothing copied yet) and a new local message
    os.rename(paths['src'], paths['backup'])
    os.mkdir(paths['src'])
    make_messages(paths['src'], mailboxes=1, per_box=1, ctx='new')
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert res['copied'] == len(before) + 2
    assert set(tree_digest(paths['dest'])) == set(before) | {'new/1000/INBOX/msg0000.txt',
                                                             'new/1000/INBOX/msg0000.wav'}
    assert os.listdir(paths['src']) == []
    assert 'new/1000/INBOX/msg0000.wav' in tree_digest(paths['backup'])


def test_refuses_missing_dest_and_mounted_src(monkeypatch, paths):
    kind, res = run(monkeypatch, src=paths['src'], dest=paths['dest'] + '-nope', backup=paths['backup'])
    assert kind == 'fail' and 'mount the share first' in res['msg']
    kind, res = run(monkeypatch, src=paths['dest'], dest=paths['dest'], backup=paths['backup'])
    assert kind == 'fail' and 'same directory' in res['msg']


def test_symlinks_are_kept(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=1, per_box=1)
    os.symlink('INBOX/msg0000.wav', os.path.join(paths['src'], 'default', '1000', 'greet.wav'))
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert os.readlink(os.path.join(paths['dest'], 'default', '1000', 'greet.wav')) == 'INBOX/msg0000.wav'


def test_check_mode_without_mounted_share(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=1, per_box=1)
    kind, res = run(monkeypatch, check=True, src=paths['src'], dest=paths['dest'] + '-not-mounted',
                    backup=paths['backup'])
    assert kind == 'exit' and res['changed'] and res['copied'] == 2
    assert not os.path.exists(paths['dest'] + '-not-mounted')


def test_messages_written_during_the_copy_reach_the_share(monkeypatch, paths):
    """A message stored after the first plan (during the copy, and again during the next pass) is copied by a
    later pass: every file of the local tree at the end is on the share."""
    make_messages(paths['src'], mailboxes=2, per_box=3)
    copy_one = voicemail_migrate.Migration.copy_one
    written = []

    def writing_copy_one(self, rel, root, st, dig):
        if len(written) < 4:  # Asterisk stores a message while the module copies
            new = os.path.join(paths['src'], 'default', '1001', 'INBOX', 'msg%04d.txt' % (50 + len(written)))
            with open(new, 'w') as fh:
                fh.write('[message]\nrecorded during the copy %d\n' % len(written))
            written.append(os.path.relpath(new, paths['src']))
        return copy_one(self, rel, root, st, dig)

    monkeypatch.setattr(voicemail_migrate.Migration, 'copy_one', writing_copy_one)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    assert len(written) == 4
    local = tree_digest(paths['backup'])
    assert set(written) <= set(local)
    assert tree_digest(paths['dest']) == local and res['verified'] == len(local) == res['total']


def test_message_written_after_the_last_live_pass_is_copied_by_the_final_pass(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=1, per_box=2)
    rename = os.rename

    def late_message_then_rename(a, b):
        if a == paths['src']:  # stored at the last moment before the cut-over
            with open(os.path.join(a, 'default', '1000', 'INBOX', 'msg0009.txt'), 'w') as fh:
                fh.write('late')
        return rename(a, b)

    monkeypatch.setattr(voicemail_migrate.os, 'rename', late_message_then_rename)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'exit', res
    with open(os.path.join(paths['dest'], 'default', '1000', 'INBOX', 'msg0009.txt')) as fh:
        assert fh.read() == 'late'


def test_busy_spool_is_not_renamed(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=1, per_box=2)
    monkeypatch.setattr(voicemail_migrate.spool, 'wait_quiet',
                        lambda roots, timeout: [(42, 'asterisk', os.path.join(roots[0], 'default/1000/tmp/x'))])
    kind, res = run(monkeypatch, quiet_timeout=3, **paths)
    assert kind == 'fail' and 'still being written' in res['msg'] and 'asterisk[42]' in res['msg'], res
    assert 'nothing was renamed' in res['msg'] and not os.path.exists(paths['backup'])
    assert len(tree_digest(paths['dest'])) == 4  # copied, verified later by the rerun


def test_share_without_space_is_refused_before_copying(monkeypatch, paths):
    make_messages(paths['src'], mailboxes=2, per_box=2)
    before = tree_digest(paths['src'])
    real = os.statvfs(paths['dest'])
    fake = collections.namedtuple('S', 'f_bavail f_frsize f_bsize f_files f_favail')(
        10, real.f_frsize, real.f_bsize, real.f_files, real.f_favail)
    monkeypatch.setattr(voicemail_migrate.spool, 'space_shortage',
                        functools.partial(voicemail_migrate.spool.space_shortage, statvfs=lambda _p: fake))
    kind, res = run(monkeypatch, **paths)
    assert kind == 'fail' and 'not enough space' in res['msg'] and 'nothing was copied' in res['msg'], res
    assert 'MiB' in res['msg'] and res['copied'] == 0
    assert os.listdir(paths['dest']) == [] and tree_digest(paths['src']) == before
    assert not os.path.exists(paths['backup'])


def test_mounted_src_reports_hidden_files_and_keeps_the_mount_point_roots(monkeypatch, paths):
    calls = []

    def run_command(self, argv, **_kw):
        calls.append(argv)
        if argv[-1] == 'fix':
            return 0, '0 0 755\n', ''
        return 0, '1100 1100 750\n' + (listing[0] or ''), ''

    listing = ['default/1001/INBOX/msg0099.txt\n']
    monkeypatch.setattr(voicemail_migrate.os.path, 'ismount', lambda p: p == paths['src'])
    monkeypatch.setattr(voicemail_migrate.AnsibleModule, 'run_command', run_command)
    kind, res = run(monkeypatch, **paths)
    assert kind == 'fail' and res['hidden_files'] == ['default/1001/INBOX/msg0099.txt']
    assert 'hidden under the share mounted on %s' % paths['src'] in res['msg']
    assert 'umount %s' % paths['src'] in res['msg']
    assert [c[-1] for c in calls] == ['look', 'fix'] and calls[0][-2] == 'voicemail'
    # nothing under it: fine; in check mode the mount point's owner is only reported
    listing[0] = ''
    del calls[:]
    kind, res = run(monkeypatch, check=True, diff=True, **paths)
    assert kind == 'exit' and res['changed'] and res['hidden_files'] == [] and 'mode 0755' in res['diff']['after']
    assert [c[-1] for c in calls] == ['look']
