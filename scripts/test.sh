#!/usr/bin/env bash
# The body of `make test` (after set-up): lint, molecule and pytest, with independent parts side by side.
#
#   lane 1: ruff -> ansible-lint (production) -> ansible-test sanity   (CPU: linters)
#   lane 2: the molecule scenarios, one after the other                (mostly waits on fleets and Prometheus)
#   then:   pytest tests/ on TEST_WORKERS pytest-xdist workers, a whole file per worker (--dist loadfile)
#
# The lanes share nothing: every fleet, Prometheus and PostgreSQL server picks free ports and lives
# in a directory of its own (SimStack, molecule's ephemeral directory), sanity copies the collection
# to a private directory. pytest starts after both lanes, so its waits and windows are not judged
# while the linters hold the CPUs. Any failure in any part fails the whole run (after all of it ran).
#
#   TEST_WORKERS=0 scripts/test.sh   everything one after the other, as before (pytest without xdist)
#   TEST_PARALLEL=0                  lanes one after the other, pytest still on TEST_WORKERS workers
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BIN=.venv/bin
export PATH="$PWD/$BIN:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
WORKERS=${TEST_WORKERS:-2}
PARALLEL=${TEST_PARALLEL:-1}
[[ $WORKERS == 0 ]] && PARALLEL=0

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
stamp() { date -u +%H:%M:%S; }
started=$(date +%s)

lint_lane() {
  echo "==> ruff"; "$BIN/ruff" check . || return 1
  echo "==> ansible-lint (production profile)"; "$BIN/ansible-lint" || return 1
  echo "==> ansible-test sanity"; scripts/sanity.sh
}

molecule_lane() {
  echo "==> molecule (driver default, local connection, simulated fleet)"
  # Each scenario gets an ephemeral directory (its fleet, ledger, Prometheus URL) of this run's own:
  # molecule's default, ~/.ansible/tmp/molecule.<checksum of "extensions">.<scenario>, is the same
  # for every checkout on the machine, so two checkouts testing at once would share one ledger.
  local s eph
  eph=$(mktemp -d "${TMPDIR:-/tmp}/make-test-molecule.XXXXXX")
  for s in extensions/molecule/*/; do
    s=$(basename "$s")
    echo "==> molecule scenario $s ($(stamp))"
    mkdir -p "$eph/$s"
    (cd extensions && MOLECULE_EPHEMERAL_DIRECTORY="$eph/$s" "$ROOT/$BIN/molecule" test -s "$s") || { rm -rf "$eph"; return 1; }
  done
  rm -rf "$eph"
}

failed=()
if [[ $PARALLEL == 1 ]]; then
  logdir=$(mktemp -d "${TMPDIR:-/tmp}/make-test.XXXXXX")
  say "lint (ruff, ansible-lint, sanity) beside molecule, $(stamp); lint output: $logdir/lint.log (shown when done)"
  lint_lane >"$logdir/lint.log" 2>&1 &
  lint_pid=$!
  trap 'kill "$lint_pid" 2>/dev/null; rm -rf "$logdir"' EXIT
  molecule_lane || failed+=(molecule)
  wait "$lint_pid" || failed+=(lint)
  say "lint output ($(stamp))"
  cat "$logdir/lint.log"
else
  lint_lane || failed+=(lint)
  ((${#failed[@]})) || molecule_lane || failed+=(molecule)
fi
say "lint and molecule done in $(( $(date +%s) - started )) s ($(stamp))"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi

say "pytest: unit, promtool rules, integration and scenarios (simulated fleet + real Prometheus, PostgreSQL), $(stamp)"
xdist=()
((WORKERS > 0)) && xdist=(-n "$WORKERS" --dist loadfile --no-loadscope-reorder)
"$BIN/pytest" tests "${xdist[@]}" --durations=30
rc=$?
say "make test: pytest exit $rc, $(( $(date +%s) - started )) s in all ($(stamp))"
exit $rc
