#!/usr/bin/env python3
"""Wazo stand-in: the SIP side of "asterisk" (a UAS on udp/5060) plus its CLI control socket.

Test code, never used by the collection's roles. It answers like Asterisk behind a proxy:
  INVITE  -> 100 Trying, 180 Ringing, 200 OK (Via/From/To+tag/Call-ID/CSeq copied, Record-Route echoed,
             Contact = our address, minimal SDP); the call lives until BYE (200 OK). 200 is retransmitted
             until the ACK arrives (RFC 3261 timer G), INVITE retransmissions get the last response again.
  CANCEL  -> 200 OK, then 487 to the pending INVITE.
  OPTIONS -> 200 OK (Kamailio's dispatcher probes).   REGISTER -> 200 OK.
  in-dialog re-INVITE/UPDATE/INFO/NOTIFY -> 200 OK; unknown in-dialog request (To tag set) -> 481.
Special request-URI users (for fault tests): "busy" -> 486, "unavailable" -> 503,
"ring-<ms>" -> ring <ms> milliseconds before answering (CANCEL-able), "noanswer" -> ring until CANCEL.

Live counters (channels, calls, processed) are served on the control socket (what `asterisk -rx` talks to,
default /var/run/asterisk/asterisk.ctl) and persisted atomically to a JSON state file
(default /run/wazo-standin/state.json). Stopping the daemon loses its calls, exactly like stopping
Asterisk: their BYE gets no answer.
"""
import argparse
import asyncio
import glob
import json
import os
import random
import re
import signal
import socket
import sys
import time

VERSION = "Asterisk 20.15.0 (wazo stand-in)"
ALLOW = "OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, INFO, MESSAGE, REFER"

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 405: "Method Not Allowed", 481: "Call/Transaction Does Not Exist",
           486: "Busy Here", 487: "Request Terminated", 489: "Bad Event", 500: "Server Internal Error",
           503: "Service Unavailable"}


class SipMessage:
    """A parsed SIP message: start line, ordered headers (name as received, value), body."""

    def __init__(self, data: bytes):
        text = data.decode("utf-8", errors="replace")
        head, sep, self.body = text.partition("\r\n\r\n")
        if not sep:
            head, sep, self.body = text.partition("\n\n")
        lines = re.split(r"\r?\n", head)
        self.start = lines[0].strip()
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t" and self.headers:  # folded continuation line
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
                continue
            name, dummy, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))
        parts = self.start.split(" ", 2)
        self.is_request = not self.start.startswith("SIP/2.0")
        if self.is_request:
            self.method, self.uri = parts[0].upper(), parts[1] if len(parts) > 1 else ""
        else:
            self.method, self.uri = None, None

    @staticmethod
    def _norm(name):
        n = name.lower()
        return COMPACT.get(n, n)

    def all(self, name):
        """All values of a header, split on top-level commas for Via/Record-Route/Route."""
        want = self._norm(name)
        out = []
        for n, v in self.headers:
            if self._norm(n) == want:
                if want in ("via", "record-route", "route"):
                    out.extend(split_commas(v))
                else:
                    out.append(v)
        return out

    def get(self, name, default=""):
        values = self.all(name)
        return values[0] if values else default

    @property
    def call_id(self):
        return self.get("call-id")

    @property
    def cseq(self):
        num, dummy, method = self.get("cseq").partition(" ")
        try:
            return int(num), method.strip().upper()
        except ValueError:
            return 0, method.strip().upper()


def plural(n):
    """Asterisk drops the plural s when the count is 1."""
    return "" if n == 1 else "s"


def split_commas(value):
    """Split a header value on commas that are outside <> and quotes."""
    out, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted:
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value.split(">")[-1] if ">" in value else value)
    return m.group(1) if m else None


def uri_user(uri):
    m = re.match(r"sips?:([^@;>]+)@", uri)
    return m.group(1) if m else ""


def branch_of(via):
    m = re.search(r";\s*branch=([^;\s]+)", via)
    return m.group(1) if m else ""


class Call:
    def __init__(self, call_id, to_tag, invite, addr):
        self.call_id = call_id
        self.to_tag = to_tag
        self.invite = invite
        self.addr = addr
        self.state = "early"  # early -> answered -> confirmed (ACKed) ; or cancelled/rejected
        self.last_response = None
        self.task = None
        self.created = time.time()
        self.counted = True


