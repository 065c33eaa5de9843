# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""proxy_commands: what the proxy's SSH key may run on a stack (the dispatcher sshd runs for that key).

Exact matches only, an empty command (interactive login) refused, refusals on stderr + syslog with exit 126,
list files that others could write ignored; the fixed commands are the very constants the callers send; the
roles' paths agree with the module's.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.machinery
import importlib.util
import io
import os
import stat

import pytest
import yaml

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import drain, proxy_commands as pc, stack_health

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
FAILOVER = ["systemctl restart wazo-agid", "asterisk -rx 'core reload'"]

# The lists must belong to root on a stack; here to whoever runs the tests (the owner seam of main()).
ME = os.geteuid()


class Exec:
    """The execv seam: records what would replace the process."""

    def __init__(self, error=None):
        self.calls = []
        self.error = error

    def __call__(self, path, argv):
        self.calls.append((path, argv))
        if self.error:
            raise self.error


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, priority, message):
        self.lines.append((priority, message))


def write_list(directory, name, lines, mode=0o644):
    path = directory / name
    path.write_text('# comment\n\n' + ''.join('  %s  \n' % line for line in lines))
    path.chmod(mode)
    return path


@pytest.fixture
def allow_dir(tmp_path):
    directory = tmp_path / 'proxy-commands.d'
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    write_list(directory, 'ha-check.list', FAILOVER)
    return directory


def dispatch(allow_dir, command, **env):
    environ = dict(env)
    if command is not None:
        environ['SSH_ORIGINAL_COMMAND'] = command
    environ.setdefault('SSH_CLIENT', '10.89.25.10 40000 22')
    execv, log, err = Exec(), Log(), io.StringIO()
    rc = pc.main(environ=environ, argv=[], directory=str(allow_dir), execv=execv, shell='/bin/bash',
                 stderr=err, log=log, owner=ME)
    return rc, execv, log, err.getvalue()


def test_fixed_commands_are_the_callers_constants():
    commands = [command for command, _source in pc.FIXED_COMMANDS]
    assert commands == ['true', drain.CHANNELS_COUNT_CMD, stack_health.REMOTE_COMMAND]
    assert drain.CHANNELS_COUNT_CMD == "asterisk -rx 'core show channels count'"


@pytest.mark.parametrize('command', ['true', drain.CHANNELS_COUNT_CMD, stack_health.REMOTE_COMMAND] + FAILOVER,
                         ids=['true', 'channels', 'health', 'failover-restart', 'failover-reload'])
def test_allowed_command_replaces_the_process_with_the_shell(allow_dir, command):
    rc, execv, log, err = dispatch(allow_dir, command)
    assert rc == 0 and err == ''
    assert execv.calls == [('/bin/bash', ['/bin/bash', '-c', command])]
    assert log.lines[-1][0] == pc.syslog.LOG_INFO
    assert 'running %s from 10.89.25.10' % pc.shown(command) in log.lines[-1][1]


@pytest.mark.parametrize('command', [
    'id', 'hostname', 'cat /etc/shadow',
    drain.CHANNELS_COUNT_CMD + '; id',            # an allowed command with more after it
    drain.CHANNELS_COUNT_CMD + ' ',                # not the same string
    ' true', 'true\nid', "asterisk -rx 'core restart now'",
    '# comment', 'sftp', 'internal-sftp', 'scp -t /root',
])
def test_anything_else_is_refused_and_nothing_runs(allow_dir, command):
    rc, execv, log, err = dispatch(allow_dir, command)
    assert rc == pc.REFUSED_RC == 126
    assert execv.calls == []
    assert err.startswith('wazo-mm-proxy-command: refused the command %r' % command[:pc.SHOWN_MAX])
    assert str(allow_dir) + '/*.list' in err
    assert log.lines == [(pc.syslog.LOG_WARNING, err.strip() + ' (from 10.89.25.10)')]


@pytest.mark.parametrize('command', [None, ''])
def test_an_interactive_login_is_refused(allow_dir, command):
    rc, execv, log, err = dispatch(allow_dir, command)
    assert rc == 126 and execv.calls == []
    assert 'refused an interactive login (no command)' in err
    assert log.lines[0][0] == pc.syslog.LOG_WARNING


def test_a_long_command_is_shown_cut():
    message = pc.refusal('x' * 5000)
    assert len(message) < 600 and "xxx...'" in message


def test_operator_list_adds_commands(allow_dir):
    write_list(allow_dir, 'operator.list', ["asterisk -rx 'core show channels verbose'"])
    allowed, problems = pc.allowed_commands(str(allow_dir), owner=ME)
    assert problems == []
    assert allowed["asterisk -rx 'core show channels verbose'"] == str(allow_dir / 'operator.list')
    assert allowed['systemctl restart wazo-agid'] == str(allow_dir / 'ha-check.list')
    # a command listed in a file and fixed as well keeps its fixed source
    write_list(allow_dir, 'zz.list', ['true'])
    assert pc.allowed_commands(str(allow_dir), owner=ME)[0]['true'] == 'ssh_trust verify'


def test_other_suffixes_are_not_read(allow_dir):
    write_list(allow_dir, 'operator.list.dpkg-old', ['id'])
    write_list(allow_dir, 'notes.txt', ['id'])
    assert 'id' not in pc.allowed_commands(str(allow_dir), owner=ME)[0]


def test_missing_directory_gives_the_fixed_commands_only(tmp_path):
    allowed, problems = pc.allowed_commands(str(tmp_path / 'absent'))
    assert set(allowed) == set(command for command, _s in pc.FIXED_COMMANDS) and problems == []


