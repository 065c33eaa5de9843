# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kamailio_rpc without Kamailio: a fake jsonrpcs peer on a unix datagram socket and on a FIFO."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import select
import socket
import threading

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import kamailio_rpc as k
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm


class FakeDgramKamailio:
    """Answers each request with handler(request) -> reply dict (or None: stay silent)."""

    def __init__(self, path, handler):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(5)
        self.handler = handler
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        for _i in range(20):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                return
            req = json.loads(data)
            self.requests.append(req)
            reply = self.handler(req)
            if reply is not None:
                self.sock.sendto(json.dumps(dict(reply, jsonrpc='2.0', id=req['id'])).encode(), addr)

    def close(self):
        self.sock.close()


def shv_handler(store):
    def handler(req):
        m, p = req['method'], req.get('params', [])
        if m == 'pv.shvGet':
            if p[0] not in store:
                return {'error': {'code': 404, 'message': 'Variable not found'}}
            return {'result': {'name': p[0], 'type': 'int', 'value': store[p[0]]}}
        if m == 'pv.shvSet':
            if p[0] not in store:
                return {'error': {'code': 404, 'message': 'Variable not found'}}
            store[p[0]] = p[2]
            return {'result': 'Ok. Variable set to new value.'}
        if m == 'dlg.profile_get_size':
            return {'result': {'backend': {'1': 3, '2': 1}}[p[0]][p[1]]}
        if m == 'dispatcher.list':
            return {'result': {'NRSETS': 1, 'RECORDS': [{'SET': {'ID': 1, 'TARGETS': [
                {'DEST': {'URI': 'sip:10.0.0.1:5060', 'FLAGS': 'IP', 'PRIORITY': 0}}]}}]}}
        return {'error': {'code': 500, 'message': 'Method Not Found'}}
    return handler


@pytest.fixture
def dgram(tmp_path):
    store = {'routemode': 0}
    path = str(tmp_path / 'rpc.sock')
    fake = FakeDgramKamailio(path, shv_handler(store))
    yield k.KamailioRPC('dgram', path, timeout=2), store, fake
    fake.close()


def test_route_mode_roundtrip(dgram, tmp_path):
    rpc, store, fake = dgram
    assert rm.running_mode(rpc) == 'normal'
    assert rm.switch(rpc, 'maintenance', str(tmp_path)) == ('normal', 'maintenance')
    assert rm.read_persisted_mode(str(tmp_path)) == 'maintenance'
    assert store['routemode'] == 2
    assert fake.requests[2]['params'] == ['routemode', 'int', 2]  # after two reads: the test's, switch's


def test_typed_results(dgram):
    rpc, _store, _fake = dgram
    assert rpc.profile_size('backend', 1) == 3 and rpc.backend_calls(2) == 1
    assert rpc.dispatcher_list() == [{'setid': 1, 'uri': 'sip:10.0.0.1:5060', 'flags': 'IP', 'priority': 0,
                                      'active': False, 'probing': True}]


def test_faults_raise(dgram):
    rpc, store, _fake = dgram
    with pytest.raises(k.KamailioRPCFault) as e:
        rpc.call('no.such')
    assert (e.value.code, e.value.message) == (500, 'Method Not Found')
    del store['routemode']
    with pytest.raises(rm.RouteModeError, match='does not run the wazo.maintenance_mode'):
        rm.running_mode(rpc)


def test_unavailable(tmp_path):
    with pytest.raises(k.KamailioUnavailable, match='does not exist'):
        k.KamailioRPC('dgram', str(tmp_path / 'none')).call('core.version')
    with pytest.raises(k.KamailioUnavailable, match='does not exist'):
        k.KamailioRPC('fifo', str(tmp_path / 'none')).call('core.version')
    # a socket file nobody listens on
    path = str(tmp_path / 'stale.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.close()
    with pytest.raises(k.KamailioUnavailable, match='nobody'):
        k.KamailioRPC('dgram', path, timeout=0.5).call('core.version')
    # a FIFO nobody reads
    fifo = str(tmp_path / 'stale.fifo')
    os.mkfifo(fifo)
    with pytest.raises(k.KamailioUnavailable, match='nobody reads'):
        k.KamailioRPC('fifo', fifo, timeout=0.5, reply_dir=str(tmp_path)).call('core.version')


def test_silent_peer_times_out(tmp_path):
    path = str(tmp_path / 'rpc.sock')
    fake = FakeDgramKamailio(path, lambda req: None)
    try:
        with pytest.raises(k.KamailioUnavailable, match='no reply'):
            k.KamailioRPC('dgram', path, timeout=0.3).call('core.version')
    finally:
        fake.close()


def test_fifo_transport(tmp_path):
    fifo = str(tmp_path / 'rpc.fifo')
    os.mkfifo(fifo)
    seen = []

    # Open the read end before the client writes, as a running Kamailio has it open (no race).
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

    def serve():
        select.select([rfd], [], [], 3)
        req = json.loads(os.read(rfd, 65536).decode().splitlines()[0])
        os.close(rfd)
        seen.append(req)
        with open(os.path.join(str(tmp_path), req['reply_name']), 'w') as r:
            r.write(json.dumps({'jsonrpc': '2.0', 'id': req['id'],
                                'result': {'name': 'routemode', 'type': 'int', 'value': 2}}))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    rpc = k.KamailioRPC('fifo', fifo, timeout=3, reply_dir=str(tmp_path))
    assert rm.running_mode(rpc) == 'maintenance'
    t.join(3)
    assert seen[0]['method'] == 'pv.shvGet' and seen[0]['params'] == ['routemode']
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith('wazo_mm_rpc_')]  # reply FIFO removed


