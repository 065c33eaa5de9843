#!/usr/bin/env bash
# Run `ansible-test sanity` on this collection (what `make sanity` calls).
#
# ansible-test must run from a directory named ansible_collections/<namespace>/<name>, so the
# tracked and untracked-but-not-ignored files (git ls-files -co --exclude-standard) are mirrored
# into .build/ansible_collections/wazo/maintenance_mode and the tests run there.
#
# No containers: `--venv` delegates to a virtual environment (kept in the mirror's tests/output,
# which the mirror sync does not delete) and each sanity test gets its own pinned virtual
# environment from ansible-test. Those live under HOME, which is pointed at .cache/ansible-test so
# everything stays inside the checkout: PyPI is needed on the first run only.
#
# Usage: tests/sanity.sh [extra ansible-test sanity args, e.g. --test pep8 plugins/modules/x.py]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PYTHON_VERSION=${SANITY_PYTHON:-3.11}
MIRROR=$ROOT/.build/ansible_collections/wazo/maintenance_mode
export HOME=$ROOT/.cache/ansible-test

if [ ! -x "$VENV/bin/ansible-test" ]; then
    echo "sanity: $VENV/bin/ansible-test missing, run 'make venv' first" >&2
    exit 2
fi
# The shellcheck sanity test is skipped (with only a warning) when the binary is missing.
if ! command -v shellcheck >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "sanity: installing shellcheck (apt)" >&2
        apt-get install -y -q shellcheck >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q shellcheck >/dev/null; }
    else
        echo "sanity: WARNING shellcheck not installed, the shellcheck test will be skipped" >&2
    fi
fi

mkdir -p "$MIRROR" "$HOME"

# ansible-test creates its virtual environments without pip and bootstraps pip with a get-pip
# script it downloads from a host other than PyPI (unreachable here). It uses a cached script when
# one exists: provide one that installs the same pip from the PyPI wheel, kept in the cache.
AT_DIR=$("$VENV/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
PIP_VERSION=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$AT_DIR/_internal/python_requirements.py" | head -n1)
if [ -z "$PIP_VERSION" ]; then
    echo "sanity: cannot find the pip version ansible-test bootstraps" >&2
    exit 2
fi
AT_CACHE=$HOME/.ansible/test/cache
WHEELS=$AT_CACHE/wheels
if ! ls "$WHEELS"/pip-"$PIP_VERSION"-*.whl >/dev/null 2>&1; then
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$WHEELS" "pip==$PIP_VERSION"
fi
mkdir -p "$AT_CACHE"
cat > "$AT_CACHE/get_pip_${PIP_VERSION//./_}.py" <<PY
# Stand-in for get-pip.py, written by tests/sanity.sh: run pip from its wheel to install itself.
import glob, sys
wheel = glob.glob('$WHEELS/pip-$PIP_VERSION-*.whl')[0]
sys.path.insert(0, wheel)
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--no-index', '--find-links', '$WHEELS'] + args))
PY
# Mirror exactly the files git would ship (tracked + new, minus .gitignore'd); drop stale ones
# but keep ansible-test's own output (its delegation venv lives there).
git ls-files -co --exclude-standard -z \
    | rsync -a --ignore-missing-args --from0 --files-from=- ./ "$MIRROR/"
# rsync --files-from does not delete files that left the list: remove them here.
git ls-files -co --exclude-standard -z | sort -z > "$HOME/files.list"
(cd "$MIRROR" && find . -path ./tests/output -prune -o ! -type d -printf '%P\0' | sort -z) > "$HOME/mirror.list"
comm -z -13 "$HOME/files.list" "$HOME/mirror.list" | (cd "$MIRROR" && xargs -0 -r rm -f --)
find "$MIRROR" -mindepth 1 -depth -type d -empty ! -path "$MIRROR/tests/output*" -delete

# The ignore files name other engineers' files, which may not be committed (or may be renamed) yet:
# drop, with a warning, the entries whose file is not in the mirror rather than fail on them.
for ignore in "$MIRROR"/tests/sanity/ignore-*.txt; do
    [ -f "$ignore" ] || continue
    while IFS= read -r line; do
        path=${line%% *}
        if [ -e "$MIRROR/$path" ]; then
            printf '%s\n' "$line"
        else
            echo "sanity: WARNING ${ignore#"$MIRROR"/}: no $path, entry skipped" >&2
        fi
    done < "$ignore" > "$ignore.tmp"
    mv "$ignore.tmp" "$ignore"
done

cd "$MIRROR"
# ansible-test takes its file list from the nearest .git upwards: give the mirror its own, else it
# would find the checkout's, where .build/ is ignored, and skip every target.
[ -d .git ] || git init -q .
start=$(date +%s)
rc=0
"$VENV/bin/ansible-test" sanity --color no --python "$PYTHON_VERSION" --venv --requirements "$@" || rc=$?
echo "sanity: ansible-test finished rc=$rc in $(( $(date +%s) - start ))s (results: $MIRROR/tests/output)" >&2
exit "$rc"
