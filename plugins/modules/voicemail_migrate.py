#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: voicemail_migrate
short_description: Move a voicemail tree onto a shared directory without losing or overwriting a message
version_added: 0.1.0
description:
  - Copies every file of the local voicemail tree O(src) into O(dest) (the shared directory, typically
    the NFS share mounted at a staging point), verifies every copied file by SHA-256, and only then
    renames O(src) to O(backup) and recreates O(src) as an empty directory (the mount point).
  - B(Never overwrites.) A file of O(dest) with the same relative path and the same content is kept
    (the two stacks of a Wazo HA pair usually hold copies of the same messages, which are merged). A file
    with the same relative path and a different content is a conflict; before anything is written, every
    conflict is listed and the module fails, naming the files and their checksums. A conflict that appears
    while copying (the other stack writing the same name at the same time) stops the run.
  - B(Atomic per file.) Each file is written to a temporary name in its destination directory, flushed,
    read back and checked, then published with a hard link (which fails instead of replacing an existing
    name). An interrupted run leaves at most temporary files, named after this host, that the next run
    removes.
  - B(Resumable.) A rerun skips the files already present with the same content and continues. If a run
    was interrupted after the rename, O(backup) (without the completion marker) is a source too.
  - B(No-op when done.) Once O(src) has been renamed, a marker C(.wazo-mm-migrated) is written in
    O(backup); later runs only look at O(src) (new messages written locally since then), never copy the
    old tree again, so messages deleted from the share are not resurrected.
  - B(No message written during the migration is lost.) The copy is repeated while the spool is in use
    (each pass copies what the previous one had not seen). Then the writes are held. Once no file of O(src)
    is open for writing (at most O(quiet_timeout) seconds, else the run stops before renaming anything),
    O(src) is renamed away and recreated empty, owned by root, mode 0755, so Asterisk (the C(asterisk) user)
    cannot record anything there until the share is mounted on it. A last pass copies what was written
    meanwhile, every file is verified by SHA-256, and only then is the completion marker written.
  - B(Never beyond the share's space.) Before copying, the space (and inodes) the files still to copy need,
    plus a margin of 1 MiB and 1 %, is compared with what the share has free; short, the module fails before
    writing or renaming anything.
  - B(Nothing hidden under the share.) When O(src) is already a mount point (the migration is over), the
    module looks under it (a private bind mount of its parent). Files found there, written while the share
    was not mounted, are listed and the module fails with the remedy; the bare mount point is kept owned by
    root, mode 0755.
  - Owner, group, mode and modification time of files, directories and symbolic links are preserved.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description: Reports the files that would be copied and the conflicts; writes nothing.
  diff_mode:
    support: full
    description: The diff lists the files that would be added to O(dest).
options:
  src:
    description:
      - The local voicemail tree, for example C(/var/spool/asterisk/voicemail). Must not be a mount point
        (if the share is already mounted there, the migration is over).
    type: path
    required: true
  dest:
    description:
      - The shared directory to copy into. Must exist (mount the share first). Not used when O(src) is a mount
        point.
    type: path
    required: true
  backup:
    description:
      - Where O(src) is renamed after every file has been verified, for example
        C(/var/spool/asterisk/voicemail_old). Must be on the same file system as O(src). Kept, never deleted.
    type: path
    required: true
  finalize:
    description:
      - Rename O(src) to O(backup) (or move its files into an existing O(backup)) and recreate O(src) empty
        once every file is verified. With V(false), only copy and verify.
    type: bool
    default: true
  quiet_timeout:
    description:
      - Seconds to wait, before the rename, until no file of O(src) is open for writing (a message being
        recorded). Still busy after that, the module fails without renaming anything; rerun it.
    type: int
    default: 60
notes:
  - An error while writing to O(dest) (share full, read-only, a name in the way, I/O error) stops the run with
    the file concerned and the number of files copied; nothing is renamed and a rerun resumes.
  - Between the rename and the mount of the share on O(src), voicemail cannot be recorded (Asterisk gets a
    permission error); mount the share right after this module (the role voicemail_nfs does).
  - The checksum is SHA-256; every file is read twice on the destination side (after writing and in the
    final verification).
'''

EXAMPLES = r'''
- name: Copy the voicemail tree onto the share mounted at a staging point, verify, then rename it
  wazo.maintenance_mode.voicemail_migrate:
    src: /var/spool/asterisk/voicemail
    dest: /var/lib/wazo-maintenance/voicemail-staging
    backup: /var/spool/asterisk/voicemail_old
'''

RETURN = r'''
copied:
  description: Number of files written to O(dest) by this run.
  returned: always
  type: int
present:
  description: Number of files already present in O(dest) with the same content (skipped).
  returned: always
  type: int
verified:
  description: Number of source files whose copy in O(dest) was checked by SHA-256 (0 in check mode).
  returned: always
  type: int
total:
  description: Number of files (and symbolic links) found in the sources.
  returned: always
  type: int
bytes_copied:
  description: Bytes written by this run.
  returned: always
  type: int
copied_files:
  description: Relative paths copied (or, in check mode, to copy), at most 200 listed.
  returned: always
  type: list
  elements: str
conflicts:
  description: The conflicting relative paths with both checksums (the module fails when not empty).
  returned: always
  type: list
  elements: dict
sources:
  description: The source trees used by this run.
  returned: always
  type: list
  elements: str
hidden_files:
  description: When O(src) is a mount point, the files found under it (relative paths, at most 200 listed).
  returned: always
  type: list
  elements: str
finalized:
  description: Whether O(src) was renamed (or emptied into O(backup)) by this run.
  returned: always
  type: bool
'''

import errno
import hashlib
import json
import os
import socket
import shutil
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import voicemail_spool as spool

MARKER = '.wazo-mm-migrated'
TMP_PREFIX = '.wazo-mm-tmp.'
HELD_SUFFIX = '.wazo-mm-held'
LIST_LIMIT = 200
CHUNK = 1024 * 1024
# Copy passes while the spool is live, before the cut-over (each copies what the previous one did not see).
LIVE_PASSES = 3


class Conflict(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as fh:
        while True:
            block = fh.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def entry_digest(path, st):
    """A comparable identity of a file or symlink: ('file', sha256) or ('link', target)."""
    if stat.S_ISLNK(st.st_mode):
        return ('link', os.readlink(path))
    return ('file', sha256_file(path))


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise


def walk_tree(root, skip_names=()):
    """Return (dirs, entries): relative dirs (parents first) and {relpath: lstat} of files and symlinks."""
    dirs, entries, others = [], {}, []
    for cur, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(cur, root)
        for d in list(dirnames):
            full = os.path.join(cur, d)
            st = _lstat(full)
            if st is None:  # removed meanwhile (the spool is in use)
                dirnames.remove(d)
                continue
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if stat.S_ISLNK(st.st_mode):
                # os.walk does not follow symlinks to directories: keep the link itself.
                entries[rel] = st
                dirnames.remove(d)
            else:
                dirs.append(rel)
        for f in sorted(filenames):
            if rel_dir == '.' and f in skip_names:
                continue
            if f.startswith(TMP_PREFIX):
                continue
            full = os.path.join(cur, f)
            st = _lstat(full)
            if st is None:  # removed or renamed meanwhile (Asterisk's tmp/ files)
                continue
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                entries[rel] = st
            else:
                others.append(rel)
    return dirs, entries, others


def apply_attrs(path, st, is_link=False):
    if is_link:
        os.lchown(path, st.st_uid, st.st_gid)
        return
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


class Migration(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        self.src = os.path.normpath(p['src'])
        self.dest = os.path.normpath(p['dest'])
        self.backup = os.path.normpath(p['backup'])
        self.finalize = p['finalize']
        self.quiet_timeout = p['quiet_timeout']
        self.check = module.check_mode
        self.tag = socket.gethostname().replace('/', '_')
        self.dest_missing = False
        self._digests = {}
        self.result = dict(changed=False, copied=0, present=0, verified=0, total=0, bytes_copied=0,
                           copied_files=[], conflicts=[], sources=[], finalized=False, hidden_files=[],
                           warnings_list=[])

    # --- helpers ---------------------------------------------------------------------------------
    def fail(self, msg, **extra):
        res = dict(self.result)
        res.pop('warnings_list', None)
        res.update(extra)
        self.module.fail_json(msg=msg, **res)

    def note_copied(self, rel, size):
        self.result['copied'] += 1
        self.result['bytes_copied'] += size
        self.result['changed'] = True
        if len(self.result['copied_files']) < LIST_LIMIT:
            self.result['copied_files'].append(rel)

    def conflict_msg(self, conflicts):
        lines = ['%s: %s has %s, %s has %s' % (c['path'], c['source'], c['source_digest'], c['other'],
                                               c['other_digest']) for c in conflicts[:50]]
        more = '' if len(conflicts) <= 50 else ' (and %d more)' % (len(conflicts) - 50)
        return ('voicemail migration stopped: %d file(s) exist with the same name and a different content; '
                'nothing was overwritten. Resolve them (keep one version, rename the other to a free '
                'msgNNNN number) and rerun: %s%s' % (len(conflicts), '; '.join(lines), more))

    def digest(self, path, st):
        """entry_digest, computed once per version of a file across the passes (same inode, size, times)."""
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        dig = self._digests.get(key)
        if dig is None:
            dig = self._digests[key] = entry_digest(path, st)
        return dig

    def remember(self, path, dig):
        st = _lstat(path)
        if st is not None:
            self._digests[(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = dig

    def held_dirs(self):
        """Local trees set aside by a cut-over while O(backup) already existed (merged into it at the end)."""
        parent, name = os.path.split(self.src)
        prefix = name + HELD_SUFFIX
        try:
            names = sorted(n for n in os.listdir(parent or '.') if n.startswith(prefix))
        except OSError:
            return []
        return [os.path.join(parent, n) for n in names if os.path.isdir(os.path.join(parent, n))]

    # --- phases --------------------------------------------------------------------------------
    def preflight(self):
        if os.path.lexists(self.src) and os.path.isdir(self.src) and os.path.ismount(self.src):
            self.inspect_underneath()  # the migration is over: only look under the share; exits
        if not os.path.isdir(self.dest):
            if not self.check or os.path.lexists(self.dest):
                self.fail('dest %s does not exist or is not a directory: mount the share first' % self.dest)
            # check mode: the share is not mounted at the staging point; report as if it were empty
            self.dest_missing = True
            self.result['warnings_list'].append('%s is not mounted in check mode: compared with an empty share'
                                                % self.dest)
        if os.path.lexists(self.src):
            if not os.path.isdir(self.src) or os.path.islink(self.src):
                self.fail('src %s is not a directory' % self.src)
            if not self.dest_missing and os.path.samefile(self.src, self.dest):
                self.fail('src %s and dest %s are the same directory' % (self.src, self.dest))
        if os.path.lexists(self.backup) and not os.path.isdir(self.backup):
            self.fail('backup %s exists and is not a directory' % self.backup)

    def inspect_underneath(self):
        """The share is mounted on src: report the files hidden under it (written while it was not mounted),
        and keep the bare mount point root's, so that nothing can be recorded there again."""
        workdir = tempfile.mkdtemp(prefix='wazo-mm-underneath.')
        try:
            rc, out, err = self.module.run_command(spool.underneath_argv(self.src, workdir))
            if rc != 0:
                self.fail('cannot look under the share mounted on %s (rc %d): %s' % (self.src, rc, err.strip()))
            uid, gid, mode, files = spool.parse_underneath(out)
            if not spool.mountpoint_ok(uid, gid, mode):
                self.result['changed'] = True
                self.result['diff'] = dict(before_header='%s (under the share)' % self.src,
                                           after_header='%s (under the share)' % self.src,
                                           before='owner %d:%d mode %04o\n' % (uid, gid, mode),
                                           after='owner %d:%d mode %04o\n' % (
                                               spool.MOUNTPOINT_UID, spool.MOUNTPOINT_GID, spool.MOUNTPOINT_MODE))
                if not self.check:
                    rc, out, err = self.module.run_command(spool.underneath_argv(self.src, workdir, fix=True))
                    if rc != 0:
                        self.fail('cannot set the owner and mode of the mount point %s under the share (rc %d): %s'
                                  % (self.src, rc, err.strip()))
        finally:
            os.rmdir(workdir)
        self.result['hidden_files'] = files[:LIST_LIMIT]
        if files:
            more = '' if len(files) <= 50 else ' (and %d more)' % (len(files) - 50)
            self.fail('%d file(s) lie hidden under the share mounted on %s (written there while the share was not '
                      'mounted): %s%s. They are not on the share and Asterisk does not see them. To put them on the '
                      'share without overwriting anything: umount %s, then rerun setup.yml (the migration copies them '
                      'and keeps them in %s)' % (len(files), self.src, ', '.join(files[:50]), more, self.src,
                                                 self.backup))
        self.result.pop('warnings_list')
        self.module.exit_json(**self.result)

    def sources(self):
        srcs = []
        backup_done = os.path.exists(os.path.join(self.backup, MARKER))
        if os.path.isdir(self.backup) and not backup_done:
            srcs.append(self.backup)  # interrupted after the rename: the old tree is still to be copied
        srcs.extend(self.held_dirs())
        if os.path.isdir(self.src):
            srcs.append(self.src)
        self.result['sources'] = srcs
        return srcs

    def cleanup_tmp(self):
        """Remove this host's temporary files left by an interrupted run."""
        removed = 0
        if self.dest_missing:
            return removed
        mine = TMP_PREFIX + self.tag + '.'
        for cur, _dirs, files in os.walk(self.dest):
            for f in files:
                if f.startswith(mine):
                    if not self.check:
                        os.unlink(os.path.join(cur, f))
                    removed += 1
        return removed

    def plan(self, srcs):
        """Merge the sources; return (dirs {rel: (root, st)}, entries {rel: (root, st, digest)}, conflicts)."""
        dirs, entries, conflicts = {}, {}, []
        for root in srcs:
            d, e, others = walk_tree(root, skip_names=(MARKER,))
            for rel in others:
                msg = 'skipped %s: not a regular file' % os.path.join(root, rel)
                if msg not in self.result['warnings_list']:
                    self.result['warnings_list'].append(msg)
            for rel in d:
                st = _lstat(os.path.join(root, rel))
                if st is not None:
                    dirs.setdefault(rel, (root, st))
            for rel, st in e.items():
                full = os.path.join(root, rel)
                try:
                    dig = self.digest(full, st)
                except OSError as err:
                    if err.errno != errno.ENOENT:
                        raise
                    continue  # gone since the walk: not a message of the spool any more
                if rel in entries:
                    other_root, _ost, other_dig = entries[rel]
                    if other_dig != dig:
                        conflicts.append(dict(path=rel, source=full, source_digest=':'.join(dig),
                                              other=os.path.join(other_root, rel),
                                              other_digest=':'.join(other_dig)))
                    continue
                entries[rel] = (root, st, dig)
        return dirs, entries, conflicts

    def compare_dest(self, entries):
        """Return (to_copy [rel], conflicts) against what dest holds now."""
        to_copy, conflicts = [], []
        for rel in sorted(entries):
            root, st, dig = entries[rel]
            target = os.path.join(self.dest, rel)
            try:
                dst = os.lstat(target)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    to_copy.append(rel)
                    continue
                raise
            if stat.S_ISDIR(dst.st_mode):
                ddig = ('directory', '')
            elif dig[0] == 'file' and stat.S_ISREG(dst.st_mode) and dst.st_size != st.st_size:
                ddig = ('file', 'size %d' % dst.st_size)
            else:
                ddig = self.digest(target, dst)
            if ddig != dig:
                conflicts.append(dict(path=rel, source=os.path.join(root, rel), source_digest=':'.join(dig),
                                      other=target, other_digest=':'.join(ddig)))
        return to_copy, conflicts

    def check_space(self, entries, to_copy, dirs, first):
        """Refuse, before writing, a share without the room (space and names) for what is left to copy."""
        if self.dest_missing or not to_copy:
            return
        new_dirs = [rel for rel in dirs if not os.path.isdir(os.path.join(self.dest, rel))]
        short = spool.space_shortage(self.dest, [entries[rel][1].st_size for rel in to_copy],
                                     len(to_copy) + len(new_dirs))
        if short is None:
            return
        what = ('%s free, the %d file(s) still to copy need %s (with a margin)'
                % (spool.mib(short['free']), len(to_copy), spool.mib(short['needed'])))
        if short['needed'] <= short['free']:
            what = ('%d free inodes (file names), %d needed' % (short['free_inodes'], short['needed_inodes']))
        state = ('nothing was copied and %s was not renamed' % self.src if first else
                 '%d file(s) were copied by this run. %s' % (self.result['copied'], self.local_state()))
        self.fail('not enough space on the voicemail share (mounted at %s): %s; %s. Free space on the NFS '
                  'server (or grow the export), then rerun: the migration resumes.' % (self.dest, what, state))

    def ensure_dirs(self, dirs, rels):
        needed = set()
        for rel in list(dirs) + [os.path.dirname(r) for r in rels]:
            while rel and rel != '.':
                needed.add(rel)
                rel = os.path.dirname(rel)
        for rel in sorted(needed, key=lambda r: (r.count(os.sep), r)):
            target = os.path.join(self.dest, rel)
            if os.path.isdir(target):
                continue
            if os.path.lexists(target):
                self.fail('cannot create directory %s: a file is in the way' % target)
            self.result['changed'] = True
            if self.check:
                continue
            os.mkdir(target)
            st = dirs[rel][1] if rel in dirs else os.lstat(self.dest)
            apply_attrs(target, st)

    def tree_reference(self):
        """The local tree whose owner and mode an empty share root takes: src, unless it is already the
        bare mount point (root's), then the tree set aside."""
        for path in [self.src] + self.held_dirs() + [self.backup]:
            if os.path.isdir(path):
                st = os.stat(path)
                if not spool.mountpoint_ok(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)):
                    return st
        return None

    def ensure_dest_root(self):
        """An empty share root takes the owner and mode of the local tree (asterisk must write there)."""
        sst = self.tree_reference()
        if sst is None:
            return
        if self.dest_missing:
            self.result['changed'] = True
            return
        dst = os.stat(self.dest)
        same = (sst.st_uid, sst.st_gid, stat.S_IMODE(sst.st_mode)) == (dst.st_uid, dst.st_gid, stat.S_IMODE(dst.st_mode))
        if same:
            return
        leftovers = [n for n in os.listdir(self.dest) if not n.startswith(TMP_PREFIX)]
        if leftovers:
            if sst.st_uid != dst.st_uid:
                msg = ('the share root %s is owned by uid %d, the local tree by uid %d: left unchanged'
                       % (self.dest, dst.st_uid, sst.st_uid))
                if msg not in self.result['warnings_list']:
                    self.result['warnings_list'].append(msg)
            return
        self.result['changed'] = True
        if not self.check:
            os.chown(self.dest, sst.st_uid, sst.st_gid)
            os.chmod(self.dest, stat.S_IMODE(sst.st_mode))

    def publish(self, tmp, target):
        """Give tmp the name target without ever replacing an existing name. Return True if published."""
        try:
            os.link(tmp, target)
        except OSError as e:
            if e.errno == errno.EEXIST:
                return False
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links on this file system: check then rename (not atomic against another writer).
            if os.path.lexists(target):
                return False
            os.rename(tmp, target)
            return True
        os.unlink(tmp)
        return True

    def copy_one(self, rel, root, st, dig):
        srcp = os.path.join(root, rel)
        target = os.path.join(self.dest, rel)
        tmp = os.path.join(os.path.dirname(target), TMP_PREFIX + self.tag + '.' + os.path.basename(rel))
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if dig[0] == 'link':
            os.symlink(dig[1], tmp)
            apply_attrs(tmp, st, is_link=True)
            size = 0
        else:
            h = hashlib.sha256()
            size = 0
            try:
                fin = open(srcp, 'rb')
            except (IOError, OSError) as e:
                if e.errno == errno.ENOENT:
                    return  # moved or deleted since the plan: the next pass sees where it went
                raise
            with fin:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, 'wb') as fout:
                    while True:
                        block = fin.read(CHUNK)
                        if not block:
                            break
                        h.update(block)
                        fout.write(block)
                        size += len(block)
                    fout.flush()
                    os.fsync(fout.fileno())
            if h.hexdigest() != dig[1]:
                os.unlink(tmp)
                self.fail('%s changed while it was being copied (sha256 %s, then %s): rerun the migration'
                          % (srcp, dig[1], h.hexdigest()))
            back = sha256_file(tmp)
            if back != dig[1]:
                os.unlink(tmp)
                self.fail('the copy of %s reads back with sha256 %s instead of %s: nothing was published'
                          % (srcp, back, dig[1]))
            apply_attrs(tmp, st)
        if not self.publish(tmp, target):
            # Someone (the other stack) created the name meanwhile: same content is fine, else stop.
            other = entry_digest(target, os.lstat(target))
            os.unlink(tmp)
            if other != dig:
                c = dict(path=rel, source=srcp, source_digest=':'.join(dig), other=target,
                         other_digest=':'.join(other))
                self.result['conflicts'].append(c)
                self.fail(self.conflict_msg([c]))
            return
        self.remember(target, dig)
        self.note_copied(rel, size)

    def copy_pass(self, first=False):
        """Plan the sources as they are now and copy what the share lacks. Returns (entries, to_copy)."""
        srcs = self.sources()
        dirs, entries, conflicts = self.plan(srcs)
        to_copy, dest_conflicts = self.compare_dest(entries)
        conflicts += dest_conflicts
        if conflicts:
            self.result['conflicts'] = conflicts
            self.fail(self.conflict_msg(conflicts))
        self.check_space(entries, to_copy, dirs, first)
        self.ensure_dest_root()
        self.ensure_dirs(dirs, to_copy)
        if self.check:
            for rel in to_copy:
                self.note_copied(rel, entries[rel][1].st_size)
            return entries, to_copy
        for rel in to_copy:
            root, st, dig = entries[rel]
            try:
                self.copy_one(rel, root, st, dig)
            except (IOError, OSError) as e:
                self.fail('voicemail migration stopped after %d file(s) copied by this run: copying %s to %s '
                          'failed: %s. %s; fix the cause and rerun the migration (it resumes)'
                          % (self.result['copied'], os.path.join(root, rel), os.path.join(self.dest, rel), e,
                             self.local_state()))
        return entries, to_copy

    def local_state(self):
        if self.result['finalized']:
            return 'Every local file is kept in %s, not marked as migrated' % ', '.join(self.sources())
        return '%s was NOT renamed' % self.src

    def verify(self, entries):
        bad = []
        self.result['verified'] = 0
        for rel in sorted(entries):
            root, st, dig = entries[rel]
            srcp, target = os.path.join(root, rel), os.path.join(self.dest, rel)
            st_now = _lstat(srcp)
            if st_now is None:
                continue  # gone since the plan: nothing local left to lose
            now = entry_digest(srcp, st_now)
            try:
                there = entry_digest(target, os.lstat(target))
            except OSError:
                there = ('missing', '')
            if now != there:
                bad.append('%s (source %s, share %s)' % (rel, ':'.join(now), ':'.join(there)))
            else:
                self.result['verified'] += 1
        if bad:
            self.fail('verification failed, %s; rerun the migration: %s' % (self.local_state(), '; '.join(bad[:50])))

    def make_mountpoint(self):
        """src recreated empty, root's, not writable by Asterisk: until the share is mounted on it, a message
        cannot be recorded there (where the mount would hide it)."""
        os.mkdir(self.src, spool.MOUNTPOINT_MODE)
        try:
            os.chown(self.src, spool.MOUNTPOINT_UID, spool.MOUNTPOINT_GID)
        except OSError:
            if os.geteuid() == 0:
                raise
        os.chmod(self.src, spool.MOUNTPOINT_MODE)

    def cut_over(self):
        """Hold the writes (the spool renamed away, an empty mount point only root can write in its place),
        copy what came meanwhile, verify every file, keep the local tree in backup with its marker."""
        has_local = os.path.isdir(self.src) and bool(os.listdir(self.src))
        if self.check:
            if has_local or not os.path.isdir(self.backup) or self.held_dirs():
                self.result['changed'] = self.result['finalized'] = True
            return
        set_aside = None
        if not has_local and os.path.isdir(self.backup):
            if not os.path.isdir(self.src):
                self.make_mountpoint()
                self.result['changed'] = True
            else:
                st = os.stat(self.src)
                if not spool.mountpoint_ok(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)):
                    os.chown(self.src, spool.MOUNTPOINT_UID, spool.MOUNTPOINT_GID)
                    os.chmod(self.src, spool.MOUNTPOINT_MODE)
                    self.result['changed'] = True
        else:
            if os.path.isdir(self.src):
                writers = spool.wait_quiet([self.src], self.quiet_timeout)
                if writers:
                    self.fail('voicemail is still being written in %s after %d s (%s): nothing was renamed and every '
                              'file copied so far is on the share; rerun in a quieter moment or raise the quiet '
                              'timeout' % (self.src, self.quiet_timeout,
                                           ', '.join('%s[%d] %s' % (c, p, f) for p, c, f in writers[:10])))
                set_aside = self.backup if not os.path.exists(self.backup) else '%s%s.%d' % (
                    self.src, HELD_SUFFIX, int(time.time() * 1000))
                os.rename(self.src, set_aside)
            self.make_mountpoint()
            self.result['changed'] = self.result['finalized'] = True
            if set_aside:
                # a recording that opened its file just before the rename ends in the tree set aside
                late = spool.wait_quiet([set_aside], min(self.quiet_timeout, 10))
                if late:
                    self.result['warnings_list'].append('still open for writing in %s: %s' % (
                        set_aside, ', '.join(f for _p, _c, f in late[:10])))
        # the final pass: what was written since the last pass, then every file checked on the share
        entries, _to_copy = self.copy_pass()
        self.verify(entries)
        self.result['total'] = len(entries)
        for held in self.held_dirs():
            self.merge_into_backup(held)
        if os.path.isdir(self.backup):
            self.write_marker()

    def merge_into_backup(self, tree):
        """Move a tree set aside into the existing backup (both verified on the share), then remove it."""
        self.result['changed'] = True
        dirs, entries, _others = walk_tree(tree)
        for rel in dirs:
            target = os.path.join(self.backup, rel)
            if not os.path.isdir(target):
                os.mkdir(target)
                apply_attrs(target, os.lstat(os.path.join(tree, rel)))
        for rel in sorted(entries):
            srcp, target = os.path.join(tree, rel), os.path.join(self.backup, rel)
            if os.path.lexists(target):
                if entry_digest(target, os.lstat(target)) != entry_digest(srcp, os.lstat(srcp)):
                    # Both copies are on the share already (verified); keep both locally too.
                    target = '%s.%d' % (target, int(time.time()))
                    os.rename(srcp, target)
                else:
                    os.unlink(srcp)
            else:
                os.rename(srcp, target)
        shutil.rmtree(tree)  # only empty directories (and special files, skipped and reported) are left

    def write_marker(self):
        path = os.path.join(self.backup, MARKER)
        if os.path.exists(path):
            return
        self.result['changed'] = True
        with open(path, 'w') as fh:
            json.dump(dict(migrated_to=self.dest, src=self.src, at=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                           files=self.result['total']), fh)
            fh.write('\n')

    def run(self):
        self.preflight()
        if self.cleanup_tmp():
            self.result['changed'] = True
        # live passes: the spool is still in use; each pass copies what the previous one had not seen
        entries, to_copy = self.copy_pass(first=True)
        first_to_copy = to_copy
        if not self.check:
            for _n in range(LIVE_PASSES - 1):
                if not to_copy:
                    break
                entries, to_copy = self.copy_pass()
        self.result['total'] = len(entries)
        if self.finalize:
            self.cut_over()
        elif not self.check:
            self.verify(entries)
        self.result['present'] = max(self.result['total'] - self.result['copied'], 0)
        warnings = self.result.pop('warnings_list')
        for w in warnings:
            self.module.warn(w)
        if self.module._diff and first_to_copy:
            self.result['diff'] = dict(before_header=self.dest, after_header=self.dest, before='',
                                       after=''.join('%s\n' % r for r in first_to_copy[:LIST_LIMIT]))
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            dest=dict(type='path', required=True),
            backup=dict(type='path', required=True),
            finalize=dict(type='bool', default=True),
            quiet_timeout=dict(type='int', default=60),
        ),
        supports_check_mode=True,
    )
    Migration(module).run()


if __name__ == '__main__':
    main()
