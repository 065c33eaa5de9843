# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxy-side runtime helpers shared by the modules, ``wazo-mode`` and the HA check.

* ``KamailioRPC``: JSON-RPC client for Kamailio's ``jsonrpcs`` module, over its datagram unix
  socket (default) or its FIFO. Typed results; RPC faults raise ``KamailioRPCFault``; a missing
  socket / FIFO or a silent Kamailio raises ``KamailioUnavailable``. Never shells out to
  ``kamcmd``/``kamctl`` (they exit 0 on errors).
* Route-mode persistence: ``routemode.cfg`` (included by kamailio.cfg) read and written atomically.
* The maintenance lock (``maintenance.lock``, JSON ``{owner, reason, since}``).
* ``asterisk_channels_over_ssh``: ``core show channels count`` on a stack, through paramiko.

Standard library only (paramiko imported lazily), so the role can install this file beside
``wazo-mode`` unchanged.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import select
import socket
import stat
import tempfile
import time

DEFAULT_DGRAM_PATH = '/run/kamailio/kamailio_rpc.sock'
DEFAULT_FIFO_PATH = '/run/kamailio/kamailio_rpc.fifo'
DEFAULT_FIFO_REPLY_DIR = '/tmp'
DEFAULT_STATE_DIR = '/var/lib/wazo-maintenance'
ROUTEMODE_FILE = 'routemode.cfg'
LOCK_FILE = 'maintenance.lock'
ROUTEMODE_VAR = 'routemode'
BACKEND_PROFILE = 'backend'

# Upstream values of $shv(routemode).
MODES = {'normal': 0, 'maintenance': 2}
MODE_NAMES = dict((v, k) for k, v in MODES.items())
# Which dispatcher set takes the calls in each mode.
MODE_SET = {'normal': 1, 'maintenance': 2}

_MAX_REPLY = 4 * 1024 * 1024


class KamailioError(Exception):
    """Base class of this module's errors."""


class KamailioUnavailable(KamailioError):
    """No Kamailio answers on the RPC socket/FIFO (missing, refused, or timed out)."""


class KamailioRPCFault(KamailioError):
    """Kamailio answered with a JSON-RPC ``error`` object."""

    def __init__(self, code, message, method=None):
        self.code = code
        self.message = message
        self.method = method
        super(KamailioRPCFault, self).__init__(
            '%s: RPC fault %s: %s' % (method, code, message) if method else 'RPC fault %s: %s' % (code, message))


class RouteModeError(KamailioError):
    """The persisted route mode file or the running value is not what this collection writes."""


def mode_name(value):
    """0 -> 'normal', 2 -> 'maintenance'; anything else -> RouteModeError."""
    try:
        return MODE_NAMES[int(value)]
    except (KeyError, TypeError, ValueError):
        raise RouteModeError('unknown route mode value %r (expected 0 = normal or 2 = maintenance)' % (value,))


def mode_value(name):
    try:
        return MODES[name]
    except KeyError:
        raise RouteModeError('unknown route mode %r (expected one of %s)' % (name, ', '.join(sorted(MODES))))


