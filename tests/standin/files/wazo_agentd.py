#!/usr/bin/env python3
"""Wazo stand-in: wazo-auth's token API, wazo-agentd's agent API and the stack's HTTPS front (nginx), stdlib only.

  wazo_agentd.py auth    -> 127.0.0.1:9497 (as the real wazo-auth, behind nginx at /api/auth/)
      POST /0.1/token  basic auth of a user of /etc/wazo-standin/auth-users.json ({name: {password, acl: [...]}}),
                       body {"expiration": N} -> 200 {"data": {"token", "auth_id", "acl", "expires_at", ...}};
                       wrong user/password -> 401.
      GET  /0.1/token/<token>?scope=<acl>  (what wazo-agentd's token check calls) -> 200 the token,
                       404 unknown/expired, 403 when no ACL of the token matches the scope.
  wazo_agentd.py agentd  -> 127.0.0.1:9493 (as the real wazo-agentd, behind nginx at /api/agentd/), prefix /1.0:
      GET  /agents[?recurse=true]                 ACL agentd.agents.read -> [AgentStatus]
      GET  /agents/by-number/<n>                  ACL agentd.agents.by-number.<n>.read
      POST /agents/by-number/<n>/login  {"extension", "context"}   ACL agentd.agents.by-number.<n>.login.create
           -> 204; 404 "no such agent" / "no such extension and context"; 409 "already logged" /
           "extension and context already in use"; 400 "invalid fields: ..."
      POST /agents/by-number/<n>/logoff           ACL agentd.agents.by-number.<n>.logoff.create -> 204; 409 "not logged in"
      Missing/unknown token -> 401 {"error": "invalid token or unauthorized"}; ACL missing -> 403 (the same error).
      AgentStatus: {id, tenant_uuid, origin_uuid, number, logged, paused, paused_reason, extension, context,
      state_interface}. State in /var/lib/wazo-standin/agents.json (agents 1001-1003 of one tenant at first);
      extensions 1000-1999 exist in context "default". Each login/logoff appended to api.log as "agentd ...".
  wazo_agentd.py nginx   -> 0.0.0.0:443 TLS (/etc/wazo-standin/https.crt + .key, signed by the lab's CA):
      /api/auth/... -> 127.0.0.1:9497/..., /api/agentd/... -> 127.0.0.1:9493/...; upstream down -> 502 HTML,
      as nginx.
"""
import base64
import datetime
import http.client
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USERS = os.environ.get("WAZO_STANDIN_AUTH_USERS", "/etc/wazo-standin/auth-users.json")
STATE = os.environ.get("WAZO_STANDIN_AGENTS", "/var/lib/wazo-standin/agents.json")
LOG = os.environ.get("WAZO_STANDIN_API_LOG", "/var/log/wazo-standin/api.log")
CERT = os.environ.get("WAZO_STANDIN_HTTPS_CERT", "/etc/wazo-standin/https.crt")
KEY = os.environ.get("WAZO_STANDIN_HTTPS_KEY", "/etc/wazo-standin/https.key")
AUTH_PORT = int(os.environ.get("WAZO_STANDIN_AUTH_PORT", "9497"))
AGENTD_PORT = int(os.environ.get("WAZO_STANDIN_AGENTD_PORT", "9493"))
HTTPS_PORT = int(os.environ.get("WAZO_STANDIN_HTTPS_PORT", "443"))
HTTPS_BIND = os.environ.get("WAZO_STANDIN_HTTPS_BIND", "0.0.0.0")
TENANT = "5b1d7c2e-7a4b-4a34-9c8e-2f1f3e0a9d10"
ORIGIN = os.environ.get("XIVO_UUID") or str(uuid.uuid5(uuid.NAMESPACE_DNS, os.uname().nodename))
LOCK = threading.Lock()


def log(line):
    try:
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        with open(LOG, "a") as fh:
            fh.write(f"{stamp} {line}\n")
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return "invalid"

    def reply(self, status, data=None, ctype="application/json"):
        raw = b"" if data is None else (data if isinstance(data, bytes) else json.dumps(data).encode())
        self.send_response(status)
        if raw:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


# ------------------------------------------------------------------------------------------------ wazo-auth
TOKENS = {}


def acl_match(pattern, scope):
    """wazo-auth's ACL patterns: '*' one dotted word, '#' any number of them."""
    rx = "^" + ".".join({"*": "[^.]*", "#": ".*"}.get(p, re.escape(p)) for p in pattern.split(".")) + "$"
    return re.match(rx, scope) is not None


class Auth(Handler):
    def do_POST(self):
        if self.path.rstrip("/") != "/0.1/token":
            return self.reply(404, {"reason": ["Not found"], "status_code": 404})
        body = self.body() or {}
        try:
            name, password = base64.b64decode(self.headers.get("Authorization", "")[6:]).decode().split(":", 1)
        except ValueError:
            name = password = None
        with open(USERS) as fh:
            users = json.load(fh)
        user = users.get(name)
        if not user or not secrets.compare_digest(user["password"], password or ""):
            log(f"auth token refused for {name!r}")
            return self.reply(401, {"reason": ["Authentication Failed"], "status_code": 401})
        expiration = int(body.get("expiration", 7200)) if isinstance(body, dict) else 7200
        token = str(uuid.uuid4())
        now = time.time()
        data = {"token": token, "auth_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "pbx_user_uuid": None,
                "xivo_uuid": ORIGIN, "issued_at": datetime.datetime.fromtimestamp(now).isoformat(),
                "expires_at": datetime.datetime.fromtimestamp(now + expiration).isoformat(),
                "utc_issued_at": datetime.datetime.utcfromtimestamp(now).isoformat(),
                "utc_expires_at": datetime.datetime.utcfromtimestamp(now + expiration).isoformat(),
                "acl": list(user["acl"]), "metadata": {"tenant_uuid": TENANT, "auth_id": name},
                "session_uuid": str(uuid.uuid4())}
        TOKENS[token] = (now + expiration, data)
        log(f"auth token for {name}")
        self.reply(200, {"data": data})

    def do_GET(self):
        m = re.match(r"^/0\.1/token/([^/?]+)(?:\?(.*))?$", self.path)
        if not m:
            return self.reply(404, {"reason": ["Not found"], "status_code": 404})
        entry = TOKENS.get(m.group(1))
        if not entry or entry[0] < time.time():
            return self.reply(404, {"reason": ["No such token"], "status_code": 404})
        scope = urllib.parse.parse_qs(m.group(2) or "").get("scope", [None])[0]
        if scope and not any(acl_match(a, scope) for a in entry[1]["acl"]):
            return self.reply(403, {"reason": ["Unauthorized"], "status_code": 403})
        self.reply(200, {"data": entry[1]})


