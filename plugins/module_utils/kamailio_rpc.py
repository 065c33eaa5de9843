# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON-RPC client for Kamailio's ``jsonrpcs`` module, over its datagram unix socket (default) or its FIFO.

Typed results; RPC faults raise ``KamailioRPCFault``; a missing socket / FIFO or a silent Kamailio raises
``KamailioUnavailable``. Never shells out to ``kamcmd``/``kamctl`` (they exit 0 on errors). The route mode
on top of it is in ``route_mode``; the lock in ``maintenance_lock``.

Replies cannot be forged by another local user: the reply socket (or FIFO) is reachable only by its owner and
Kamailio's group (a fresh directory of mode 0710, the socket 0620, group = the group of Kamailio's RPC
socket), request ids are random, and a reply whose id is not the request's is rejected.

Standard library only: installed on the proxy beside ``wazo-mode`` and ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import random
import select
import socket
import stat
import tempfile
import time

DEFAULT_DGRAM_PATH = '/run/kamailio/kamailio_rpc.sock'
DEFAULT_FIFO_PATH = '/run/kamailio/kamailio_rpc.fifo'
DEFAULT_FIFO_REPLY_DIR = '/tmp'
BACKEND_PROFILE = 'backend'

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
        # A random start: a local user cannot guess the id of the next request.
        self._id = random.SystemRandom().randrange(1, 2 ** 30)

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
        # Kamailio runs as its own user: our reply socket must be reachable and writable by it, and by nobody
        # else (mkdtemp makes a 0700 directory of ours; Kamailio's group is let in below).
        tmpdir = tempfile.mkdtemp(prefix='wazo-mm-rpc.')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        local = os.path.join(tmpdir, 'reply.sock')
        try:
            peer = os.stat(self.path)
            self._share_with_peer(tmpdir, peer, 0o710)
            sock.bind(local)
            self._share_with_peer(local, peer, 0o620)
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
    def _share_with_peer(path, peer, mode):
        """Give ``path`` (ours) to the group of Kamailio's RPC endpoint ``peer`` (a stat result) with ``mode``;
        when we cannot (not root, not in that group) but Kamailio runs as our user, keep it to ourselves."""
        try:
            os.chown(path, -1, peer.st_gid)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise
            if peer.st_uid != os.geteuid():
                raise KamailioUnavailable(
                    'cannot give Kamailio (uid %d, gid %d) access to a private reply endpoint: run as root or '
                    'as a member of group %d' % (peer.st_uid, peer.st_gid, peer.st_gid))
            mode &= 0o700
        os.chmod(path, mode)

    @staticmethod
    def _complete(buf, req_id):
        """True when ``buf`` is a whole JSON reply to request ``req_id``; a reply to another id is rejected."""
        try:
            reply = json.loads(buf.decode('utf-8'))
        except ValueError:
            return False
        if isinstance(reply, dict) and reply.get('id') != req_id:
            raise KamailioError('rejected a reply with id %r to request id %r (not from Kamailio?)'
                                % (reply.get('id'), req_id))
        return True

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
            # Kamailio (its own user) opens it for writing; nobody else may.
            self._share_with_peer(reply_path, st, 0o620)
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
