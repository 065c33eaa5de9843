#!/usr/bin/env bash
# Prepare this Debian 12 machine to run the lab: packages, then the two host fixes podman needs here
# (see ../shared/reference/lab-recipe.md). Idempotent; safe to run on every `make`.
set -euo pipefail

PACKAGES=(podman netavark aardvark-dns iptables debootstrap sip-tester rsync make git python3-venv
          kamailio kamailio-extra-modules tcpdump postgresql-15 python3-psycopg2)

die() { echo "host-setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (rootful podman, apt-get)"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "host-setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
# Kamailio is installed on the host only so tests can start it on loopback; never as a service here.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

# Fix 1: podman's default ulimits exceed this machine's hard limits.
conf=/etc/containers/containers.conf
want='default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
if ! grep -qF "$want" "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  {
    echo "# written by wazo.maintenance_mode lab/host-setup.sh"
    echo "[containers]"
    echo "$want"
    if [ ! -d /run/systemd/system ]; then
      echo "[engine]"
      echo 'cgroup_manager = "cgroupfs"'
      echo 'events_logger = "file"'
    fi
  } > "$conf"
fi

# Fix 2: cgroup v1 hybrid, the cgroup2 mount still owns hugetlb: give it a v1 hierarchy.
if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mountpoint -q /sys/fs/cgroup/hugetlb || mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb \
    || die "cannot mount the hugetlb cgroup hierarchy (see lab-recipe.md, fix 2)"
fi

podman info >/dev/null 2>&1 || die "podman is installed but unusable: $(podman info 2>&1 | tail -n 3)"