class UAS(asyncio.DatagramProtocol):
    def __init__(self, args):
        self.args = args
        self.calls = {}  # call-id -> Call
        self.processed = 0
        self.shutting_down = False
        self.transport = None
        self.local_ip_cache = {}
        self.sess = random.randint(100000, 999999)
        self._dirty = True
        self.started = time.time()
        self.stop_event = asyncio.Event()

    # ------------------------------------------------------------------ counters
    def counts(self):
        live = [c for c in self.calls.values() if c.counted]
        return {"channels": len(live) * self.args.channels_per_call, "calls": len(live),
                "processed": self.processed}

    def persist(self):
        if not self.args.state:
            return
        data = dict(self.counts(), pid=os.getpid(), updated=time.time(), started=self.started,
                    shutting_down=self.shutting_down)
        tmp = self.args.state + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.args.state)

    def changed(self):
        self.persist()
        if self.shutting_down and not self.counts()["calls"]:
            self.stop_event.set()

    # ------------------------------------------------------------------ transport
    def connection_made(self, transport):
        self.transport = transport

    def local_ip(self, peer_ip):
        if self.args.address:
            return self.args.address
        ip = self.local_ip_cache.get(peer_ip)
        if ip is None:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.connect((peer_ip, 9))
                ip = probe.getsockname()[0]
            except OSError:
                ip = "127.0.0.1"
            finally:
                probe.close()
            self.local_ip_cache[peer_ip] = ip
        return ip

    def datagram_received(self, data, addr):
        if not data.strip():  # keepalive CRLF
            return
        try:
            msg = SipMessage(data)
        except Exception:  # noqa: BLE001 - never die on garbage
            return
        if not msg.is_request or not msg.call_id:
            return
        try:
            self.handle(msg, addr)
        except Exception as exc:  # noqa: BLE001
            print(f"error handling {msg.start!r}: {exc}", file=sys.stderr, flush=True)

    def send(self, data, addr):
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def response(self, req, addr, code, to_tag=None, body="", extra=None):
        vias = req.all("via")
        if vias:
            top = vias[0]
            sent_by = re.match(r"SIP/2\.0/\w+\s+([^;:\s]+)", top)
            if sent_by and sent_by.group(1) != addr[0] and "received=" not in top:
                top += f";received={addr[0]}"
            top = re.sub(r";\s*rport(?=;|$)", f";rport={addr[1]}", top)
            vias = [top] + vias[1:]
        to = req.get("to")
        if to_tag and not tag_of(to):
            to = f"{to};tag={to_tag}"
        lines = [f"SIP/2.0 {code} {REASONS.get(code, 'OK')}"]
        lines += [f"Via: {v}" for v in vias]
        if code in (180, 183, 200) and req.method == "INVITE":
            lines += [f"Record-Route: {rr}" for rr in req.all("record-route")]
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}",
                  f"CSeq: {req.get('cseq')}", "Server: " + VERSION]
        if code in (180, 183, 200) and req.method in ("INVITE", "UPDATE", "SUBSCRIBE", "REGISTER"):
            lines.append(f"Contact: <sip:{uri_user(req.uri) or 'asterisk'}@{self.local_ip(addr[0])}:{self.args.port}>")
        if code == 200 and req.method in ("INVITE", "OPTIONS"):
            lines += [f"Allow: {ALLOW}", "Supported: 100rel, timer, replaces, norefersub"]
        lines += extra or []
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        self.send(data, addr)
        return data

    def sdp(self, addr):
        ip = self.local_ip(addr[0])
        return ("v=0\r\n"
                f"o=- {self.sess} {self.sess} IN IP4 {ip}\r\n"
                "s=Asterisk\r\n"
                f"c=IN IP4 {ip}\r\n"
                "t=0 0\r\n"
                f"m=audio {10000 + 2 * (hash(addr) % 5000)} RTP/AVP 0 8 101\r\n"
                "a=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:8 PCMA/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\n"
                "a=fmtp:101 0-16\r\n"
                "a=ptime:20\r\n"
                "a=sendrecv\r\n")

    # ------------------------------------------------------------------ requests
    def handle(self, req, addr):
        m = req.method
        call = self.calls.get(req.call_id)
        if m == "INVITE":
            if call is None:
                if tag_of(req.get("to")):
                    self.response(req, addr, 481)
                    return
                self.new_invite(req, addr)
            elif req.cseq == call.invite.cseq and branch_of(req.get("via")) == branch_of(call.invite.get("via")):
                if call.last_response:  # retransmission
                    self.send(call.last_response, addr)
            else:  # re-INVITE (session refresh, hold...)
                self.response(req, addr, 200, call.to_tag, body=self.sdp(addr))
        elif m == "ACK":
            if call is not None:
                if call.state == "answered":
                    call.state = "confirmed"
                elif call.state in ("cancelled", "rejected"):
                    self.drop(call)
        elif m == "BYE":
            if call is None or call.state in ("cancelled", "rejected"):
                self.response(req, addr, 481)
                return
            self.response(req, addr, 200, call.to_tag)
            self.drop(call)
        elif m == "CANCEL":
            if call is None:
                self.response(req, addr, 481)
                return
            self.response(req, addr, 200, call.to_tag)
            if call.state == "early":
                call.state = "cancelled"
                if call.task:
                    call.task.cancel()
                call.last_response = self.response(call.invite, call.addr, 487, call.to_tag)
                call.counted = False
                self.changed()
                asyncio.get_running_loop().call_later(32, self.forget, call)
        elif m == "OPTIONS":
            self.response(req, addr, 200, call.to_tag if call else f"opt{random.getrandbits(32):x}")
        elif m == "REGISTER":
            expires = req.get("expires") or "3600"
            self.response(req, addr, 200, f"reg{random.getrandbits(32):x}", extra=[f"Expires: {expires}"])
        elif call is not None and m in ("UPDATE", "INFO", "NOTIFY", "MESSAGE", "PRACK", "REFER"):
            self.response(req, addr, 200, call.to_tag)
        elif tag_of(req.get("to")):
            self.response(req, addr, 481)
        elif m == "SUBSCRIBE":
            self.response(req, addr, 489)
        else:
            self.response(req, addr, 405, f"na{random.getrandbits(32):x}", extra=[f"Allow: {ALLOW}"])

    def new_invite(self, req, addr):
        to_tag = f"as{random.getrandbits(40):x}"
        if self.shutting_down:
            self.response(req, addr, 503, to_tag)
            return
        call = Call(req.call_id, to_tag, req, addr)
        self.calls[req.call_id] = call
        self.processed += 1
        self.changed()
        call.last_response = self.response(req, addr, 100)
        call.task = asyncio.get_running_loop().create_task(self.ring_and_answer(call))

    async def ring_and_answer(self, call):
        req, addr = call.invite, call.addr
        user = uri_user(req.uri)
        try:
            if user in ("busy", "unavailable"):
                call.state = "rejected"
                call.counted = False
                call.last_response = self.response(req, addr, 486 if user == "busy" else 503, call.to_tag)
                self.changed()
                asyncio.get_running_loop().call_later(32, self.forget, call)
                return
            call.last_response = self.response(req, addr, 180, call.to_tag)
            delay = self.args.answer_delay
            m = re.match(r"ring-(\d+)$", user)
            if m:
                delay = int(m.group(1)) / 1000.0
            if user == "noanswer":
                delay = 3600
            await asyncio.sleep(delay)
            call.state = "answered"
            call.last_response = self.response(req, addr, 200, call.to_tag, body=self.sdp(addr))
            # Timer G: retransmit the 200 until the ACK, give up after 32 s (the call then ends, as in Asterisk).
            interval = 0.5
            waited = 0.0
            while call.state == "answered" and waited < 32:
                await asyncio.sleep(interval)
                waited += interval
                if call.state == "answered":
                    self.send(call.last_response, addr)
                interval = min(interval * 2, 4)
            if call.state == "answered":
                self.drop(call)
        except asyncio.CancelledError:
            pass

    def drop(self, call):
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
            if call.task and not call.task.done():
                call.task.cancel()
            self.changed()

    def forget(self, call):
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
            self.changed()

    # ------------------------------------------------------------------ CLI (asterisk -rx)
    def cli(self, command):
        cmd = " ".join(command.split())
        low = cmd.lower()
        c = self.counts()
        if low in ("core show channels count", "core show calls", "core show channels", "core show channels concise"):
            lines = []
            if low == "core show channels":
                lines.append("Channel              Location             State   Application(Data)")
                for call in self.calls.values():
                    if call.counted:
                        lines.append(f"PJSIP/{call.invite.get('from').split('@')[0][-8:]:<13}"
                                     f"{uri_user(call.invite.uri)[:12]:<12}@default Up      Dial")
            if low == "core show channels concise":
                return 0, "\n".join(f"PJSIP/standin-{i}!default!{uri_user(x.invite.uri)}!1!Up!Dial!!!!3!0!!{x.call_id}"
                                    for i, x in enumerate(self.calls.values()) if x.counted)
            if low != "core show calls":
                lines.append(f"{c['channels']} active channel{plural(c['channels'])}")
            lines.append(f"{c['calls']} active call{plural(c['calls'])}")
            lines.append(f"{c['processed']} call{plural(c['processed'])} processed")
            return 0, "\n".join(lines)
        if low == "core show version":
            return 0, VERSION
        if low == "core show uptime":
            up = int(time.time() - self.started)
            return 0, f"System uptime: {up} seconds\nLast reload: {up} seconds"
        if low in ("core reload", "reload", "module reload", "dialplan reload", "pjsip reload"):
            return 0, ""
        if low.startswith("module reload ") or low.startswith("module load ") or low.startswith("module unload "):
            mod = cmd.split(" ", 2)[2]
            verb = low.split()[1]
            return 0, f"Module '{mod}' {'reloaded' if verb == 'reload' else verb + 'ed'} successfully."
        if low.startswith("odbc show"):
            return 0, odbc_show(self.args.odbc_dir, cmd.split()[2] if len(cmd.split()) > 2 else None)
        if low.startswith("pjsip show") or low.startswith("pjsip set") or low.startswith("pjsip send") \
                or low.startswith("core set") or low.startswith("cel show") or low.startswith("dialplan show"):
            return 0, ""
        if low in ("core stop gracefully", "core stop when convenient", "core restart gracefully",
                   "core restart when convenient"):
            self.shutting_down = True
            self.changed()
            return 0, ""
        if low == "core abort shutdown":
            self.shutting_down = False
            self.changed()
            return 0, ""
        if low in ("core stop now", "core restart now"):
            self.shutting_down = True
            self.stop_event.set()
            return 0, ""
        return 1, f"No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)"

    async def serve_cli(self, reader, writer):
        try:
            data = await asyncio.wait_for(reader.readline(), 5)
            rc, out = self.cli(data.decode(errors="replace").strip())
            writer.write(json.dumps({"rc": rc, "output": out}).encode() + b"\n")
            await writer.drain()
        except Exception:  # noqa: BLE001
            pass
        finally:
            writer.close()


