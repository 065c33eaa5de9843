# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP OPTIONS over UDP: is a stack's SIP stack alive? Used by ``sip_ping`` and the HA check.

* ``OptionsProber``: one OPTIONS to each target per ``probe()``, answers matched on the Via branch (a late
  answer to an earlier probe never counts), ICMP "port unreachable" known at once (connected sockets).
* ``ping()``: OPTIONS to one target again and again until a final answer or a timeout.

Standard library only: installed on the proxy beside ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import random
import select
import socket
import time


def parse_response(data):
    """(code, reason, branch, call_id) of a SIP response, or None if ``data`` is not one."""
    try:
        text = data.decode('utf-8', 'replace')
    except AttributeError:
        return None
    head = text.split('\r\n\r\n', 1)[0]
    lines = head.replace('\r\n', '\n').split('\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or parts[0] != 'SIP/2.0' or not parts[1].isdigit():
        return None
    branch = call_id = None
    for line in lines[1:]:
        name, dummy, value = line.partition(':')
        name = name.strip().lower()
        if name in ('via', 'v') and branch is None:
            for param in value.split(';')[1:]:
                key, dummy, val = param.strip().partition('=')
                if key.lower() == 'branch':
                    branch = val.strip().split(',')[0]
        elif name in ('call-id', 'i'):
            call_id = value.strip()
    return int(parts[1]), (parts[2].strip() if len(parts) > 2 else ''), branch, call_id


def options_request(target, local, branch, cseq, user_agent, call_id=None):
    """The text of an OPTIONS to ``target`` (host, port) sent from ``local`` (ip, port)."""
    host, port = target
    lip, lport = local[:2]
    hostport = ('[%s]' % host if ':' in host else host) + ':%d' % port
    lhostport = ('[%s]' % lip if ':' in lip else lip) + ':%d' % lport
    return ('OPTIONS sip:%(hp)s SIP/2.0\r\n'
            'Via: SIP/2.0/UDP %(lhp)s;branch=%(branch)s;rport\r\n'
            'Max-Forwards: 70\r\n'
            'From: <sip:%(ua)s@%(lhp)s>;tag=%(tag)08x\r\n'
            'To: <sip:%(hp)s>\r\n'
            'Call-ID: %(cid)s\r\n'
            'CSeq: %(cseq)d OPTIONS\r\n'
            'Contact: <sip:%(ua)s@%(lhp)s>\r\n'
            'Accept: application/sdp\r\n'
            'User-Agent: %(ua)s\r\n'
            'Content-Length: 0\r\n\r\n') % dict(
                hp=hostport, lhp=lhostport, branch=branch, tag=random.getrandbits(32), cseq=cseq,
                ua=user_agent, cid=call_id or '%s@%s' % (branch, user_agent))


def new_branch():
    return 'z9hG4bK-wmm-%016x' % random.getrandbits(64)


class ProbeResult:
    __slots__ = ('ok', 'code', 'detail', 'rtt')

    def __init__(self, ok, code=None, detail='', rtt=None):
        self.ok, self.code, self.detail, self.rtt = ok, code, detail, rtt

    def __repr__(self):
        return 'ProbeResult(ok=%r, code=%r, detail=%r, rtt=%r)' % (self.ok, self.code, self.detail, self.rtt)

    def describe(self):
        if self.code:
            return 'SIP %d %s' % (self.code, self.detail)
        return self.detail


class OptionsProber:
    """Sends one OPTIONS per ``probe()`` to each target, on one connected UDP socket per target.

    Responses are matched on the Via branch, so a late answer to an earlier probe never counts for
    the current one. A connected socket reports ICMP "port unreachable" as ECONNREFUSED: with the
    host up but nothing on udp/5060 the failure is known at once instead of after the timeout.
    """

    def __init__(self, targets, timeout, user_agent='wazo-ha-check'):
        self.targets = [(h, int(p)) for h, p in targets]
        self.timeout = float(timeout)
        self.user_agent = user_agent
        self.socks = {}
        self.cseq = 0

    def close(self):
        for sock in self.socks.values():
            sock.close()
        self.socks = {}

    def _sock(self, target):
        sock = self.socks.get(target)
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if ':' in target[0] else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(target)
            self.socks[target] = sock
        return sock

    def _drop(self, target):
        sock = self.socks.pop(target, None)
        if sock is not None:
            sock.close()

    def _request(self, target, sock, branch):
        return options_request(target, sock.getsockname(), branch, self.cseq, self.user_agent)

    def probe(self):
        """Probe every target at once; return ``{target: ProbeResult}`` within ``timeout`` seconds."""
        self.cseq += 1
        start = time.monotonic()
        deadline = start + self.timeout
        results, pending = {}, {}
        for target in self.targets:
            branch = new_branch()
            try:
                sock = self._sock(target)
                sock.send(self._request(target, sock, branch).encode('ascii'))
                pending[sock.fileno()] = (target, sock, branch)
            except (OSError, socket.error) as exc:
                self._drop(target)
                results[target] = ProbeResult(False, detail='send failed: %s' % (exc.strerror or exc))
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ready = select.select(list(pending), [], [], left)[0]
            except InterruptedError:
                continue
            for fd in ready:
                target, sock, branch = pending[fd]
                while True:
                    try:
                        data = sock.recv(65535)
                    except BlockingIOError:
                        break
                    except (OSError, socket.error) as exc:
                        if exc.errno == errno.ECONNREFUSED:
                            results[target] = ProbeResult(False, detail='port unreachable (ICMP)',
                                                          rtt=time.monotonic() - start)
                        else:
                            results[target] = ProbeResult(False, detail='receive failed: %s' % exc)
                        del pending[fd]
                        break
                    parsed = parse_response(data)
                    if not parsed or parsed[2] != branch or parsed[0] < 200:
                        continue   # not ours, stale, or provisional
                    code, reason = parsed[0], parsed[1]
                    results[target] = ProbeResult(code < 500, code, reason, time.monotonic() - start)
                    del pending[fd]
                    break
        for target, _sock, _branch in pending.values():
            results[target] = ProbeResult(False, detail='no answer within %.2f s' % self.timeout)
        return results


def ping(host, port=5060, timeout=10.0, interval=0.5, user_agent='wazo-maintenance'):
    """Send OPTIONS to ``host:port`` every ``interval`` s until a final answer, at most ``timeout`` s.

    Returns ``(code, reason, attempts, elapsed)``; ``code`` is None when nothing final came back.
    Bounded: at most ``timeout / interval + 1`` requests.
    """
    start = time.monotonic()
    prober = OptionsProber([(host, port)], max(0.01, min(interval, timeout)), user_agent=user_agent)
    attempts = 0
    try:
        for _attempt in range(int(timeout / max(0.01, interval)) + 1):
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                break
            prober.timeout = max(0.01, min(interval, left))
            attempts += 1
            sent = time.monotonic()
            res = prober.probe()[(host, int(port))]
            if res.code is not None:
                return res.code, res.detail, attempts, time.monotonic() - start
            # No answer, ICMP "port unreachable" or a send error: nobody listens yet; wait out the interval.
            rest = min(interval - (time.monotonic() - sent), timeout - (time.monotonic() - start))
            if rest > 0:
                time.sleep(rest)
        return None, '', attempts, time.monotonic() - start
    finally:
        prober.close()