@pytest.mark.parametrize('mode', [0o664, 0o646])
def test_a_list_others_may_write_is_ignored(allow_dir, mode):
    write_list(allow_dir, 'operator.list', ['id'], mode=mode)
    rc, execv, log, err = dispatch(allow_dir, 'id')
    assert rc == 126 and execv.calls == []
    assert any('operator.list is writable by group or others: ignored' in line for _p, line in log.lines)
    # the other lists still count
    assert dispatch(allow_dir, FAILOVER[0])[0] == 0


def test_a_list_of_another_owner_is_ignored(allow_dir):
    """On a stack the owner is root (the default): files of anyone else grant nothing."""
    path = write_list(allow_dir, 'operator.list', ['id'])
    if ME == 0:
        os.chown(str(path), 65534, 65534)
        allowed, problems = pc.allowed_commands(str(allow_dir))
        assert problems == ['%s is not owned by root: ignored' % path]
    else:
        allowed, problems = pc.allowed_commands(str(allow_dir), owner=ME)
        assert 'id' in allowed
        allowed, problems = pc.allowed_commands(str(allow_dir))
        assert problems == ['%s is not owned by root: ignored' % allow_dir]
    assert 'id' not in allowed


def test_a_directory_others_may_write_is_ignored(allow_dir):
    allow_dir.chmod(0o777)
    allowed, problems = pc.allowed_commands(str(allow_dir), owner=ME)
    assert FAILOVER[0] not in allowed and 'true' in allowed
    assert problems == ['%s is writable by group or others: ignored' % allow_dir]


def test_a_list_that_is_not_a_file_is_ignored(allow_dir):
    (allow_dir / 'dir.list').mkdir()
    allowed, problems = pc.allowed_commands(str(allow_dir), owner=ME)
    assert FAILOVER[0] in allowed
    assert problems == ['cannot read %s: [Errno 21] Is a directory: %r: ignored'
                        % (allow_dir / 'dir.list', str(allow_dir / 'dir.list'))]


def test_a_command_that_cannot_start_is_reported(allow_dir):
    execv = Exec(OSError(2, 'No such file or directory'))
    err = io.StringIO()
    rc = pc.main(environ={'SSH_ORIGINAL_COMMAND': 'true'}, argv=[], directory=str(allow_dir), execv=execv,
                 shell='/nonexistent/sh', stderr=err, log=Log(), owner=ME)
    assert rc == 126 and 'cannot run' in err.getvalue()


def test_list_option_prints_the_allow_list(allow_dir):
    out = io.StringIO()
    assert pc.main(environ={}, argv=['--list'], directory=str(allow_dir), stdout=out, log=Log(), owner=ME) == 0
    text = out.getvalue()
    assert "ssh_trust verify: 'true'" in text
    assert "%s: \"asterisk -rx 'core reload'\"" % (allow_dir / 'ha-check.list') in text
    err = io.StringIO()
    assert pc.main(environ={}, argv=['--bogus'], directory=str(allow_dir), stderr=err, log=Log()) == 2


def test_parse_list():
    assert pc.parse_list('# c\n\n  a b  \n#x\nc\n') == ['a b', 'c']


def test_login_shell_is_the_accounts():
    import pwd
    assert pc.login_shell() == (pwd.getpwuid(os.getuid()).pw_shell or '/bin/sh')


def _vars(role):
    with open(os.path.join(ROOT, 'roles', role, 'vars', 'main.yml')) as handle:
        return yaml.safe_load(handle)


def _dispatcher_script():
    path = os.path.join(ROOT, 'roles', 'ssh_trust', 'files', 'wazo-mm-proxy-command')
    loader = importlib.machinery.SourceFileLoader('wazo_mm_proxy_command', path)
    spec = importlib.util.spec_from_loader('wazo_mm_proxy_command', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return path, module


def test_roles_and_dispatcher_use_the_modules_paths():
    ssh_trust, ha_check = _vars('ssh_trust'), _vars('ha_check')
    assert ssh_trust['__wazo_mm_ssh_trust_allow_dir'] == pc.ALLOW_DIR
    assert ha_check['__wazo_mm_ha_check_proxy_commands_dir'] == pc.ALLOW_DIR
    path, script = _dispatcher_script()
    assert ssh_trust['__wazo_mm_ssh_trust_lib_dir'] == script.LIBDIR
    assert script.REFUSED_RC == pc.REFUSED_RC
    assert script.main is pc.main or script.main.__code__.co_filename.endswith('proxy_commands.py')
    assert os.path.basename(ssh_trust['__wazo_mm_ssh_trust_dispatcher']) == pc.PROGRAM == os.path.basename(path)
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o111
    assert 'command="{{ __wazo_mm_ssh_trust_dispatcher }}"' in ssh_trust['__wazo_mm_ssh_trust_proxy_key_options']
    assert 'restrict' in ssh_trust['__wazo_mm_ssh_trust_proxy_key_options'].split(',')


def test_dispatcher_installs_every_module_it_imports():
    """The stacks get proxy_commands.py and every collection module_utils it imports, recursively."""
    import re
    wanted, todo = set(), ['proxy_commands.py']
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        with open(os.path.join(ROOT, 'plugins', 'module_utils', name)) as handle:
            todo += ['%s.py' % m for m in re.findall(
                r'^from ansible_collections\.wazo\.maintenance_mode\.plugins\.module_utils\.(\w+) import',
                handle.read(), re.M)]
    assert set(_vars('ssh_trust')['__wazo_mm_ssh_trust_dispatcher_modules']) == wanted
