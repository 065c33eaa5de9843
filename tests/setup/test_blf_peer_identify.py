# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BLF/MWI peer endpoint accepts only the other stack (real Asterisk 22 on the lab).

A phone that sends, through the proxy, a PUBLISH with ``Event: asterisk-devicestate`` and a From of the
peer's name (``instance2``) must not change a lamp: the endpoint is identified by the peer's address only.
The control is test_blf_sync.py: the genuine publications from the other stack still cross.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import uuid

import labtools  # tests/lab, put on sys.path by conftest.py

NAME = {'primary': 'instance1', 'secondary': 'instance2'}


def forged_publish(lab, local_ip, local_port, receiver, sender, device):
    body = json.dumps({'type': 'devicestate', 'device': device, 'state': 'INUSE', 'cachable': 1,
                       'eid': '02:00:5e:00:53:%02x' % (uuid.uuid4().int % 256)})
    dst = lab.hosts[receiver]
    return ('PUBLISH sip:%(peer)s@%(dst)s SIP/2.0\r\n'
            'Via: SIP/2.0/UDP %(ip)s:%(port)d;branch=z9hG4bK-%(branch)s;rport\r\n'
            'Max-Forwards: 70\r\n'
            'From: <sip:%(peer)s@%(src)s>;tag=%(tag)s\r\n'
            'To: <sip:%(peer)s@%(dst)s>\r\n'
            'Call-ID: %(callid)s\r\n'
            'CSeq: 1 PUBLISH\r\n'
            'Event: asterisk-devicestate\r\n'
            'Expires: 3600\r\n'
            'Content-Type: application/json\r\n'
            'Content-Length: %(length)d\r\n\r\n%(body)s'
            % {'peer': NAME[sender], 'dst': dst, 'src': lab.hosts[sender], 'ip': local_ip, 'port': local_port,
               'branch': uuid.uuid4().hex, 'tag': uuid.uuid4().hex[:8], 'callid': uuid.uuid4().hex,
               'length': len(body), 'body': body}).encode()


def test_a_phone_cannot_publish_device_state_as_the_peer(lab):
    status = lab.route_mode()
    assert status['mode'] == 'normal', status  # the proxy sends the PUBLISH to the primary
    tag = uuid.uuid4().hex[:10]
    exten, device = 'blf%s' % tag, 'Custom:blf-%s' % tag
    labtools.asterisk_rx(lab, 'primary', 'dialplan add extension %s,hint,%s into default' % (exten, device))
    local_ip = labtools.host_ip_towards(lab.hosts['proxy'])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((local_ip, 0))
        sock.settimeout(5)
        sock.sendto(forged_publish(lab, local_ip, sock.getsockname()[1], 'primary', 'secondary', device),
                    (lab.hosts['proxy'], 5060))
        reply = ''
        try:
            while not reply.startswith('SIP/2.0 ') or reply.startswith('SIP/2.0 100'):
                reply = sock.recv(65536).decode('utf-8', 'replace')
        except socket.timeout:
            pass
        status_line = reply.splitlines()[0] if reply else 'no reply'
        assert not status_line.startswith('SIP/2.0 2'), 'the forged PUBLISH was accepted: %s' % status_line
        state, _waited = labtools.wait_hint(lab, 'primary', exten, 'InUse', 4.0)
        assert state == 'Idle', 'a phone changed the lamp of %s to %s (%s)' % (exten, state, status_line)
    finally:
        sock.close()
        labtools.asterisk_rx(lab, 'primary', 'devstate change %s NOT_INUSE' % device, check=False)
        labtools.asterisk_rx(lab, 'primary', 'dialplan remove extension %s@default hint' % exten, check=False)
