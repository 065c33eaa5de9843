#!/usr/bin/env bash
# Run the molecule scenarios on the lab made by `make lab-up` (LAB_DIR/inventory.yml).
# Usage: tests/molecule.sh [scenario ...]   (default: every scenario, in the order below)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
LAB_DIR=${LAB_DIR:-.lab}
case "$LAB_DIR" in /*) ;; *) LAB_DIR="$PWD/$LAB_DIR" ;; esac
export LAB_INVENTORY="$LAB_DIR/inventory.yml"
[ -f "$LAB_INVENTORY" ] || { echo "molecule.sh: no lab inventory at $LAB_INVENTORY: run 'make lab-up'" >&2; exit 1; }

ORDER=(lab setup upgrade faults)
scenarios=("$@")
if [ "${#scenarios[@]}" -eq 0 ]; then
  for s in "${ORDER[@]}"; do [ -f "extensions/molecule/$s/molecule.yml" ] && scenarios+=("$s"); done
fi
# Each verifier's results in JUnit XML beside the lab; on a failure, the failed proofs are printed
# last, so the tail of a CI log says which proof failed and why.
failures() {
  python3 - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as exc:
    sys.exit('no verifier results (%s)' % exc)
for case in root.iter('testcase'):
    for bad in list(case.findall('failure')) + list(case.findall('error')):
        text = (bad.get('message') or bad.text or '').strip().splitlines()
        print('FAILED %s::%s: %s' % (case.get('classname'), case.get('name'), ' | '.join(text[:6])[:1500]))
PY
}
# A failed scenario stops the list, unless MOLECULE_KEEP_GOING=1 (for scenarios that converge the lab first).
rc=0
for s in "${scenarios[@]}"; do
  echo "=== molecule scenario $s"
  results="$LAB_DIR/verify-$s.xml"
  rm -f "$results"
  if ! PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --junitxml=$results -rfE" molecule test -s "$s"; then
    echo "=== molecule scenario $s FAILED; the failed proofs:"
    failures "$results" || true
    rc=1
    [ "${MOLECULE_KEEP_GOING:-0}" = 1 ] || exit 1
  fi
done
exit "$rc"
