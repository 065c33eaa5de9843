# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_set on a temporary directory: install, no-op, drift repaired, check mode and diff, bad input."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.wazo.maintenance_mode.plugins.modules import file_set

FILES = {'a.py': 'print("a")\n', 'b.py': '# é {{ not templated }}\n'}


def _mode(path):
    return os.stat(str(path)).st_mode & 0o7777


def test_creates_directory_and_files_then_changes_nothing(run_module, host, tmp_path):
    target = tmp_path / 'lib' / 'pkg'
    res = run_module(file_set, {'path': str(target), 'files': FILES})
    assert res['changed'] is True and res['created_directory'] is True
    assert res['changed_files'] == ['a.py', 'b.py']
    assert (target / 'b.py').read_text() == FILES['b.py']
    assert _mode(target) == 0o755 and _mode(target / 'a.py') == 0o644
    again = run_module(file_set, {'path': str(target), 'files': FILES})
    assert again['changed'] is False and again['changed_files'] == []


def test_repairs_content_and_mode_and_leaves_other_files(run_module, host, tmp_path):
    run_module(file_set, {'path': str(tmp_path), 'files': FILES})
    (tmp_path / 'a.py').write_text('tampered\n')
    os.chmod(str(tmp_path / 'b.py'), 0o666)
    (tmp_path / 'other.py').write_text('kept\n')
    res = run_module(file_set, {'path': str(tmp_path), 'files': FILES}, diff=True)
    assert res['changed_files'] == ['a.py', 'b.py']
    assert [d['after'] for d in res['diff']] == [FILES['a.py'], {'path': str(tmp_path / 'b.py'), 'mode': '0644'}]
    assert res['diff'][0]['before'] == 'tampered\n'
    assert (tmp_path / 'a.py').read_text() == FILES['a.py'] and _mode(tmp_path / 'b.py') == 0o644
    assert (tmp_path / 'other.py').read_text() == 'kept\n'


def test_check_mode_reports_and_writes_nothing(run_module, host, tmp_path):
    target = tmp_path / 'new'
    res = run_module(file_set, {'path': str(target), 'files': FILES}, check_mode=True, diff=True)
    assert res['changed'] is True and res['changed_files'] == ['a.py', 'b.py']
    assert len(res['diff']) == 2 and res['diff'][0]['before'] == ''
    assert not target.exists()
    run_module(file_set, {'path': str(tmp_path), 'files': FILES})
    (tmp_path / 'a.py').write_text('tampered\n')
    res = run_module(file_set, {'path': str(tmp_path), 'files': FILES}, check_mode=True)
    assert res['changed_files'] == ['a.py'] and (tmp_path / 'a.py').read_text() == 'tampered\n'


def test_refuses_a_name_with_a_directory_part(run_module, host, tmp_path):
    res = run_module(file_set, {'path': str(tmp_path), 'files': {'../x.py': 'x'}})
    assert res['failed'] is True and 'plain file name' in res['msg']
    assert not (tmp_path.parent / 'x.py').exists()


def test_refuses_a_path_that_is_a_file(run_module, host, tmp_path):
    (tmp_path / 'f').write_text('')
    res = run_module(file_set, {'path': str(tmp_path / 'f'), 'files': FILES})
    assert res['failed'] is True and 'not a directory' in res['msg']


def test_refuses_a_bad_mode(run_module, host, tmp_path):
    res = run_module(file_set, {'path': str(tmp_path), 'files': FILES, 'mode': 'rw-r--r--'})
    assert res['failed'] is True and 'octal' in res['msg']


def test_takes_a_mode_given_as_a_number(run_module, host, tmp_path):
    run_module(file_set, {'path': str(tmp_path), 'files': FILES, 'mode': 0o600})
    assert _mode(tmp_path / 'a.py') == 0o600