class KamailioRPC:
    """JSON-RPC 2.0 client for Kamailio's jsonrpcs module.

    ``transport``: ``'dgram'`` (unix datagram socket, ``dgram_socket`` modparam) or ``'fifo'``
    (``fifo_name`` modparam; the reply comes back on a FIFO created in ``reply_dir``, which must
    be Kamailio's ``fifo_reply_dir``, ``/tmp`` by default).
    """

    def __init__(self, transport='dgram', path=None, timeout=3.0, reply_dir=DEFAULT_FIFO_REPLY_DIR):
        if transport not in ('dgram', 'fifo'):
            raise ValueError('transport must be dgram or fifo, not %r' % (transport,))
        self.transport = transport
        self.path = path or (DEFAULT_DGRAM_PATH if transport == 'dgram' else DEFAULT_FIFO_PATH)
        self.timeout = float(timeout)
        self.reply_dir = reply_dir
        self._id = 0

    # -- low level -----------------------------------------------------------------------------
    def _request(self, method, params):
        self._id += 1
        req = {'jsonrpc': '2.0', 'method': method, 'id': self._id}
        if params:
            req['params'] = list(params)
        return req

    def call(self, method, *params):
        """Call ``method`` with positional ``params``; return the reply's ``result``."""
        req = self._request(method, params)
        if self.transport == 'dgram':
            raw = self._call_dgram(req)
        else:
            raw = self._call_fifo(req)
        try:
            reply = json.loads(raw)
        except ValueError:
            raise KamailioError('%s: reply is not JSON: %r' % (method, raw[:300]))
        if not isinstance(reply, dict):
            raise KamailioError('%s: unexpected reply %r' % (method, reply))
        if 'error' in reply:
            err = reply['error'] or {}
            raise KamailioRPCFault(err.get('code'), err.get('message'), method)
        if 'result' not in reply:
            # Commands that add nothing to the reply (e.g. dispatcher.reload) answer no result.
            return None
        return reply['result']

    def _deadline_left(self, deadline, method):
        left = deadline - time.monotonic()
        if left <= 0:
            raise KamailioUnavailable('%s: no reply from Kamailio on %s within %.1f s'
                                      % (method, self.path, self.timeout))
        return left

    def _call_dgram(self, req):
        method = req['method']
        if not os.path.exists(self.path):
            raise KamailioUnavailable('Kamailio RPC socket %s does not exist (is Kamailio running with '
                                      'jsonrpcs dgram transport?)' % self.path)
        # Kamailio runs as its own user: our reply socket must be reachable and writable by it.
        tmpdir = tempfile.mkdtemp(prefix='wazo-mm-rpc.')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        local = os.path.join(tmpdir, 'reply.sock')
        try:
            os.chmod(tmpdir, 0o711)
            sock.bind(local)
            os.chmod(local, 0o666)
            try:
                sock.sendto(json.dumps(req).encode('utf-8'), self.path)
            except (OSError, socket.error) as exc:
                if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                    raise KamailioUnavailable('nobody listens on Kamailio RPC socket %s: %s' % (self.path, exc))
                raise KamailioUnavailable('cannot send to Kamailio RPC socket %s: %s' % (self.path, exc))
            deadline = time.monotonic() + self.timeout
            buf = b''
            while True:
                sock.settimeout(self._deadline_left(deadline, method))
                try:
                    chunk = sock.recv(262144)
                except socket.timeout:
                    raise KamailioUnavailable('%s: no reply from Kamailio on %s within %.1f s'
                                              % (method, self.path, self.timeout))
                buf += chunk
                if self._complete(buf, req['id']):
                    return buf.decode('utf-8', 'replace')
                if len(buf) > _MAX_REPLY:
                    raise KamailioError('%s: reply larger than %d bytes' % (method, _MAX_REPLY))
        finally:
            sock.close()
            for path in (local, tmpdir):
                try:
                    (os.unlink if path == local else os.rmdir)(path)
                except OSError:
                    pass

    @staticmethod
    def _complete(buf, req_id):
        try:
            reply = json.loads(buf.decode('utf-8'))
        except ValueError:
            return False
        return not isinstance(reply, dict) or reply.get('id') in (req_id, None)

    def _call_fifo(self, req):
        method = req['method']
        try:
            st = os.stat(self.path)
        except OSError:
            raise KamailioUnavailable('Kamailio RPC FIFO %s does not exist (is Kamailio running with '
                                      'jsonrpcs fifo transport?)' % self.path)
        if not stat.S_ISFIFO(st.st_mode):
            raise KamailioUnavailable('%s is not a FIFO' % self.path)
        reply_name = 'wazo_mm_rpc_%d_%s' % (os.getpid(), os.urandom(4).hex())
        reply_path = os.path.join(self.reply_dir, reply_name)
        os.mkfifo(reply_path, 0o600)
        rfd = wfd = None
        try:
            os.chmod(reply_path, 0o666)  # Kamailio (its own user) opens it for writing
            # Open our end first (non-blocking read end needs no writer) so Kamailio can open it.
            rfd = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                wfd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    raise KamailioUnavailable('nobody reads Kamailio RPC FIFO %s (Kamailio not running)' % self.path)
                raise KamailioUnavailable('cannot open Kamailio RPC FIFO %s: %s' % (self.path, exc))
            req = dict(req, reply_name=reply_name)
            data = (json.dumps(req) + '\n').encode('utf-8')
            if len(data) > select.PIPE_BUF:
                raise KamailioError('%s: request too large for an atomic FIFO write' % method)
            os.write(wfd, data)
            os.close(wfd)
            wfd = None
            deadline = time.monotonic() + self.timeout
            buf = b''
            poller = select.poll()
            poller.register(rfd, select.POLLIN | select.POLLHUP)
            while True:
                left = self._deadline_left(deadline, method)
                if not poller.poll(left * 1000):
                    continue
                chunk = os.read(rfd, 65536)
                if chunk:
                    buf += chunk
                    if self._complete(buf, req['id']):
                        return buf.decode('utf-8', 'replace')
                elif buf:
                    return buf.decode('utf-8', 'replace')  # writer closed: let call() judge the JSON
                else:
                    # POLLHUP before any data should not happen; avoid a busy loop.
                    time.sleep(0.01)
                if len(buf) > _MAX_REPLY:
                    raise KamailioError('%s: reply larger than %d bytes' % (method, _MAX_REPLY))
        finally:
            for fd in (rfd, wfd):
                if fd is not None:
                    os.close(fd)
            try:
                os.unlink(reply_path)
            except OSError:
                pass

    # -- helpers -------------------------------------------------------------------------------
    def shv_get(self, name):
        """Return the value of ``$shv(name)`` (int or str). Fault 404 if the shv does not exist."""
        res = self.call('pv.shvGet', name)
        if isinstance(res, dict) and 'value' in res:
            return res['value']
        if isinstance(res, list) and res and isinstance(res[0], dict) and 'value' in res[0]:
            return res[0]['value']
        raise KamailioError('pv.shvGet %s: unexpected result %r' % (name, res))

    def shv_set_int(self, name, value):
        return self.call('pv.shvSet', name, 'int', int(value))

    def get_route_mode(self):
        """Running route mode as a name ('normal' / 'maintenance')."""
        try:
            return mode_name(self.shv_get(ROUTEMODE_VAR))
        except KamailioRPCFault as exc:
            if exc.code == 404:
                raise RouteModeError('Kamailio has no $shv(%s): it does not run the wazo.maintenance_mode '
                                     'configuration (%s)' % (ROUTEMODE_VAR, exc))
            raise

    def set_route_mode(self, mode):
        """Set the running route mode ('normal'/'maintenance' or 0/2), then read it back."""
        name = mode if isinstance(mode, str) else mode_name(mode)
        value = mode_value(name)
        try:
            self.shv_set_int(ROUTEMODE_VAR, value)
        except KamailioRPCFault as exc:
            if exc.code == 404:
                raise RouteModeError('Kamailio has no $shv(%s): it does not run the wazo.maintenance_mode '
                                     'configuration (%s)' % (ROUTEMODE_VAR, exc))
            raise
        now = self.get_route_mode()
        if now != name:
            raise RouteModeError('route mode set to %s but Kamailio reads back %s' % (name, now))
        return now

    def profile_size(self, profile=BACKEND_PROFILE, value=None):
        """Number of dialogs in a dialog profile (optionally with ``value``), as an int."""
        params = [profile] if value is None else [profile, str(value)]
        res = self.call('dlg.profile_get_size', *params)
        if isinstance(res, dict):  # some versions wrap it: {"value": n} / {"size": n}
            for key in ('value', 'size'):
                if key in res:
                    res = res[key]
                    break
        try:
            return int(res)
        except (TypeError, ValueError):
            raise KamailioError('dlg.profile_get_size: unexpected result %r' % (res,))

    def backend_calls(self, setid):
        """Live dialogs anchored on dispatcher set ``setid`` (the ``backend`` profile)."""
        return self.profile_size(BACKEND_PROFILE, setid)

    def dispatcher_list(self):
        """``dispatcher.list`` flattened: ``[{'setid', 'uri', 'flags', 'priority', 'active', 'probing'}]``."""
        res = self.call('dispatcher.list')
        out = []
        for rec in ((res or {}).get('RECORDS') or []):
            s = rec.get('SET') or {}
            setid = s.get('ID')
            for t in s.get('TARGETS') or []:
                d = t.get('DEST') or {}
                flags = d.get('FLAGS', '')
                out.append({
                    'setid': setid,
                    'uri': d.get('URI'),
                    'flags': flags,
                    'priority': d.get('PRIORITY'),
                    'active': flags[:1] == 'A',
                    'probing': 'P' in flags[1:],
                })
        return out

    def ping(self):
        """True if Kamailio answers ``core.version``."""
        try:
            self.call('core.version')
            return True
        except KamailioUnavailable:
            return False


