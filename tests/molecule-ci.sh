#!/usr/bin/env bash
# `make test`'s molecule step, on two labs side by side so that the whole run fits CI's time: the scenarios
# lab and setup on the main lab (LAB_NAME, LAB_DIR); faults then upgrade (each converges with setup.yml first)
# on a second lab (FAULTS_LAB_NAME, default <LAB_NAME>f, subnet 10.89.FAULTS_LAB_OCTET.0/24, default 19): about
# the same time on each (upgrade runs even when faults failed: it converges first). Both labs are made fresh.
# The second lab's output goes to <its lab dir>.log and is printed after the main scenarios; the last lines
# name every failed proof of either lab.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
LAB_NAME=${LAB_NAME:-wmm}
MAIN_DIR=${LAB_DIR:-$([ "$LAB_NAME" = wmm ] && echo .lab || echo ".lab-$LAB_NAME")}
F_NAME=${FAULTS_LAB_NAME:-${LAB_NAME}f}
F_OCTET=${FAULTS_LAB_OCTET:-19}
F_DIR=.lab-$F_NAME
F_LOG=$PWD/$F_DIR.log
MAIN_LOG=$PWD/$MAIN_DIR.log
image=$(cat .cache/image)
astroot=$(cat .cache/asterisk-root)

for lab in "$LAB_NAME:$MAIN_DIR" "$F_NAME:$F_DIR"; do
  LAB_NAME=${lab%%:*} LAB_DIR=${lab#*:} lab/lab.sh down
done

second_lab() {
  export LAB_NAME=$F_NAME LAB_OCTET=$F_OCTET LAB_DIR=$F_DIR
  lab/lab.sh up "$image" "$astroot"
  make --no-print-directory standin
  MOLECULE_KEEP_GOING=1 tests/molecule.sh faults upgrade
}
echo "=== molecule scenarios faults, upgrade: on lab $F_NAME, beside lab and setup (log: $F_LOG)"
second_lab > "$F_LOG" 2>&1 &
f_pid=$!

main_rc=0
(
  export LAB_NAME LAB_DIR=$MAIN_DIR
  lab/lab.sh up "$image" "$astroot" && make --no-print-directory standin && tests/molecule.sh lab setup
) 2>&1 | tee "$MAIN_LOG" || main_rc=$?
f_rc=0
wait "$f_pid" || f_rc=$?

echo "=== molecule scenarios faults, upgrade on lab $F_NAME (rc $f_rc), its log:"
cat "$F_LOG"
echo "=== molecule: lab, setup on lab $LAB_NAME: rc $main_rc; faults, upgrade on lab $F_NAME: rc $f_rc"
grep -h -e '^FAILED ' -e '^=== molecule scenario .* FAILED' "$MAIN_LOG" "$F_LOG" || true
[ "$main_rc" -eq 0 ] && [ "$f_rc" -eq 0 ]
