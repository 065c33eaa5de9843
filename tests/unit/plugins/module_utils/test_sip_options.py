# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sip_options: one OPTIONS implementation for sip_ping and the HA check, against a UDP peer on loopback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import threading

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import sip_options


def peer(code=200, ignore_first=0):
    """A UDP SIP peer on 127.0.0.1 answering `code` (after ignoring the first N requests)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(5)
    seen = []

    def serve():
        for _i in range(10):
            try:
                data, addr = sock.recvfrom(65535)
            except socket.timeout:
                return
            seen.append(data.decode())
            if len(seen) <= ignore_first:
                continue
            head = data.decode().split('\r\n')
            via = [h for h in head if h.startswith('Via:')][0]
            sock.sendto(('SIP/2.0 %d Whatever\r\n%s\r\nContent-Length: 0\r\n\r\n' % (code, via)).encode(), addr)
    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1], seen


def test_ping_retries_until_a_final_answer():
    port, seen = peer(ignore_first=1)
    code, reason, attempts, _elapsed = sip_options.ping('127.0.0.1', port, timeout=3, interval=0.2)
    assert (code, reason, attempts) == (200, 'Whatever', 2)
    assert seen[0].startswith('OPTIONS sip:127.0.0.1:%d SIP/2.0' % port) and 'User-Agent: wazo-maintenance' in seen[0]


def test_prober_matches_the_branch_and_reads_5xx_as_down():
    port, _seen = peer(code=503)
    prober = sip_options.OptionsProber([('127.0.0.1', port)], 1.0)
    try:
        res = prober.probe()[('127.0.0.1', port)]
    finally:
        prober.close()
    assert res.code == 503 and not res.ok


def test_nobody_listening_is_known_without_waiting_the_timeout():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    code, _reason, attempts, elapsed = sip_options.ping('127.0.0.1', port, timeout=1, interval=0.3)
    assert code is None and 3 <= attempts <= 5 and elapsed < 1.5


def test_parse_response():
    text = b'SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK-x;rport\r\nCall-ID: c1\r\n\r\n'
    assert sip_options.parse_response(text) == (404, 'Not Found', 'z9hG4bK-x', 'c1')
    assert sip_options.parse_response(b'OPTIONS sip:x SIP/2.0\r\n\r\n') is None
