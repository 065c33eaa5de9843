#!/usr/bin/env bash
# make demo: on the lab (already up), set the system up, then upgrade both stacks while SIPp places calls
# through the proxy the whole time, and print what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
LAB_DIR=${LAB_DIR:-.lab}
case "$LAB_DIR" in /*) ;; *) LAB_DIR="$PWD/$LAB_DIR" ;; esac
inv="$LAB_DIR/inventory.yml"
[ -f "$inv" ] || { echo "demo: no lab ($inv): run make lab-up" >&2; exit 1; }
proxy=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['all']['children']['proxy']['hosts']['proxy']['ansible_host'])" "$inv")
run="$LAB_DIR/demo"
rm -rf "$run"; mkdir -p "$run"

echo "== 1/4 setup.yml"
ansible-playbook -i "$inv" playbooks/setup.yml | tail -n 8

echo "== 2/4 reset the stacks to the old version (lab only) so there is an upgrade to do"
ansible-playbook -i "$inv" tests/lab/reset_versions.yml | tail -n 5

echo "== 3/4 upgrade.yml under SIP load (10 calls/s, 2-30 s each, through the proxy $proxy)"
tests/load/sipp_load.py start --target "$proxy" --dir "$run/load" --rate 10 --calls 5000 >/dev/null
# calls per stack every second, for the report's timeline picture
python3 tests/load/sample_calls.py start --inventory "$inv" --out "$run/calls.csv" --interval 1 --max-seconds 1800
trap 'tests/load/sipp_load.py stop --dir "$run/load" --wait 5 >/dev/null 2>&1 || true;
      python3 tests/load/sample_calls.py stop --out "$run/calls.csv" >/dev/null' EXIT
sleep 15
rc=0
ansible-playbook -i "$inv" playbooks/upgrade.yml -e "wazo_mm_upgrade_report_dir=$run/reports" \
  -e "wazo_mm_upgrade_calls_samples=$run/calls.csv" | tee "$run/upgrade.log" | tail -n 25 || rc=$?
# at least 1000 calls in all, then let the calls in progress end
for _ in $(seq 1 300); do
  created=$(tail -n 1 "$run/load/stat.csv" | cut -d';' -f13)
  [ "${created:-0}" -ge 1000 ] && break
  sleep 1
done
result=$(tests/load/sipp_load.py stop --dir "$run/load" --wait 90)
python3 tests/load/sample_calls.py stop --out "$run/calls.csv" >/dev/null
trap - EXIT

echo "== 4/4 result"
python3 - "$result" "$run/reports" <<'PY'
import json, sys, glob
res = json.loads(sys.argv[1])
print("SIP calls: %(created)d placed, %(successful)d completed, %(failed)d failed (peak %(peak_concurrent)d at once)" % res)
for md in sorted(glob.glob(sys.argv[2] + "/*.md")):
    print(open(md).read())
for svg in sorted(glob.glob(sys.argv[2] + "/*-timeline.svg")):
    print("Timeline picture (calls per stack, steps marked): %s" % svg)
sys.exit(0 if res["failed"] == 0 else 1)
PY
exit "$rc"
