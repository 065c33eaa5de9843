# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the proxy's SSH key may run on a stack: the one allow-list and its check.

The ssh_trust role authorizes the proxy's key for root on both stacks with
``from="<proxy>",restrict,command="/usr/local/sbin/wazo-mm-proxy-command"``: whatever the client asks, sshd
runs that dispatcher (``roles/ssh_trust/files/wazo-mm-proxy-command``), with the requested command in
``SSH_ORIGINAL_COMMAND``. The dispatcher calls :func:`main`, which runs the command (with the account's login
shell, as sshd would have) only when it is **exactly** one of:

- the fixed commands the collection's own code sends (:data:`FIXED_COMMANDS`): ``true`` (ssh_trust's
  verify), Asterisk's channel count (``drain.CHANNELS_COUNT_CMD``: ``wait_for_drain``, ``wazo-mode``) and the
  health probe (``stack_health.REMOTE_COMMAND``: the ``stack_health`` module);
- a line of a ``*.list`` file in :data:`ALLOW_DIR` (one command a line, blank lines and ``#`` comments
  ignored, each line stripped): ``ha-check.list`` written by the ha_check role (its failover commands on the
  secondary, its failback commands on the primary) and ``operator.list`` written by ssh_trust
  (``wazo_mm_ssh_trust_proxy_extra_commands``). A file or directory that is not root's, or that others may
  write, is ignored (and logged): the dispatcher runs as root.

Anything else (another command, an interactive login, sftp/scp) is refused: a message on stderr naming the
command and where the allow-list is, a line in the journal (syslog, facility authpriv, tag
``wazo-mm-proxy-command``), exit code :data:`REFUSED_RC`. The comparison is on the whole string: no
pattern, no argument of an allowed command can be changed.

Installed on the stacks under its import path (with drain.py, asterisk.py, stack_health.py and
wazo_upgrade.py, where the fixed commands come from) by the ssh_trust role. Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import pwd
import stat
import sys
import syslog

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.drain import CHANNELS_COUNT_CMD
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_health import (
    REMOTE_COMMAND as HEALTH_COMMAND,
)

PROGRAM = 'wazo-mm-proxy-command'
ALLOW_DIR = '/etc/wazo-maintenance/proxy-commands.d'
ALLOW_SUFFIX = '.list'
# What a shell returns for "found but cannot be run".
REFUSED_RC = 126
TRUST_CHECK_CMD = 'true'
# (command, who sends it): the commands the collection's own code runs over the proxy's key.
FIXED_COMMANDS = (
    (TRUST_CHECK_CMD, 'ssh_trust verify'),
    (CHANNELS_COUNT_CMD, 'Asterisk channel count (wait_for_drain, wazo-mode)'),
    (HEALTH_COMMAND, 'health probe (stack_health)'),
)
# Longest part of a refused command quoted in a message or a log line.
SHOWN_MAX = 200


def shown(command):
    """A command as messages show it: quoted, control characters escaped, at most SHOWN_MAX characters."""
    text = command if len(command) <= SHOWN_MAX else command[:SHOWN_MAX] + '...'
    return repr(text)


def parse_list(text):
    """The commands of an allow-list file: one a line, stripped; blank lines and ``#`` comments skipped."""
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            commands.append(line)
    return commands


def _untrusted(path, st, owner=0):
    """Why a file or directory may not grant root commands (None when it may): root's, others cannot write."""
    if st.st_uid != owner:
        return '%s is not owned by %s' % (path, 'root' if owner == 0 else 'uid %d' % owner)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return '%s is writable by group or others' % path
    return None


