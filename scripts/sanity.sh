#!/usr/bin/env bash
# ansible-test sanity needs the collection under .../ansible_collections/<ns>/<name>; copy the
# files git knows about (tracked or not ignored) there and run it with the venv's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# A private copy per run: two runs at once (two checkouts, CI beside a developer) must not share it.
if [[ -n "${SANITY_DIR:-}" ]]; then
  BASE=$SANITY_DIR
else
  BASE=$(mktemp -d "${TMPDIR:-/tmp}/autonomi-network-migration-sanity.XXXXXX")
  trap 'rm -rf "$BASE"' EXIT
fi
DEST=$BASE/ansible_collections/autonomi/network_migration
rm -rf "$DEST"; mkdir -p "$DEST"
# Sanity covers the collection's Ansible content and its unit tests. The simulator and the CLI
# (src/), the benchmarks, scripts and the pytest suites that drive the simulated fleet are plain
# Python packages and test harnesses outside the collection: ruff checks them (make lint).
git ls-files --cached --others --exclude-standard -z \
  | grep -zv -E '^(src|bench|scripts|\.ci|tests/integration|tests/scenarios|tests/unit/cli|tests/unit/sim|tests/unit/dashboard|tests/security)/' \
  | rsync -a --from0 --files-from=- ./ "$DEST/"

# ansible-test bootstraps pip from the internet; on this network only the package registry is
# reachable, so give it a get-pip that uses ensurepip and then the registry.
pyver=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cache=~/.ansible/test/cache
mkdir -p "$cache"
pipver=$(sed -n "s/.*pip='\\([0-9.]*\\)'.*/\\1/p" "$(.venv/bin/python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -1)
cat > "$cache/get_pip_${pipver//./_}.py" <<'PY'
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if not a.startswith("-")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--cert", "/etc/ssl/certs/ca-certificates.crt", *args])
PY
cd "$DEST"
"$ROOT/.venv/bin/ansible-test" sanity --local --python "$pyver" --color no "$@"
