#!/usr/bin/env bash
# Build the lab's Asterisk root: a Debian sid directory holding the real Asterisk 22 (Wazo 26's version),
# its modules, unixODBC and the PostgreSQL ODBC driver. Debian bookworm has no Asterisk and sid's needs
# sid's libc, so the bookworm stacks (Debian 12 + PostgreSQL 15, like a real Wazo) run it from this root:
# lab/lab.sh binds it read-only at /opt/asterisk-root, tests/lab/standin.yml writes asterisk.service
# (RootDirectory=/opt/asterisk-root) and the /usr/sbin/asterisk CLI wrapper.
# Rebuilt only when this recipe changes: the directory is named after the hash of this file.
# Prints the directory on stdout.
set -euo pipefail
hash=$(sha256sum "$0" | cut -c1-12)
base=${WAZO_MM_ASTERISK_ROOTS:-/var/lib/wazo-mm-lab/asterisk-root}
dest="$base/$hash"
# The asterisk user: same uid/gid in the root and on the stacks (sid's postinst would pick 10x, which on
# the bookworm stacks belongs to sshd/messagebus), so spool, config and share files have one owner.
AST_ID=1100
log() { echo "build-asterisk-root: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -x "$dest/usr/sbin/asterisk" ] && [ -f "$dest/.wazo-mm-complete" ]; then echo "$dest"; exit 0; fi

# Same mirror as the host (it may be a dated snapshot): never hard-code it.
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)"

mkdir -p "$base"
work=$(mktemp -d "$base/.build.XXXXXX")
rootfs="$work/rootfs"
cleanup() {
  mountpoint -q "$rootfs/proc" && umount "$rootfs/proc"
  rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap sid from $mirror (a minute or two)"
debootstrap --variant=minbase --include=ca-certificates sid "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap sid failed (log above)"; }
echo "deb $mirror sid main" > "$rootfs/etc/apt/sources.list"
echo 'Acquire::Check-Valid-Until "false";' > "$rootfs/etc/apt/apt.conf.d/99lab-snapshot"
# No daemon starts inside the build.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"

log "apt-get install asterisk asterisk-modules odbc-postgresql unixodbc (no recommends)"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 sh -c \
  'apt-get update -qq && apt-get install -y -qq --no-install-recommends asterisk asterisk-modules odbc-postgresql unixodbc' \
  >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get install in the sid root failed (log above)"; }
umount "$rootfs/proc"

# The asterisk user gets uid/gid $AST_ID; the files sid's postinst gave to the old ids follow.
old_uid=$(chroot "$rootfs" id -u asterisk)
old_gid=$(chroot "$rootfs" id -g asterisk)
chroot "$rootfs" groupmod -g "$AST_ID" asterisk
chroot "$rootfs" usermod -u "$AST_ID" -g "$AST_ID" asterisk
find "$rootfs" -xdev -uid "$old_uid" -exec chown -h "$AST_ID" {} +
find "$rootfs" -xdev -gid "$old_gid" -exec chgrp -h "$AST_ID" {} +

# Mount points used by asterisk.service (BindPaths) and by the CLI wrapper: the root is read-only in the
# stacks, so they must exist here. /stack/etc is the stack's /etc: the root's /etc/odbc.ini points into it,
# because the cel_odbc role rewrites /etc/odbc.ini by rename and a bind of the file itself would keep the
# old inode in Asterisk's view.
install -d "$rootfs/run/asterisk" "$rootfs/stack/etc" "$rootfs/var/spool/asterisk" "$rootfs/var/lib/asterisk" \
  "$rootfs/var/log/asterisk" "$rootfs/etc/asterisk" "$rootfs/run/systemd/incoming"
# Files systemd binds over (BindReadOnlyPaths, and the notify socket of Type=notify).
touch "$rootfs/etc/hosts" "$rootfs/etc/resolv.conf" "$rootfs/run/systemd/notify"
rm -f "$rootfs/etc/odbc.ini"
ln -s /stack/etc/odbc.ini "$rootfs/etc/odbc.ini"
# The root's own odbcinst.ini names sid's psqlODBC (PostgreSQL ANSI / PostgreSQL Unicode): checked here.
grep -q '^\[PostgreSQL ANSI\]' "$rootfs/etc/odbcinst.ini" || die "odbcinst.ini in the root has no [PostgreSQL ANSI]"
chroot "$rootfs" apt-get clean
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/usr/sbin/policy-rc.d"
version=$(chroot "$rootfs" dpkg-query -W -f "\${Version}" asterisk)
echo "asterisk $version, built $(date -u +%FT%TZ) by lab/build-asterisk-root.sh $hash" > "$rootfs/.wazo-mm-complete"

rm -rf "$dest"
mv "$rootfs" "$dest"
log "built $dest (asterisk $version, $(du -sh "$dest" | cut -f1))"
# Keep one root: drop older builds that no container mounts.
for old in "$base"/*; do
  [ "$old" = "$dest" ] || [ ! -d "$old" ] && continue
  podman ps -aq 2>/dev/null | xargs -r podman inspect --format '{{range .Mounts}}{{.Source}} {{end}}' 2>/dev/null \
    | grep -qF "$old" || rm -rf "$old"
done
echo "$dest"
