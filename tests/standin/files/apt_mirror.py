#!/usr/bin/env python3
"""Wazo stand-in: the stacks' Wazo package mirror, an HTTP server for the local apt repository.

  apt_mirror.py REPO_DIR [--address 127.0.0.1] [--port 8790]

A real stack fetches its packages from mirror.wazo.io over HTTP, so `wazo-upgrade -d` really downloads them
into /var/cache/apt/archives and the later install reuses them. A `file:` repository would be used in place
(nothing downloaded, `-d` a no-op). This server gives apt a real download, at a bandwidth the tests choose:
/etc/wazo-standin/mirror-kbps (KiB/s, read on every request; missing, empty or 0 = as fast as possible).
Only serves files under REPO_DIR (GET and HEAD). Listens on loopback by default: the lab's traffic stays local.
"""
import argparse
import functools
import http.server
import os
import time

RATE_FILE = "/etc/wazo-standin/mirror-kbps"
CHUNK = 16 * 1024


def rate_bytes_per_second(path=RATE_FILE):
    try:
        with open(path) as fh:
            kbps = float(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    return max(kbps, 0) * 1024


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # apt pipelines requests on one connection

    def copyfile(self, source, outputfile):
        rate = rate_bytes_per_second()
        if not rate:
            return super().copyfile(source, outputfile)
        start, sent = time.monotonic(), 0
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                return None
            outputfile.write(chunk)
            sent += len(chunk)
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # apt's own log says what was fetched


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    handler = functools.partial(MirrorHandler, directory=os.path.abspath(args.repo))
    server = http.server.ThreadingHTTPServer((args.address, args.port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
