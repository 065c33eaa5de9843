# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one-section INI reader of the proxy daemons (HA check, agent sync)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._ini_section import read_section


class Bad(Exception):
    pass


@pytest.mark.parametrize('text, error', [
    (None, 'cannot read'),
    ('no section header\n', 'File contains no section headers'),
    ('[other]\na = 1\n', 'no [main] section'),
    ('[main]\na = 1\n[other]\n', 'unknown section [other]'),
    ('[main]\nb = 1\n', "unknown key 'b' in [main]"),
])
def test_refused_with_the_path_and_the_reason(tmp_path, text, error):
    path = tmp_path / 'x.conf'
    if text is not None:
        path.write_text(text)
    with pytest.raises(Bad) as exc:
        read_section(str(path), 'main', {'a'}, Bad)
    assert error in str(exc.value) and str(path) in str(exc.value)


def test_the_section_is_returned(tmp_path):
    path = tmp_path / 'x.conf'
    path.write_text('[main]\na = 1 \n')
    assert read_section(str(path), 'main', {'a'})['a'].strip() == '1'
