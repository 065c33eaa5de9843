#!/usr/bin/env python3
"""Wazo stand-in: build a local flat apt repository with several versions of `wazo-platform` and `wazo-upgrade`.

  build_repo.py [--payload-kb N] REPO_DIR VERSION [VERSION...]
Each wazo-platform_<v>_all.deb (built with dpkg-deb, no network) carries /usr/share/wazo/WAZO-VERSION and a
postinst that records the version in the asterisk database's infos table (if PostgreSQL is up), as an upgrade's
migrations would. With --payload-kb, it also carries N KiB of incompressible bytes
(/usr/share/wazo/standin-payload.bin), so that fetching it from the stand-in's mirror (apt_mirror.py) takes
time, as a real upgrade's download does; a .deb built with another payload size is rebuilt.
Writes Packages, Packages.gz and Release (with hashes) so that
`deb [trusted=yes] http://127.0.0.1:8790/ ./` (apt_mirror.py serving REPO_DIR) works with apt's defaults. Idempotent: existing .debs are kept; prints
"changed" or "unchanged".
"""
import email.utils
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile

POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && command -v psql >/dev/null; then
    su postgres -c "psql -q -d asterisk -c \\"UPDATE infos SET wazo_version = '{version}'\\"" >/dev/null 2>&1 || true
fi
exit 0
"""


def built_payload_kb(deb):
    out = subprocess.run(["dpkg-deb", "-f", deb, "X-Standin-Payload-KB"], capture_output=True, text=True,
                         check=False)
    return int(out.stdout.strip() or 0) if out.returncode == 0 else None


def build(repo, name, version, description, files=None, postinst=None, payload_kb=0):
    deb = os.path.join(repo, f"{name}_{version}_all.deb")
    if os.path.exists(deb) and built_payload_kb(deb) == payload_kb:
        return False
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "DEBIAN"))
        with open(os.path.join(root, "DEBIAN", "control"), "w") as fh:
            fh.write(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                     "Maintainer: wazo.maintenance_mode lab <lab@localhost>\nSection: comm\nPriority: optional\n"
                     + (f"X-Standin-Payload-KB: {payload_kb}\n" if payload_kb else "")
                     + f"Description: {description}\n Wazo stand-in package for the wazo.maintenance_mode lab.\n")
        for path, content in (files or {}).items():
            full = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as fh:
                fh.write(content)
        if payload_kb:
            os.makedirs(os.path.join(root, "usr/share/wazo"), exist_ok=True)
            with open(os.path.join(root, "usr/share/wazo/standin-payload.bin"), "wb") as fh:
                fh.write(os.urandom(payload_kb * 1024))
        if postinst:
            p = os.path.join(root, "DEBIAN", "postinst")
            with open(p, "w") as fh:
                fh.write(postinst)
            os.chmod(p, 0o755)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", root, deb], check=True,
                       stdout=subprocess.DEVNULL)
    return True


def index(repo):
    stanzas = []
    for deb in sorted(f for f in os.listdir(repo) if f.endswith(".deb")):
        path = os.path.join(repo, deb)
        control = subprocess.run(["dpkg-deb", "-f", path], check=True, capture_output=True, text=True).stdout
        data = open(path, "rb").read()
        stanza = control.rstrip("\n") + (f"\nFilename: ./{deb}\nSize: {len(data)}\n"
                                         f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
                                         f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
        stanzas.append(stanza)
    packages = "\n".join(stanzas).encode()
    try:
        unchanged = open(os.path.join(repo, "Packages"), "rb").read() == packages and \
            "\nDate: " in open(os.path.join(repo, "Release")).read()
    except OSError:
        unchanged = False
    if unchanged:
        return False
    with open(os.path.join(repo, "Packages"), "wb") as fh:
        fh.write(packages)
    with gzip.GzipFile(os.path.join(repo, "Packages.gz"), "wb", mtime=0) as fh:
        fh.write(packages)
    lines = ["Origin: wazo-standin", "Label: wazo-standin", "Suite: wazo-standin", "Codename: wazo-standin",
             "Architectures: all amd64 arm64",
             "Date: " + email.utils.formatdate(usegmt=True), "Description: Wazo stand-in local repository (lab only)"]
    for algo, field in (("md5", "MD5Sum"), ("sha256", "SHA256")):
        lines.append(f"{field}:")
        for f in ("Packages", "Packages.gz"):
            blob = open(os.path.join(repo, f), "rb").read()
            lines.append(f" {hashlib.new(algo, blob).hexdigest()} {len(blob)} {f}")
    with open(os.path.join(repo, "Release"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return True


def main(argv):
    payload_kb = 0
    if argv[:1] == ["--payload-kb"] and len(argv) > 1:
        payload_kb, argv = int(argv[1]), argv[2:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    repo, versions = argv[0], argv[1:]
    os.makedirs(repo, exist_ok=True)
    changed = False
    for v in versions:
        changed |= build(repo, "wazo-platform", v, f"Wazo Platform {v} (stand-in)",
                         files={"/usr/share/wazo/WAZO-VERSION": v + "\n"}, postinst=POSTINST.format(version=v),
                         payload_kb=payload_kb)
        changed |= build(repo, "wazo-upgrade", v, f"wazo-upgrade {v} (stand-in marker package)")
    changed |= index(repo)
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