# --------------------------------------------------------------------------------------------- wazo-agentd
def load_agents():
    try:
        with open(STATE) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return [{"id": i, "tenant_uuid": TENANT, "number": str(1000 + i), "logged": False, "paused": False,
                 "paused_reason": None, "extension": None, "context": None, "state_interface": None}
                for i in (1, 2, 3)]


def save_agents(agents):
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(agents, fh, indent=1)
    os.replace(tmp, STATE)


def status(agent):
    return dict(agent, origin_uuid=ORIGIN)


class Agentd(Handler):
    def check(self, acl):
        token = self.headers.get("X-Auth-Token")
        if not token:
            self.reply(401, {"error": "invalid token or unauthorized"})
            return False
        conn = http.client.HTTPConnection("127.0.0.1", AUTH_PORT, timeout=5)
        try:
            conn.request("GET", f"/0.1/token/{token}?scope={urllib.parse.quote(acl)}")
            code = conn.getresponse().status
        except OSError:
            code = 503
        finally:
            conn.close()
        if code == 200:
            return True
        self.reply(503 if code == 503 else (403 if code == 403 else 401),
                   {"error": "invalid token or unauthorized"})
        return False

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path == "/1.0/agents":
            if self.check("agentd.agents.read"):
                with LOCK:
                    self.reply(200, [status(a) for a in load_agents()])
            return None
        m = re.match(r"^/1\.0/agents/by-number/([^/]+)$", path)
        if m and self.check(f"agentd.agents.by-number.{m.group(1)}.read"):
            with LOCK:
                found = [a for a in load_agents() if a["number"] == m.group(1)]
            return self.reply(200, status(found[0])) if found else self.reply(404, {"error": "no such agent"})
        if not m:
            self.reply(404, {"error": "not found"})
        return None

    def do_POST(self):
        m = re.match(r"^/1\.0/agents/by-number/([^/]+)/(login|logoff)$", urllib.parse.urlsplit(self.path).path)
        if not m:
            return self.reply(404, {"error": "not found"})
        number, action = m.groups()
        body = self.body()
        if not self.check(f"agentd.agents.by-number.{number}.{action}.create"):
            return None
        with LOCK:
            agents = load_agents()
            tenant = self.headers.get("Wazo-Tenant")
            found = [a for a in agents if a["number"] == number and tenant in (None, a["tenant_uuid"])]
            if not found:
                return self.reply(404, {"error": "no such agent"})
            agent = found[0]
            if action == "logoff":
                if not agent["logged"]:
                    return self.reply(409, {"error": "not logged in"})
                agent.update(logged=False, paused=False, paused_reason=None, extension=None, context=None,
                             state_interface=None)
                save_agents(agents)
                log(f"agentd logoff {number}")
                return self.reply(204)
            if not isinstance(body, dict) or not isinstance(body.get("extension"), str) \
                    or not isinstance(body.get("context"), str):
                return self.reply(400, {"error": "invalid fields: extension, context"})
            exten, context = body["extension"], body["context"]
            if context != "default" or not re.match(r"^1\d{3}$", exten):
                return self.reply(404, {"error": "no such extension and context"})
            if agent["logged"]:
                return self.reply(409, {"error": "already logged"})
            if any(a["logged"] and (a["extension"], a["context"]) == (exten, context) for a in agents):
                return self.reply(409, {"error": "extension and context already in use"})
            agent.update(logged=True, extension=exten, context=context, state_interface=f"PJSIP/line{exten}")
            save_agents(agents)
            log(f"agentd login {number} {exten}@{context}")
            return self.reply(204)


# ------------------------------------------------------------------------------------------- nginx (HTTPS)
UPSTREAMS = {"/api/auth/": AUTH_PORT, "/api/agentd/": AGENTD_PORT}


class Nginx(Handler):
    def proxy(self):
        prefix = next((p for p in UPSTREAMS if self.path.startswith(p)), None)
        if prefix is None:
            return self.reply(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else None
        headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in ("host", "connection"))
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAMS[prefix], timeout=10)
        try:
            conn.request(self.command, "/" + self.path[len(prefix):], body=raw, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            return self.reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        finally:
            conn.close()
        return self.reply(resp.status, data or None, resp.getheader("Content-Type") or "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = proxy


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that goes away (or refuses the certificate) is not an error of the stand-in."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "auth":
        Server(("127.0.0.1", AUTH_PORT), Auth).serve_forever()
    elif role == "agentd":
        Server(("127.0.0.1", AGENTD_PORT), Agentd).serve_forever()
    elif role == "nginx":
        server = Server((HTTPS_BIND, HTTPS_PORT), Nginx)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERT, KEY)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
    else:
        sys.exit("usage: wazo_agentd.py auth|agentd|nginx")


if __name__ == "__main__":
    main()