def odbc_show(odbc_dir, only=None):
    """Plausible `odbc show` output from the [sections] of res_odbc.conf and res_odbc.d/*.conf (Asterisk 20)."""
    out = ["", "ODBC DSN Settings", "-----------------", ""]
    main_conf = os.path.join(os.path.dirname(odbc_dir.rstrip("/")), "res_odbc.conf")
    for path in [main_conf] + sorted(glob.glob(os.path.join(odbc_dir, "*.conf"))):
        if not os.path.isfile(path):
            continue
        section, conf = None, {}
        entries = []
        with open(path, errors="replace") as fh:
            for line in fh:
                line = line.split(";", 1)[0].strip()
                m = re.match(r"\[([^\]]+)\]", line)
                if m:
                    if section:
                        entries.append((section, conf))
                    section, conf = m.group(1), {}
                elif "=" in line and section:
                    k, dummy, v = line.partition("=")
                    conf[k.strip().lower()] = v.lstrip(">").strip()
        if section:
            entries.append((section, conf))
        for name, conf in entries:
            if only and only not in ("all", name):
                continue
            if conf.get("enabled", "yes").lower() in ("no", "false", "0"):
                continue
            maxc = conf.get("max_connections", "1")
            out += [f"  Name:   {name}", f"  DSN:    {conf.get('dsn', name)}",
                    f"    Number of active connections: 1 (out of {maxc})",
                    "    Logging: Disabled", ""]
    return "\n".join(out)


