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
for s in "${scenarios[@]}"; do
  echo "=== molecule scenario $s"
  molecule test -s "$s"
done
