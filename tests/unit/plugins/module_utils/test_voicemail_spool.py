# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/voicemail_spool.py: writers seen in /proc, space, the look under a mount point."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import voicemail_spool as spool


def test_open_writers_sees_a_file_open_for_writing_only(tmp_path):
    spool_dir = tmp_path / 'voicemail'
    spool_dir.mkdir()
    other = tmp_path / 'elsewhere'
    other.mkdir()
    (spool_dir / 'read.txt').write_text('x')
    with open(str(spool_dir / 'read.txt')) as reading, open(str(other / 'w.wav'), 'w'):
        assert spool.open_writers([str(spool_dir)]) == [] and reading
    with open(str(spool_dir / 'msg0000.wav'), 'wb'):
        found = spool.open_writers([str(spool_dir)])
        assert [(pid, path) for pid, _comm, path in found] == [(os.getpid(), str(spool_dir / 'msg0000.wav'))]
    assert spool.open_writers([str(spool_dir)]) == []
    # a sibling whose name starts like the spool's is not inside it
    with open(str(tmp_path / 'voicemail_old.wav'), 'wb'):
        assert spool.open_writers([str(spool_dir)]) == []


def test_wait_quiet_is_bounded(tmp_path):
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with open(str(tmp_path / 'busy.wav'), 'wb'):
        left = spool.wait_quiet([str(tmp_path)], 5, interval=1, clock=lambda: now[0], sleep=sleep)
    assert left and now[0] == 5
    assert spool.wait_quiet([str(tmp_path)], 5, clock=lambda: now[0], sleep=sleep) == []


Statvfs = collections.namedtuple('Statvfs', 'f_bavail f_frsize f_bsize f_files f_favail')


def test_space_needed_counts_whole_blocks_and_the_margin():
    assert spool.space_needed([1, 4096, 4097], 4096) == 4 * 4096 + spool.MIB + int(4 * 4096 * 0.01)
    assert spool.space_needed([], 4096) == spool.MIB


def test_space_shortage():
    def fs(free_bytes, files=1000, favail=1000):
        return lambda _p: Statvfs(free_bytes // 4096, 4096, 4096, files, favail)

    assert spool.space_shortage('/x', [10 * spool.MIB], 3, statvfs=fs(100 * spool.MIB)) is None
    short = spool.space_shortage('/x', [10 * spool.MIB], 3, statvfs=fs(8 * spool.MIB))
    assert short['free'] == 8 * spool.MIB and short['needed'] > 10 * spool.MIB
    short = spool.space_shortage('/x', [10], 50, statvfs=fs(100 * spool.MIB, favail=20))
    assert short['needed_inodes'] == 50 and short['free_inodes'] == 20
    # a file system that does not count inodes (f_files 0) is only checked for space
    assert spool.space_shortage('/x', [10], 50, statvfs=fs(100 * spool.MIB, files=0, favail=0)) is None


def test_underneath_argv_and_parse():
    argv = spool.underneath_argv('/var/spool/asterisk/voicemail/', '/tmp/w', fix=True)
    assert argv[:4] == ['unshare', '--mount', '--propagation', 'private']
    assert argv[-4:] == ['/var/spool/asterisk', '/tmp/w', 'voicemail', 'fix']
    assert 'chown 0:0 . && chmod 755 .' in argv[6]
    uid, gid, mode, files = spool.parse_underneath('1100 1100 750\ndefault/1001/INBOX/msg0001.txt\na\n')
    assert (uid, gid, mode, files) == (1100, 1100, 0o750, ['a', 'default/1001/INBOX/msg0001.txt'])
    assert not spool.mountpoint_ok(uid, gid, mode) and spool.mountpoint_ok(0, 0, 0o755)