async def main_async(args):
    loop = asyncio.get_running_loop()
    uas = UAS(args)
    transport, dummy = await loop.create_datagram_endpoint(lambda: uas, local_addr=(args.bind, args.port))
    server = None
    if args.ctl:
        os.makedirs(os.path.dirname(args.ctl), exist_ok=True)
        if os.path.exists(args.ctl):
            os.unlink(args.ctl)
        server = await asyncio.start_unix_server(uas.serve_cli, path=args.ctl)
        os.chmod(args.ctl, 0o660)
    if args.state:
        os.makedirs(os.path.dirname(args.state) or ".", exist_ok=True)
    uas.persist()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, uas.stop_event.set)
    print(f"wazo stand-in SIP UAS listening on {args.bind}:{args.port}", flush=True)
    await uas.stop_event.wait()
    transport.close()
    if server:
        server.close()
        try:
            os.unlink(args.ctl)
        except OSError:
            pass
    if args.state:
        try:
            os.unlink(args.state)
        except OSError:
            pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=5060)
    p.add_argument("--address", default="", help="IP put in Contact/SDP (default: route lookup per peer)")
    p.add_argument("--ctl", default="/var/run/asterisk/asterisk.ctl", help="CLI control socket ('' = none)")
    p.add_argument("--state", default="/run/wazo-standin/state.json", help="JSON state file ('' = none)")
    p.add_argument("--answer-delay", type=float, default=0.1, help="seconds between 180 and 200")
    p.add_argument("--channels-per-call", type=int, default=1)
    p.add_argument("--odbc-dir", default="/etc/asterisk/res_odbc.d")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main_async(parse_args()))
