#!/usr/bin/env python3
"""Wazo stand-in: the HA part of wazo-sysconfd and wazo-confd (plus confd's wizard/infos), stdlib only.

  wazo_api.py sysconfd  -> 127.0.0.1:8668, no auth (as the real one):
      GET  /get_ha_config        -> ha.conf content, or {"node_type": "disabled", "remote_address": ""}
      POST /update_ha_config     -> 200 null, with the side effects of wazo-sysconfd ha_config/ha.py:
           ha.conf (JSON) written; `sed -i '/^host asterisk postgres/d'` pg_hba.conf and
           `sed -i '/^listen_addresses/d'` postgresql.conf, appending
           `host asterisk postgres <remote>/32 trust` and `listen_addresses = '*'` only for slave;
           `systemctl restart postgresql.service`; /etc/cron.d/xivo-ha-master|xivo-ha-slave rewritten;
           `xivo-manage-slave-services start` unless slave; sentinels /var/lib/wazo/is-primary|is-secondary.
  wazo_api.py confd     -> 0.0.0.0:9486 (real confd listens on 127.0.0.1:9486 behind nginx; the stand-in also
                           answers on the lab address so the host can probe it). X-Auth-Token: any non-empty
                           token is accepted (the stand-in has no wazo-auth); a missing token is 401.
      GET  /1.1/ha  -> {"node_type", "remote_address"} (through sysconfd, as the real one)
      PUT  /1.1/ha  -> 204; 400 if node_type is not disabled|master|slave, or if node_type != disabled and
                       remote_address is empty / not an IP address (confd's schema); then sysconfd
                       update_ha_config (synchronously: the 204 comes after the side effects).
      GET  /1.1/wizard -> {"configured": true, ...} (real-wazo-upgrade checks it)
      GET  /1.1/infos  -> {"uuid", "wazo_version"} from the asterisk database's infos table.
Every request is appended to /var/log/wazo-standin/api.log.
"""
import datetime
import ipaddress
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HA_CONF = os.environ.get("WAZO_STANDIN_HA_CONF", "/etc/xivo/ha.conf")
PG_DIR = os.environ.get("WAZO_STANDIN_PG_DIR", "/etc/postgresql/15/main")
CRON_DIR = os.environ.get("WAZO_STANDIN_CRON_DIR", "/etc/cron.d")
SENTINEL_DIR = os.environ.get("WAZO_STANDIN_SENTINEL_DIR", "/var/lib/wazo")
LOG = os.environ.get("WAZO_STANDIN_API_LOG", "/var/log/wazo-standin/api.log")
SYSCONFD = os.environ.get("WAZO_STANDIN_SYSCONFD", "http://127.0.0.1:8668")
DRY_RUN = os.environ.get("WAZO_STANDIN_API_DRY_RUN") == "1"  # unit tests: no systemctl, no services
DEFAULT_HA = {"node_type": "disabled", "remote_address": ""}


def log(line):
    try:
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        with open(LOG, "a") as fh:
            fh.write(f"{stamp} {line}\n")
    except OSError:
        pass


def run(args):
    log("exec " + " ".join(args))
    if DRY_RUN and args[0] != "sed":
        return
    subprocess.check_call(args, close_fds=True)


# ---------------------------------------------------------------------------------------- sysconfd
def read_ha():
    try:
        with open(HA_CONF) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return dict(DEFAULT_HA)


def update_ha(cfg):
    node_type, remote = cfg["node_type"], cfg.get("remote_address", "")
    os.makedirs(os.path.dirname(HA_CONF), exist_ok=True)
    with open(HA_CONF, "w") as fh:
        json.dump(cfg, fh)
    pg_hba, pg_conf = os.path.join(PG_DIR, "pg_hba.conf"), os.path.join(PG_DIR, "postgresql.conf")
    run(["sed", "-i", "/^host asterisk postgres/d", pg_hba])
    if node_type == "slave":
        with open(pg_hba, "a") as fh:
            fh.write(f"host asterisk postgres {remote}/32 trust\n")
    run(["sed", "-i", "/^listen_addresses/d", pg_conf])
    if node_type == "slave":
        with open(pg_conf, "a") as fh:
            fh.write("listen_addresses = '*'\n")
    run(["/bin/systemctl", "restart", "postgresql.service"])
    for name in ("xivo-ha-master", "xivo-ha-slave"):
        try:
            os.unlink(os.path.join(CRON_DIR, name))
        except FileNotFoundError:
            pass
    if node_type == "master":
        with open(os.path.join(CRON_DIR, "xivo-ha-master"), "w") as fh:
            fh.write(f"0 * * * * root /usr/sbin/xivo-master-slave-db-replication {remote} >/dev/null\n"
                     "0 * * * * root /usr/bin/wazo-sync >/dev/null\n")
    elif node_type == "slave":
        with open(os.path.join(CRON_DIR, "xivo-ha-slave"), "w") as fh:
            fh.write(f"* * * * * root /usr/sbin/xivo-check-master-status {remote} >/dev/null\n")
    if node_type != "slave":
        run(["/usr/sbin/xivo-manage-slave-services", "start"])
    primary, secondary = os.path.join(SENTINEL_DIR, "is-primary"), os.path.join(SENTINEL_DIR, "is-secondary")
    os.makedirs(SENTINEL_DIR, exist_ok=True)
    keep = {"master": primary, "slave": secondary}.get(node_type)
    for path in (primary, secondary):
        if path != keep and os.path.exists(path):
            os.unlink(path)
    if keep:
        open(keep, "a").close()


