# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy is no open relay and floods of in-dialog requests are banned (real Kamailio, loopback only).

A forged in-dialog request (a To-tag and a Route to the proxy) from a phone's address must not reach an
address that is not a stack; 2000 in-dialog requests in about a second from one source get it banned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time
import uuid

import pytest

from conftest import PROXY, PRIMARY
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import KamailioRPCFault

VICTIM = ('127.0.0.30', 15170)


def in_dialog_options(source, target, call_id=None):
    return ('OPTIONS sip:probe@%s:%d SIP/2.0\r\n'
            'Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s;rport\r\n'
            'Route: <sip:%s:%d;lr>\r\n'
            'Max-Forwards: 70\r\n'
            'From: <sip:attacker@%s>;tag=forged1\r\n'
            'To: <sip:probe@%s>;tag=forged2\r\n'
            'Call-ID: %s\r\n'
            'CSeq: 2 OPTIONS\r\n'
            'Content-Length: 0\r\n\r\n'
            % (target[0], target[1], source[0], source[1], uuid.uuid4().hex, PROXY[0], PROXY[1],
               source[0], target[0], call_id or uuid.uuid4().hex)).encode()


def udp(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(address)
    return sock


def test_a_forged_in_dialog_request_is_not_relayed(env, kamailio, normal_mode):
    victim = udp(VICTIM)
    phone = udp(('127.0.0.20', 0))
    try:
        phone.sendto(in_dialog_options(phone.getsockname(), VICTIM), PROXY)
        phone.settimeout(3)
        reply = phone.recv(4096).decode()
        assert reply.startswith('SIP/2.0 403'), reply
        victim.settimeout(2)
        with pytest.raises(socket.timeout):
            victim.recv(4096)
    finally:
        victim.close()
        phone.close()


def test_an_in_dialog_flood_gets_the_source_banned(env, kamailio, normal_mode, rpc):
    flooder = udp(('127.0.0.21', 0))
    try:
        with pytest.raises(KamailioRPCFault):
            rpc.call('htable.get', 'ipban', '127.0.0.21')
        start = time.monotonic()
        for i in range(2000):  # bounded: 2000 datagrams to the loopback proxy in about 1.6 s
            flooder.sendto(in_dialog_options(flooder.getsockname(), PRIMARY), PROXY)
            if i % 50 == 49:  # in bursts the socket buffers hold
                time.sleep(0.04)
        assert time.monotonic() - start < 2.5
        deadline = time.monotonic() + 5
        banned = None
        while time.monotonic() < deadline and banned is None:
            try:
                banned = rpc.call('htable.get', 'ipban', '127.0.0.21')
            except KamailioRPCFault:
                time.sleep(0.2)
        assert banned is not None, 'the flooding source was not banned'
    finally:
        flooder.close()
        try:
            rpc.call('htable.delete', 'ipban', '127.0.0.21')
        except KamailioRPCFault:
            pass
