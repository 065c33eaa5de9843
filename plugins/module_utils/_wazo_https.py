# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON over HTTPS to a Wazo stack's public API (nginx on 443: ``/api/<service>/...``), TLS verified.

Private helper of ``agentd.py``. The certificate is checked against ``ca_file`` (a PEM bundle; empty: the
system's trust store) and the stack's address; ``verify=False`` turns the check off and is an explicit
operator choice (upstream's agent sync scripts always turned it off). Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import socket
import ssl

try:
    from urllib.error import HTTPError, URLError
    from urllib.request import HTTPSHandler, Request, build_opener
except ImportError:  # pragma: no cover - Python 2 is not supported on the proxy
    HTTPError = URLError = HTTPSHandler = Request = build_opener = None


class WazoHTTPError(Exception):
    """A request that got no usable answer. ``status`` is the HTTP status, None when nothing answered."""

    def __init__(self, msg, status=None, body=None):
        super(WazoHTTPError, self).__init__(msg)
        self.status = status
        self.body = body


def ssl_context(ca_file=None, verify=True):
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (IOError, OSError, ssl.SSLError) as exc:
        raise WazoHTTPError('cannot load the CA file %s: %s' % (ca_file, exc))


class WazoHTTPS:
    """Requests to ``https://<address>:<port>``; one opener, one TLS context."""

    def __init__(self, address, port=443, ca_file=None, verify=True, timeout=10.0):
        host = '[%s]' % address if ':' in address else address
        self.base = 'https://%s:%d' % (host, int(port))
        self.timeout = float(timeout)
        self.opener = build_opener(HTTPSHandler(context=ssl_context(ca_file, verify)))

    def request(self, method, path, body=None, headers=None, basic=None):
        """(status, decoded JSON or None). 4xx/5xx raise WazoHTTPError with the status and the body."""
        data = None if body is None else json.dumps(body).encode('utf-8')
        hdrs = {'Accept': 'application/json'}
        if data is not None:
            hdrs['Content-Type'] = 'application/json'
        if basic:
            raw = ('%s:%s' % basic).encode('utf-8')
            hdrs['Authorization'] = 'Basic ' + base64.b64encode(raw).decode('ascii')
        hdrs.update(headers or {})
        url = self.base + path
        req = Request(url, data=data, headers=hdrs, method=method)
        try:
            resp = self.opener.open(req, timeout=self.timeout)
            status, raw_body = resp.status, resp.read()
        except HTTPError as exc:
            text = exc.read().decode('utf-8', 'replace')[:500].strip()
            # an HTML page (nginx's own 502 when the service behind it is down) says no more than its status
            shown = exc.reason if text.startswith('<') else text
            raise WazoHTTPError('%s %s: HTTP %d %s' % (method, url, exc.code, shown), exc.code, text)
        except URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLError):
                raise WazoHTTPError('%s %s: TLS: %s' % (method, url, reason))
            raise WazoHTTPError('%s %s: %s' % (method, url, reason))
        except (socket.timeout, ssl.SSLError, OSError) as exc:
            raise WazoHTTPError('%s %s: %s' % (method, url, exc))
        if not raw_body:
            return status, None
        try:
            return status, json.loads(raw_body.decode('utf-8'))
        except ValueError:
            raise WazoHTTPError('%s %s: HTTP %d, not JSON: %r' % (method, url, status, raw_body[:200]), status)