# ---------------------------------------------------------------------------------------- confd
def validate_ha(body):
    """confd's HASchema: node_type OneOf(disabled, master, slave) required; remote_address IP."""
    if not isinstance(body, dict):
        return {"_schema": ["Invalid input type."]}
    errors = {}
    node_type = body.get("node_type")
    if node_type is None:
        errors["node_type"] = ["Missing data for required field."]
    elif node_type not in ("disabled", "master", "slave"):
        errors["node_type"] = ["Must be one of: disabled, master, slave."]
    remote = body.get("remote_address")
    if remote not in (None, ""):
        try:
            ipaddress.ip_address(remote)
        except ValueError:
            errors["remote_address"] = ["Not a valid IP address."]
    elif node_type in ("master", "slave"):
        errors["remote_address"] = ["remote_address cannot be empty"]
    return errors


def sysconfd_call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SYSCONFD + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def infos():
    out = subprocess.run(["su", "postgres", "-c", "psql -At -d asterisk -c 'SELECT uuid, wazo_version FROM infos'"],
                         capture_output=True, text=True, check=False)
    uuid, dummy, version = out.stdout.strip().partition("|")
    return {"uuid": uuid, "wazo_version": version}


class Handler(BaseHTTPRequestHandler):
    role = "sysconfd"
    server_version = "wazo-standin"

    def log_message(self, fmt, *args):  # noqa: D102 - to our log, not stderr
        log(f"{self.role} {self.client_address[0]} " + fmt % args)

    def reply(self, code, obj=None, raw=None):
        body = raw if raw is not None else (b"" if code == 204 else json.dumps(obj).encode())
        self.send_response(code)
        if code != 204:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def error(self, code, message, details=None):
        self.reply(code, {"message": message, "error_id": "invalid-data" if code == 400 else "error",
                          "details": details or {}, "timestamp": datetime.datetime.now().timestamp()})

    # -- routing
    def do_GET(self):  # noqa: N802
        self.dispatch("GET")

    def do_POST(self):  # noqa: N802
        self.dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self.dispatch("PUT")

    def dispatch(self, method):
        path = self.path.split("?")[0].rstrip("/")
        try:
            if self.role == "sysconfd":
                return self.sysconfd(method, path)
            return self.confd(method, path)
        except Exception as exc:  # noqa: BLE001
            log(f"{self.role} error {exc!r}")
            self.error(500, f"Unexpected error: {exc}")

    def sysconfd(self, method, path):
        if method == "GET" and path == "/get_ha_config":
            return self.reply(200, read_ha())
        if method == "POST" and path == "/update_ha_config":
            body = self.body()
            if not isinstance(body, dict) or "node_type" not in body:
                return self.error(422, "Invalid body")
            body.setdefault("remote_address", "")
            update_ha(body)
            return self.reply(200, None)
        if method == "GET" and path == "/status":
            return self.reply(200, {"rest_api": {"status": "ok"}})
        return self.error(404, "Not Found")

    def confd(self, method, path):
        if path.startswith("/api/confd"):
            path = path[len("/api/confd"):]
        if not self.headers.get("X-Auth-Token"):
            return self.error(401, "Unauthorized")
        if path == "/1.1/ha" and method == "GET":
            return self.reply(200, sysconfd_call("GET", "/get_ha_config"))
        if path == "/1.1/ha" and method == "PUT":
            body = self.body()
            errors = validate_ha(body) if body is not None else {"_schema": ["Invalid JSON"]}
            if errors:
                return self.error(400, f"Input Error - {json.dumps(errors)}", errors)
            sysconfd_call("POST", "/update_ha_config",
                          {"node_type": body["node_type"], "remote_address": body.get("remote_address") or ""})
            return self.reply(204)
        if path == "/1.1/wizard" and method == "GET":
            return self.reply(200, {"configured": True})
        if path == "/1.1/infos" and method == "GET":
            return self.reply(200, infos())
        return self.error(404, "Not Found")


def main(argv):
    role = argv[0] if argv else "sysconfd"
    if role not in ("sysconfd", "confd"):
        print("usage: wazo_api.py sysconfd|confd [bind] [port]", file=sys.stderr)
        return 2
    bind = argv[1] if len(argv) > 1 else ("127.0.0.1" if role == "sysconfd" else "0.0.0.0")
    port = int(argv[2]) if len(argv) > 2 else (8668 if role == "sysconfd" else 9486)
    Handler.role = role
    server = ThreadingHTTPServer((bind, port), Handler)
    log(f"{role} listening on {bind}:{port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
