#!/usr/bin/env python3
"""Wazo stand-in: /usr/sbin/asterisk, the remote console client only (`asterisk -rx '<command>'`).

It talks to the stand-in SIP daemon over its control socket (like the real `asterisk -r` talks to
/var/run/asterisk/asterisk.ctl), so the counts are live. If the daemon is not running it prints Asterisk's
own message and exits 1. Every -rx command is appended to the command log (one line per command:
`<ISO timestamp> [ok|error|unreachable] <command>`) so tests can assert that reloads happened.
"""
import datetime
import json
import os
import socket
import sys

CTL = os.environ.get("WAZO_STANDIN_ASTERISK_CTL", "/var/run/asterisk/asterisk.ctl")
LOG = os.environ.get("WAZO_STANDIN_COMMAND_LOG", "/var/log/asterisk/standin-commands.log")
VERSION = "Asterisk 20.15.0 (wazo stand-in)"


def record(command, status):
    try:
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        with open(LOG, "a") as fh:
            fh.write(f"{stamp} [{status}] {command}\n")
    except OSError:
        pass


def parse(argv):
    """Return (remote, command) from asterisk-style options: -rx CMD, -r -x CMD, -rvvvx CMD, -x CMD -r."""
    remote, command, i = False, None, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--"):
            flags = a[1:]
            if "r" in flags or "R" in flags:
                remote = True
            if "V" in flags:
                print(VERSION)
                sys.exit(0)
            if "x" in flags:
                i += 1
                command = argv[i] if i < len(argv) else ""
        i += 1
    return remote, command


def main(argv):
    remote, command = parse(argv)
    if not remote or command is None:
        print("wazo stand-in: only the remote console (`asterisk -rx '<command>'`, `asterisk -V`) is provided",
              file=sys.stderr)
        return 1
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(CTL)
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        reply = json.loads(data.decode())
    except (OSError, ValueError):
        record(command, "unreachable")
        print(f"Unable to connect to remote asterisk (does {CTL} exist?)")
        return 1
    record(command, "ok" if reply["rc"] == 0 else "error")
    if reply["output"]:
        print(reply["output"])
    # Real `asterisk -rx` exits 0 once connected, whatever the command's result.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
