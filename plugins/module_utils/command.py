# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection's modules run a command on a host (community.general's CmdRunner is the model).

* C locale always (the output is parsed: ``apt-cache policy``, ``asterisk -rx``, ``wazo-service status``);
* a time limit through coreutils ``timeout --kill-after`` when asked, reported as ``timed_out``;
* check mode: a command declared as changing the host is not run (``skipped``), a read-only one is.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
# Exit codes of `timeout`: 124 the command was stopped, 137 it had to be killed.
TIMEOUT_RCS = (124, 137)
SBIN_DIRS = ['/usr/sbin', '/sbin']

CommandResult = namedtuple('CommandResult', 'rc out err cmd timed_out skipped')


class CommandRunner(object):
    """Runs argv lists for an AnsibleModule."""

    def __init__(self, module, environ=None):
        self.module = module
        self.environ = dict(C_LOCALE, **(environ or {}))

    def bin(self, name):
        """Absolute path of ``name`` (also looked up in the sbin directories); fails the module if missing."""
        return self.module.get_bin_path(name, required=True, opt_dirs=SBIN_DIRS)

    def run(self, argv, timeout=0, kill_after=5, changes=False, environ=None, **kwargs):
        """Run ``argv``; return a CommandResult. ``changes``: skipped in check mode."""
        cmd = list(argv)
        if changes and self.module.check_mode:
            return CommandResult(None, '', '', cmd, False, True)
        full = cmd
        if timeout:
            full = [self.bin('timeout'), '--kill-after=%d' % kill_after, str(int(timeout))] + cmd
        env = dict(self.environ, **(environ or {}))
        rc, out, err = self.module.run_command(full, environ_update=env, **kwargs)
        return CommandResult(rc, out or '', err or '', cmd, bool(timeout) and rc in TIMEOUT_RCS, False)