# -- route-mode persistence ------------------------------------------------------------------------
_ROUTEMODE_LINE = re.compile(r'^\s*modparam\(\s*"pv"\s*,\s*"shvset"\s*,\s*"routemode=i:(\d+)"\s*\)\s*$')


def routemode_file(state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, ROUTEMODE_FILE)


def render_routemode(mode):
    value = mode_value(mode) if isinstance(mode, str) else int(mode)
    mode_name(value)
    return ('# Route mode persisted by wazo.maintenance_mode (kamailio_mode, wazo-mode, HA check).\n'
            '# 0 = normal (primary), 2 = maintenance (secondary). Included by kamailio.cfg.\n'
            'modparam("pv", "shvset", "routemode=i:%d")\n' % value)


def read_persisted_mode(state_dir=DEFAULT_STATE_DIR):
    """Mode name in routemode.cfg, or None if the file does not exist."""
    path = routemode_file(state_dir)
    try:
        with open(path) as f:
            text = f.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    values = [m.group(1) for m in (_ROUTEMODE_LINE.match(line) for line in text.splitlines()) if m]
    if len(values) != 1:
        raise RouteModeError('%s: expected one modparam("pv", "shvset", "routemode=i:N") line, found %d'
                             % (path, len(values)))
    return mode_name(values[0])


