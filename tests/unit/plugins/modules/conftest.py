# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process with a scripted run_command (no host touched)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    """exit_json() or fail_json() was called; ``result`` holds its keyword arguments."""

    def __init__(self, result):
        super(ModuleExit, self).__init__(result)
        self.result = result


class FakeHost(object):
    """Scripted commands: ``handlers`` maps a command name (basename of argv[0], after any
    ``timeout`` prefix) to a callable ``(argv) -> (rc, stdout, stderr)`` or a fixed tuple."""

    def __init__(self, monkeypatch, missing=()):
        self.handlers = {}
        self.calls = []
        self.warnings = []
        self.missing = set(missing)
        host = self

        def run_command(module, args, **kwargs):
            argv = list(args)
            host.calls.append((argv, kwargs))
            name = argv[0].rsplit('/', 1)[-1]
            if name == 'timeout':
                name = [a for a in argv[1:] if not a.startswith('-') and not a.isdigit()][0].rsplit('/', 1)[-1]
            handler = host.handlers.get(name)
            if handler is None:
                raise AssertionError('unexpected command: %r' % (argv,))
            return handler(argv) if callable(handler) else handler

        def get_bin_path(module, arg, required=False, opt_dirs=None):
            if arg in host.missing:
                if required:
                    module.fail_json(msg='Failed to find required executable "%s"' % arg)
                return None
            return arg if arg.startswith('/') else '/usr/bin/' + arg

        def exit_json(module, **kwargs):
            kwargs.setdefault('changed', False)
            raise ModuleExit(kwargs)

        def fail_json(module, msg, **kwargs):
            kwargs.update(failed=True, msg=msg)
            raise ModuleExit(kwargs)

        def warn(module, warning):
            host.warnings.append(warning)

        monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', warn)

    def commands(self):
        """The command names run, in order."""
        return [argv[0].rsplit('/', 1)[-1] for argv, dummy in self.calls]


@pytest.fixture
def host(monkeypatch):
    return FakeHost(monkeypatch)


@pytest.fixture
def run_module():
    """run_module(module, args, check_mode=False, diff=False) -> the result dict."""
    def run(module, args, check_mode=False, diff=False):
        args = dict(args or {})
        args['_ansible_check_mode'] = check_mode
        args['_ansible_diff'] = diff
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as exc:
                module.main()
        return exc.value.result
    return run