def test_persisted_mode(tmp_path):
    d = str(tmp_path)
    assert rm.read_persisted_mode(d) is None
    assert rm.write_persisted_mode('maintenance', d) is True
    assert rm.write_persisted_mode('maintenance', d) is False
    assert rm.read_persisted_mode(d) == 'maintenance'
    text = open(rm.routemode_file(d)).read()
    assert 'modparam("pv", "shvset", "routemode=i:2")' in text
    assert oct(os.stat(rm.routemode_file(d)).st_mode & 0o777) == '0o644'
    rm.write_persisted_mode(0, d)
    assert rm.read_persisted_mode(d) == 'normal'
    assert os.listdir(d) == ['routemode.cfg']  # no temp file left
    with open(rm.routemode_file(d), 'w') as f:
        f.write('modparam("pv", "shvset", "routemode=i:7")\n')
    with pytest.raises(rm.RouteModeError):
        rm.read_persisted_mode(d)
    with open(rm.routemode_file(d), 'w') as f:
        f.write('# empty\n')
    with pytest.raises(rm.RouteModeError):
        rm.read_persisted_mode(d)
    with pytest.raises(rm.RouteModeError):
        rm.write_persisted_mode('sideways', d)


def test_lock(tmp_path):
    d = str(tmp_path)
    assert ml.read_lock(d) is None
    assert ml.take_lock('alice', 'why', d, now='2026-01-01T00:00:00Z') is True
    assert ml.read_lock(d) == {'owner': 'alice', 'reason': 'why', 'since': '2026-01-01T00:00:00Z'}
    assert ml.take_lock('alice', 'again', d) is False
    with pytest.raises(ml.LockHeld, match='alice'):
        ml.take_lock('bob', '', d)
    with pytest.raises(ml.LockHeld):
        ml.release_lock('bob', d)
    assert ml.release_lock('alice', d) is True
    assert ml.release_lock('alice', d) is False
    with open(ml.lock_file(d), 'w') as f:
        f.write('garbage')
    assert ml.read_lock(d)['owner'] == 'unknown'  # a corrupt lock still counts as held
    assert ml.release_lock('x', d, force=True) is True


def test_mode_names():
    assert rm.mode_name(0) == 'normal' and rm.mode_name('2') == 'maintenance'
    with pytest.raises(rm.RouteModeError):
        rm.mode_name(1)
    assert rm.mode_value('maintenance') == 2


# -- replies cannot be forged by another local user ------------------------------------------------
def test_a_reply_to_another_id_is_rejected(tmp_path):
    path = str(tmp_path / 'rpc.sock')
    serve = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    serve.bind(path)

    def wrong_id():  # a reply, but to another request
        data, addr = serve.recvfrom(65536)
        req = json.loads(data)
        serve.sendto(json.dumps({'jsonrpc': '2.0', 'id': req['id'] + 1, 'result': 'forged'}).encode(), addr)

    thread = threading.Thread(target=wrong_id, daemon=True)
    thread.start()
    try:
        with pytest.raises(k.KamailioError, match='rejected a reply with id'):
            k.KamailioRPC('dgram', path, timeout=2).call('core.version')
    finally:
        thread.join(5)
        serve.close()


def test_request_ids_are_not_predictable():
    assert k.KamailioRPC('dgram', '/nonexistent')._id != k.KamailioRPC('dgram', '/nonexistent')._id


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to act as another local user')
def test_another_local_user_cannot_reach_the_reply_socket(tmp_path):
    """While a call waits for its reply, a process of another user (nobody) tries to send a forged reply."""
    os.chmod(str(tmp_path), 0o755)
    path = str(tmp_path / 'rpc.sock')
    serve = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    serve.bind(path)
    attempt = {}

    def forge_then_answer():
        data, addr = serve.recvfrom(65536)
        req = json.loads(data)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the other local user
            os.close(read_end)
            try:
                os.setgid(65534)
                os.setuid(65534)
                forger = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                forger.sendto(json.dumps({'jsonrpc': '2.0', 'id': req['id'], 'result': 'forged'}).encode(), addr)
                os.write(write_end, b'sent')
            except OSError as exc:
                os.write(write_end, ('refused: %s' % exc.strerror).encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, 'rb') as handle:
            attempt['result'] = handle.read().decode()
        serve.sendto(json.dumps({'jsonrpc': '2.0', 'id': req['id'], 'result': 'genuine'}).encode(), addr)

    thread = threading.Thread(target=forge_then_answer, daemon=True)
    thread.start()
    try:
        assert k.KamailioRPC('dgram', path, timeout=5).call('core.version') == 'genuine'
    finally:
        thread.join(5)
        serve.close()
    assert attempt['result'].startswith('refused: Permission denied'), attempt