def allowed_commands(directory=ALLOW_DIR, fixed=FIXED_COMMANDS, owner=0):
    """``({command: source}, problems)``: the fixed commands, then every line of ``directory/*.list`` (sorted).

    A missing directory gives the fixed commands only. The directory and the files must belong to ``owner``
    (root: the dispatcher runs as root) and be writable by it only; ``problems`` lists what was ignored and why.
    """
    allowed = {}
    problems = []
    for command, source in fixed:
        allowed.setdefault(command, source)
    try:
        dir_stat = os.stat(directory)
    except OSError:
        return allowed, problems
    why = _untrusted(directory, dir_stat, owner) if stat.S_ISDIR(dir_stat.st_mode) else '%s is not a directory' % directory
    if why:
        problems.append('%s: ignored' % why)
        return allowed, problems
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(ALLOW_SUFFIX))
    except OSError as exc:
        problems.append('cannot list %s: %s' % (directory, exc))
        return allowed, problems
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, 'rb') as handle:
                file_stat = os.fstat(handle.fileno())
                why = (_untrusted(path, file_stat, owner) if stat.S_ISREG(file_stat.st_mode)
                       else '%s is not a regular file' % path)
                if why:
                    problems.append('%s: ignored' % why)
                    continue
                text = handle.read().decode('utf-8')
        except (OSError, ValueError) as exc:
            problems.append('cannot read %s: %s: ignored' % (path, exc))
            continue
        for command in parse_list(text):
            allowed.setdefault(command, path)
    return allowed, problems


def check(command, allowed):
    """Where ``command`` is allowed (a source from :func:`allowed_commands`), or None: exact match only."""
    if not command:
        return None
    return allowed.get(command)


def refusal(command, directory=ALLOW_DIR):
    """The message of a refused command (or of an interactive login when ``command`` is empty)."""
    what = ('an interactive login (no command)' if not command else 'the command %s' % shown(command))
    return ('%s: refused %s: the proxy\'s SSH key runs only the collection\'s fixed commands and the lines of '
            '%s/*%s (see %s --list on this host)' % (PROGRAM, what, directory, ALLOW_SUFFIX, PROGRAM))


def login_shell():
    """The account's login shell (what sshd runs a command with), /bin/sh when it has none."""
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or '/bin/sh'
    except KeyError:
        return '/bin/sh'


def syslog_log(priority, message):
    """One line in the journal (syslog, facility authpriv)."""
    syslog.openlog(PROGRAM, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    syslog.syslog(priority, message)


def describe(directory=ALLOW_DIR, owner=0):
    """The allow-list as ``--list`` prints it: one ``<source>: <command>`` a line, then what was ignored."""
    allowed, problems = allowed_commands(directory, owner=owner)
    lines = ['%s: %s' % (source, shown(command)) for command, source in allowed.items()]
    lines += ['ignored: %s' % problem for problem in problems]
    return '\n'.join(lines) + '\n'


def main(environ=None, argv=None, directory=ALLOW_DIR, execv=os.execv, shell=None, stdout=None, stderr=None,
         log=syslog_log, owner=0):
    """sshd's forced command: run ``SSH_ORIGINAL_COMMAND`` if allowed (this process becomes it), else refuse.

    Returns the exit code (REFUSED_RC when refused); with ``--list`` prints the allow-list and returns 0.
    """
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if argv == ['--list']:
        stdout.write(describe(directory, owner))
        return 0
    if argv:
        stderr.write('usage: %s [--list] (run by sshd for the proxy\'s key, the command in SSH_ORIGINAL_COMMAND)\n'
                     % PROGRAM)
        return 2
    command = environ.get('SSH_ORIGINAL_COMMAND', '')
    client = (environ.get('SSH_CLIENT') or 'unknown').split(' ')[0]
    allowed, problems = allowed_commands(directory, owner=owner)
    for problem in problems:
        log(syslog.LOG_WARNING, problem)
    source = check(command, allowed)
    if source is None:
        message = refusal(command, directory)
        stderr.write(message + '\n')
        stderr.flush()
        log(syslog.LOG_WARNING, '%s (from %s)' % (message, client))
        return REFUSED_RC
    log(syslog.LOG_INFO, 'running %s from %s (allowed by %s)' % (shown(command), client, source))
    shell = shell or login_shell()
    try:
        execv(shell, [shell, '-c', command])
    except OSError as exc:
        stderr.write('%s: cannot run %s with %s: %s\n' % (PROGRAM, shown(command), shell, exc))
        return REFUSED_RC
    return 0
