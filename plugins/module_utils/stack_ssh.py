# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSH from the proxy to a stack, with paramiko: the one host-key policy and the one set of options.

Policy: the stack's host key must already be known (the ssh_trust role records both stacks' keys in root's
``known_hosts`` on the proxy); an unknown or changed key is refused, never learnt on the fly, so a machine
in the middle cannot answer "0 calls" for a stack. ``known_hosts`` names another file to trust instead.

``ssh_common_argument_spec()`` gives every module that reaches a stack the same options (as
community.postgresql's ``postgres_common_argument_spec()`` does for its connection options).

Standard library only (paramiko imported when a connection is made): installed on the proxy beside
``wazo-mode`` and ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket

DEFAULT_USER = 'root'
DEFAULT_KEY = '/root/.ssh/id_ed25519'
DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 10.0


class StackSSHError(Exception):
    """The command could not be run on the stack (connection, authentication, host key, timeout)."""


def ssh_common_argument_spec():
    """Options of a module that runs a command on a stack from the proxy."""
    return dict(
        ssh_user=dict(type='str', default=DEFAULT_USER),
        ssh_key=dict(type='path', default=DEFAULT_KEY),
        ssh_port=dict(type='int', default=DEFAULT_PORT),
        ssh_timeout=dict(type='float', default=DEFAULT_TIMEOUT),
        ssh_known_hosts=dict(type='path'),
    )


def ssh_options(params):
    """The keyword arguments of ``ssh_run`` from a module's params (keys of ``ssh_common_argument_spec``)."""
    return dict(user=params['ssh_user'], key_file=params['ssh_key'], port=params['ssh_port'],
                timeout=params['ssh_timeout'], known_hosts=params['ssh_known_hosts'])


def ssh_run(host, command, user=DEFAULT_USER, key_file=DEFAULT_KEY, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT,
            known_hosts=None):
    """Run ``command`` on ``host``; return ``(rc, stdout, stderr)``. Raises StackSSHError."""
    import paramiko  # only the paths that reach a stack need it
    client = paramiko.SSHClient()
    try:
        if known_hosts:
            client.load_host_keys(known_hosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(host, port=port, username=user, key_filename=key_file, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, allow_agent=False, look_for_keys=False)
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode('utf-8', 'replace')
        err = stderr.read().decode('utf-8', 'replace')
        rc = stdout.channel.recv_exit_status()
        return rc, out, err
    except (paramiko.SSHException, socket.error, OSError) as exc:
        raise StackSSHError('ssh %s@%s:%s: %s' % (user, host, port, exc or exc.__class__.__name__))
    finally:
        client.close()
