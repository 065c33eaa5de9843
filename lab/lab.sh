#!/usr/bin/env bash
# The three-host lab: proxy, primary, secondary as systemd containers on one podman network, reached by
# Ansible over SSH as root with a lab key, exactly like real servers.
#   lab/lab.sh up IMAGE [ASTERISK_ROOT]
#                         create (or keep) the lab and write $LAB_DIR/inventory.yml; ASTERISK_ROOT (made by
#                         lab/build-asterisk-root.sh: the real Asterisk 22 in a Debian sid directory) is bound
#                         read-only at /opt/asterisk-root in the two stacks
#   lab/lab.sh down       remove containers, network and $LAB_DIR (the image is kept as a build cache)
#   lab/lab.sh status     print the containers
# Several labs can coexist: LAB_NAME (default wmm) prefixes every name, LAB_OCTET (default 10) picks
# the subnet 10.89.<octet>.0/24, LAB_DIR (default .lab, or .lab-<name>) holds key, inventory, share.
# The proxy runs Debian's firewalld (nftables backend, its default zone as shipped: ssh and dhcpv6-client
# only), so every proof that goes through the proxy also proves what setup.yml opens; LAB_FIREWALLD=0 leaves
# it off (the stacks never run it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
LAB_NAME=${LAB_NAME:-wmm}
LAB_OCTET=${LAB_OCTET:-10}
LAB_FIREWALLD=${LAB_FIREWALLD:-1}
if [ "$LAB_NAME" = wmm ]; then LAB_DIR=${LAB_DIR:-.lab}; else LAB_DIR=${LAB_DIR:-.lab-$LAB_NAME}; fi
case "$LAB_DIR" in /*) ;; *) LAB_DIR="$root/$LAB_DIR" ;; esac
net="$LAB_NAME-lab"
subnet="10.89.$LAB_OCTET.0/24"
declare -A IPS=([proxy]="10.89.$LAB_OCTET.10" [primary]="10.89.$LAB_OCTET.11" [secondary]="10.89.$LAB_OCTET.12")
HOSTS=(proxy primary secondary)

log() { echo "lab: $*" >&2; }
die() { log "$*"; exit 1; }

up() {
  local image=$1 astroot=${2:-}
  command -v podman >/dev/null || die "podman is missing: run lab/host-setup.sh"
  podman info >/dev/null 2>&1 || die "podman is unusable: $(podman info 2>&1 | tail -n 2)"
  podman image exists "$image" || die "image $image not found: run lab/build-image.sh"
  if [ -n "$astroot" ]; then
    [ -x "$astroot/usr/sbin/asterisk" ] || die "no Asterisk root at $astroot: run lab/build-asterisk-root.sh"
  fi

  if podman network exists "$net"; then
    have=$(podman network inspect "$net" --format '{{range .Subnets}}{{.Subnet}}{{end}}')
    [ "$have" = "$subnet" ] || die "network $net exists with subnet $have, not $subnet: run 'make lab-down' first"
  else
    # Refuse a subnet already used by another podman network (another lab, another project).
    for n in $(podman network ls --format '{{.Name}}'); do
      s=$(podman network inspect "$n" --format '{{range .Subnets}}{{.Subnet}}{{end}}')
      [ "$s" != "$subnet" ] || die "subnet $subnet is already used by podman network $n: set LAB_OCTET"
    done
    podman network create --subnet "$subnet" "$net" >/dev/null
  fi

  mkdir -p "$LAB_DIR/share"
  [ -f "$LAB_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "wazo-mm-lab-$LAB_NAME" -f "$LAB_DIR/id_ed25519"

  for h in "${HOSTS[@]}"; do
    local c="$LAB_NAME-$h" ip=${IPS[$h]} want_root="" root_args=()
    if [ "$h" != proxy ] && [ -n "$astroot" ]; then
      want_root=$astroot
      root_args=(-v "$astroot:/opt/asterisk-root:ro")
    fi
    if podman container exists "$c"; then
      local have_img have_ip have_root
      have_img=$(podman inspect "$c" --format '{{.ImageName}}')
      have_ip=$(podman inspect "$c" --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" 2>/dev/null || true)
      have_root=$(podman inspect "$c" --format '{{index .Config.Labels "wazo-mm-asterisk-root"}}' 2>/dev/null || true)
      [ "$have_root" != "<no value>" ] || have_root=""
      if [ "$have_img" != "$image" ] || [ "$have_ip" != "$ip" ] || [ "$have_root" != "$want_root" ]; then
        die "container $c exists with another layout (image $have_img, ip ${have_ip:-none}, asterisk root ${have_root:-none}; want $image, $ip, ${want_root:-none}): run 'make lab-down' first"
      fi
      [ "$(podman inspect "$c" --format '{{.State.Running}}')" = true ] || podman start "$c" >/dev/null
      continue
    fi
    log "starting $c ($ip)"
    # SYS_ADMIN: bind mounts (voicemail share); NET_ADMIN: iptables (wazo-service's udp/5060 DROP);
    # DAC_READ_SEARCH: nfs-ganesha.
    podman run -d --name "$c" --hostname "$h" --network "$net" --ip "$ip" --systemd=always \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add DAC_READ_SEARCH --cap-add NET_RAW \
      --tmpfs /tmp --tmpfs /run --tmpfs /run/lock \
      -v "$LAB_DIR/share:/srv/lab-share:z" "${root_args[@]}" \
      --label "wazo-mm-lab=$LAB_NAME" --label "wazo-mm-asterisk-root=$want_root" \
      "$image" /lib/systemd/systemd >/dev/null
  done

  local pub; pub=$(cat "$LAB_DIR/id_ed25519.pub")
  for h in "${HOSTS[@]}"; do
    local c="$LAB_NAME-$h" ok=""
    for _ in $(seq 1 60); do
      state=$(podman exec "$c" systemctl is-system-running 2>/dev/null || true)
      case "$state" in running|degraded) ok=1; break ;; esac
      sleep 1
    done
    [ -n "$ok" ] || die "$c: systemd did not come up (state '$state'); see: podman exec $c journalctl -b"
    if [ "$h" = proxy ] && [ "$LAB_FIREWALLD" != 0 ]; then
      podman exec "$c" systemctl enable --now firewalld.service >/dev/null 2>&1 || true
      [ "$(podman exec "$c" firewall-cmd --state 2>&1)" = running ] \
        || die "$c: firewalld does not run; see: podman exec $c journalctl -u firewalld"
    fi
    podman exec "$c" sh -c "install -d -m 700 /root/.ssh && touch /root/.ssh/authorized_keys && \
      chmod 600 /root/.ssh/authorized_keys && (grep -qF '$pub' /root/.ssh/authorized_keys || echo '$pub' >> /root/.ssh/authorized_keys)"
  done

  : > "$LAB_DIR/known_hosts.tmp"
  for h in "${HOSTS[@]}"; do
    local ip=${IPS[$h]} ok=""
    for _ in $(seq 1 30); do
      if ssh -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=accept-new \
           -o UserKnownHostsFile="$LAB_DIR/known_hosts.tmp" -i "$LAB_DIR/id_ed25519" "root@$ip" true 2>/dev/null; then
        ok=1; break
      fi
      sleep 1
    done
    [ -n "$ok" ] || die "cannot ssh to root@$ip ($h)"
  done
  mv "$LAB_DIR/known_hosts.tmp" "$LAB_DIR/known_hosts"

  cat > "$LAB_DIR/inventory.yml" <<INV
# Written by 'make lab-up' (lab/lab.sh). The lab's settings for the playbooks are in group_vars/ beside it.
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: $LAB_DIR/id_ed25519
    ansible_ssh_common_args: >-
      -o UserKnownHostsFile=$LAB_DIR/known_hosts -o StrictHostKeyChecking=yes
    wazo_mm_lab_name: $LAB_NAME
    wazo_mm_lab_share: /srv/lab-share
  children:
    proxy:
      hosts:
        proxy:
          ansible_host: ${IPS[proxy]}
    primary:
      hosts:
        primary:
          ansible_host: ${IPS[primary]}
    secondary:
      hosts:
        secondary:
          ansible_host: ${IPS[secondary]}
    nfs_server:
      hosts:
        proxy: {}
INV
  # The lab's variables (addresses, vaulted-in-production secrets with lab values) live in the repo.
  ln -sfn "$root/tests/lab/group_vars" "$LAB_DIR/group_vars"
  log "up: proxy ${IPS[proxy]}, primary ${IPS[primary]}, secondary ${IPS[secondary]}; inventory $LAB_DIR/inventory.yml"
}

down() {
  for h in "${HOSTS[@]}"; do
    podman rm -f -t 5 "$LAB_NAME-$h" >/dev/null 2>&1 || true
  done
  podman network exists "$net" && podman network rm -f "$net" >/dev/null
  rm -rf "$LAB_DIR"
  log "down: $LAB_NAME removed"
}

status() {
  podman ps -a --filter "label=wazo-mm-lab=$LAB_NAME" --format '{{.Names}}\t{{.Status}}\t{{.Networks}}'
}

case "${1:-}" in
  up) shift; up "${1:?usage: lab.sh up IMAGE [ASTERISK_ROOT]}" "${2:-}" ;;
  down) down ;;
  status) status ;;
  *) die "usage: lab.sh up IMAGE [ASTERISK_ROOT] | down | status" ;;
esac
