#!/usr/bin/env bash
# Build the lab image from Debian packages: debootstrap bookworm + systemd + sshd + what a Wazo stack
# ships that the collection does not install itself (PostgreSQL 15), and Debian's firewalld (installed in every
# container, disabled: lab/lab.sh enables it on the proxy only). Rebuilt only when this recipe changes:
# the image tag is the hash of this file. Prints the image reference on stdout.
set -euo pipefail
hash=$(sha256sum "$0" | cut -c1-12)
image="localhost/wazo-mm-lab:$hash"
log() { echo "build-image: $*" >&2; }
die() { log "$*"; exit 1; }

if podman image exists "$image"; then echo "$image"; exit 0; fi

# Same mirror as the host (it may be a dated snapshot): never hard-code it.
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)"
secmirror=$(awk '/^URIs:/{u=$2} /^Suites:.*security/{print u; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$secmirror" ] || secmirror="${mirror%/debian}/debian-security"

work=$(mktemp -d /var/tmp/wazo-mm-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
log "debootstrap bookworm from $mirror (about a minute)"
INCLUDE=python3,python3-apt,systemd,systemd-sysv,dbus,openssh-server,openssh-client,sudo,iproute2,procps,\
ca-certificates,iputils-ping,less,cron,acl,rsync,iptables,curl,gnupg,postgresql-15,postgresql-client-15,\
python3-psycopg2,locales
debootstrap --variant=minbase --include="$INCLUDE" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

cat > "$rootfs/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $secmirror bookworm-security main
SRC
echo 'Acquire::Check-Valid-Until "false";' > "$rootfs/etc/apt/apt.conf.d/99lab-snapshot"
# firewalld after the base system (its polkitd dependency does not configure inside debootstrap); nothing
# starts in the chroot.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends firewalld \
  >"$work/firewalld.log" 2>&1 || { tail -n 20 "$work/firewalld.log" >&2; die "installing firewalld failed"; }
rm -f "$rootfs/usr/sbin/policy-rc.d"
# Units that make no sense in a container.
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
         getty@tty1.service console-getty.service systemd-logind.service systemd-remount-fs.service \
         sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
         dev-hugepages.mount dev-mqueue.mount systemd-modules-load.service systemd-sysctl.service \
         systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$u"
done
# SSH host keys are made at first boot, so every container has its own.
rm -f "$rootfs"/etc/ssh/ssh_host_*
cat > "$rootfs/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
chroot "$rootfs" systemctl enable ssh-hostkeys.service ssh.service cron.service >/dev/null 2>&1
# firewalld runs only where lab/lab.sh enables it (the proxy): off in the image.
chroot "$rootfs" systemctl disable firewalld.service >/dev/null 2>&1
[ ! -e "$rootfs/etc/systemd/system/multi-user.target.wants/firewalld.service" ] || die "firewalld still enabled in the image"
sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' "$rootfs/etc/locale.gen"
chroot "$rootfs" locale-gen >/dev/null 2>&1 || true
# Keep the package lists debootstrap fetched: a real server has them (roles install without an update).
chroot "$rootfs" apt-get clean

log "importing $image"
tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/lib/systemd/systemd"]' --change 'ENV container=podman' --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$image" >/dev/null || die "podman import failed"
# Keep one image: drop older builds of the recipe.
podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/wazo-mm-lab:' | grep -v ":$hash\$" \
  | xargs -r podman rmi >/dev/null 2>&1 || true
echo "$image"
