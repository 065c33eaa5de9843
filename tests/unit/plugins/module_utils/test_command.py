# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""command.CommandRunner: C locale, time limit, check mode."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner


class FakeModule:
    def __init__(self, check_mode=False, rc=0):
        self.check_mode, self.rc, self.calls = check_mode, rc, []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return '/usr/bin/' + name

    def run_command(self, argv, environ_update=None, **kwargs):
        self.calls.append((argv, environ_update))
        return self.rc, 'out', ''


def test_c_locale_and_time_limit():
    module = FakeModule(rc=124)
    res = CommandRunner(module).run(['/usr/sbin/asterisk', '-rx', 'core show channels count'], timeout=30)
    argv, env = module.calls[0]
    assert argv == ['/usr/bin/timeout', '--kill-after=5', '30', '/usr/sbin/asterisk', '-rx', 'core show channels count']
    assert env['LC_ALL'] == 'C' and env['LANG'] == 'C'
    assert res.timed_out and res.cmd == ['/usr/sbin/asterisk', '-rx', 'core show channels count']


def test_check_mode_skips_only_commands_that_change_the_host():
    module = FakeModule(check_mode=True)
    runner = CommandRunner(module, environ={'DEBIAN_FRONTEND': 'noninteractive'})
    assert runner.run(['wazo-upgrade', '-f'], changes=True).skipped and module.calls == []
    res = runner.run(['apt-cache', 'policy', 'wazo-platform'])
    assert not res.skipped and res.rc == 0 and module.calls[0][1]['DEBIAN_FRONTEND'] == 'noninteractive'
