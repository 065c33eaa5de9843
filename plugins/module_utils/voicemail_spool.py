# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The voicemail spool seen from outside Asterisk: who is writing in it, whether the share has room for it,
and what lies under the share's mount point. Used by the voicemail_migrate module.

Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

MIB = 1024 * 1024
# Room kept free on the share beyond what the copy needs: 1 MiB plus 1 % of it.
SPACE_MARGIN_BYTES = MIB
SPACE_MARGIN_RATIO = 0.01

# The mount point under the share: root's and read-only to everybody else, so nothing (Asterisk runs as
# the asterisk user) can record a message there while the share is not mounted.
MOUNTPOINT_UID = 0
MOUNTPOINT_GID = 0
MOUNTPOINT_MODE = 0o755


def _inside(path, roots):
    return any(path == r or path.startswith(r.rstrip('/') + '/') for r in roots)


def open_writers(roots, proc='/proc'):
    """[(pid, command, path)] of the files under any of ``roots`` that a process holds open for writing."""
    roots = [os.path.normpath(r) for r in roots]
    found = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = os.path.join(proc, pid, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if not target.startswith('/') or not _inside(target, roots):
                continue
            try:
                with open(os.path.join(proc, pid, 'fdinfo', fd)) as handle:
                    flags = [line.split()[1] for line in handle if line.startswith('flags:')]
            except (OSError, IndexError):
                continue
            if flags and int(flags[0], 8) & 3:  # O_WRONLY or O_RDWR
                try:
                    with open(os.path.join(proc, pid, 'comm')) as handle:
                        comm = handle.read().strip()
                except OSError:
                    comm = '?'
                found.append((int(pid), comm, target))
    return found


def wait_quiet(roots, timeout, interval=0.2, proc='/proc', clock=time.monotonic, sleep=time.sleep):
    """Wait until no file under ``roots`` is open for writing, at most ``timeout`` seconds.
    Returns [] when quiet, else the writers still seen at the deadline."""
    deadline = clock() + timeout
    while True:
        writers = open_writers(roots, proc=proc)
        if not writers or clock() >= deadline:
            return writers
        sleep(interval)


def space_needed(sizes, block_size):
    """Bytes the files of these sizes take once written (whole blocks), plus the margin kept free."""
    block_size = max(int(block_size), 1)
    used = sum(-(-int(s) // block_size) * block_size for s in sizes)
    return used + SPACE_MARGIN_BYTES + int(used * SPACE_MARGIN_RATIO)


def space_shortage(path, sizes, entries, statvfs=os.statvfs):
    """None if the file system of ``path`` can take files of these ``sizes`` and ``entries`` new names
    (files and directories), else a dict: needed, free (bytes), needed_inodes, free_inodes."""
    st = statvfs(path)
    free = st.f_bavail * st.f_frsize
    needed = space_needed(sizes, st.f_frsize or st.f_bsize)
    inodes_known = st.f_files > 0  # 0: the file system does not count inodes (some NFS servers)
    if needed <= free and (not inodes_known or entries <= st.f_favail):
        return None
    return dict(needed=needed, free=free, needed_inodes=entries,
                free_inodes=st.f_favail if inodes_known else None)


def mib(n):
    return '%.1f MiB' % (n / float(MIB))


# Run under `unshare --mount --propagation private`: a bind mount (not recursive) of the mount point's parent
# shows the directory under the share; nobody else sees it, and it ends with the command.
# Arguments: parent, a free directory, the mount point's name, look|fix. Prints the mount point's
# "uid gid mode" then every file and symbolic link under it, relative, one per line.
UNDERNEATH_SCRIPT = r'''
set -e
mount --bind "$1" "$2"
cd "$2/$3"
if [ "$4" = fix ]; then chown %d:%d . && chmod %o .; fi
stat -c '%%u %%g %%a' .
find . -mindepth 1 \( -type f -o -type l \) -printf '%%P\n'
''' % (MOUNTPOINT_UID, MOUNTPOINT_GID, MOUNTPOINT_MODE)


def underneath_argv(mountpoint, workdir, fix=False):
    parent, name = os.path.split(os.path.normpath(mountpoint))
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', UNDERNEATH_SCRIPT, 'sh',
            parent or '/', workdir, name, 'fix' if fix else 'look']


def parse_underneath(stdout):
    """(uid, gid, mode, [relative paths]) from the output of UNDERNEATH_SCRIPT."""
    lines = stdout.splitlines()
    uid, gid, mode = lines[0].split()
    return int(uid), int(gid), int(mode, 8), sorted(line for line in lines[1:] if line)


def mountpoint_ok(uid, gid, mode):
    return (uid, gid, mode) == (MOUNTPOINT_UID, MOUNTPOINT_GID, MOUNTPOINT_MODE)