def atomic_write(path, text, mode=0o644):
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename); shared by the HA check."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_persisted_mode(mode, state_dir=DEFAULT_STATE_DIR):
    """Atomically write routemode.cfg for ``mode`` (name or value). Returns True if it changed."""
    text = render_routemode(mode)
    path = routemode_file(state_dir)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except (IOError, OSError) as exc:
        if exc.errno != errno.ENOENT:
            raise
    atomic_write(path, text)
    return True


# -- maintenance lock ------------------------------------------------------------------------------
def lock_file(state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, LOCK_FILE)


def read_lock(state_dir=DEFAULT_STATE_DIR):
    """The lock as a dict ``{owner, reason, since}``, or None when there is no lock.

    An unreadable/corrupt lock still counts as held (``owner`` = ``'unknown'``): the HA check must
    not fail back because someone truncated the file.
    """
    path = lock_file(state_dir)
    try:
        with open(path) as f:
            text = f.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError('not an object')
    except ValueError:
        return {'owner': 'unknown', 'reason': 'unparsable lock file %s' % path, 'since': None}
    return {'owner': data.get('owner'), 'reason': data.get('reason'), 'since': data.get('since')}


def take_lock(owner, reason='', state_dir=DEFAULT_STATE_DIR, now=None):
    """Take the maintenance lock for ``owner``. Returns True if taken, False if ``owner`` already holds it.

    Raises ``LockHeld`` if another owner holds it.
    """
    current = read_lock(state_dir)
    if current is not None:
        if current.get('owner') == owner:
            return False
        raise LockHeld(current)
    since = now if now is not None else time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    path = lock_file(state_dir)
    data = json.dumps({'owner': owner, 'reason': reason, 'since': since}, sort_keys=True) + '\n'
    # O_EXCL: two writers racing cannot both believe they took it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, 'w') as f:
        f.write(data)
    return True


def release_lock(owner=None, state_dir=DEFAULT_STATE_DIR, force=False):
    """Release the lock. Returns True if removed, False if there was none.

    Raises ``LockHeld`` if held by someone other than ``owner`` (unless ``force``).
    """
    current = read_lock(state_dir)
    if current is None:
        return False
    if not force and owner is not None and current.get('owner') != owner:
        raise LockHeld(current)
    try:
        os.unlink(lock_file(state_dir))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return False
    return True


class LockHeld(KamailioError):
    def __init__(self, lock):
        self.lock = lock
        super(LockHeld, self).__init__('maintenance lock held by %s since %s (%s)'
                                       % (lock.get('owner'), lock.get('since'), lock.get('reason')))


# -- Asterisk on a stack, over SSH ----------------------------------------------------------------
CHANNELS_COUNT_CMD = "asterisk -rx 'core show channels count'"


class SSHCommandError(KamailioError):
    pass


def ssh_run(host, command, user='root', key_file='/root/.ssh/id_ed25519', port=22, timeout=10.0,
            known_hosts=None, accept_unknown_hosts=True):
    """Run ``command`` on ``host`` with paramiko; return (rc, stdout, stderr)."""
    import paramiko  # lazy: only the drain/status paths need it
    client = paramiko.SSHClient()
    try:
        if known_hosts:
            client.load_host_keys(known_hosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(
            paramiko.AutoAddPolicy() if accept_unknown_hosts else paramiko.RejectPolicy())
        client.connect(host, port=port, username=user, key_filename=key_file, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, allow_agent=False, look_for_keys=False)
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode('utf-8', 'replace')
        err = stderr.read().decode('utf-8', 'replace')
        rc = stdout.channel.recv_exit_status()
        return rc, out, err
    except (paramiko.SSHException, socket.error, OSError) as exc:
        raise SSHCommandError('ssh %s@%s:%s: %s' % (user, host, port, exc))
    finally:
        client.close()
