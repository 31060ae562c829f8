#!/usr/bin/env bash
# Idempotent set-up for working in this checkout: virtualenv, Python packages, the
# collection linked into ./collections, Prometheus (and, with --postgres, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --test: also what the test suite needs (PostgreSQL server, shellcheck for sanity, OpenSSH server
# and sudo for the fleet reached over SSH).
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

if [[ ! -x .venv/bin/python ]]; then
  say "creating virtualenv .venv"
  "$PY" -m venv .venv
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f "$stamp" ]]; then
  say "installing Python packages into .venv (pyproject.toml)"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
else
  say "Python packages up to date"
fi

say "linking this checkout as collections/ansible_collections/autonomi/network_migration"
mkdir -p collections/ansible_collections/autonomi
ln -sfn ../../.. collections/ansible_collections/autonomi/network_migration
# The tools, the simulator and the tests find the collection through Ansible's collection loader
# (ansible.cfg's collections_path = ./collections), as ansible-playbook does; no .pth file. Remove
# the one earlier set-ups wrote, so that nothing here imports the collection by another way.
rm -f "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/autonomi_network_migration_collection.pth"

apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    say "installing Debian package(s): $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; then
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
    fi
  else
    echo "ERROR: $* is required but missing, and apt-get (as root) is not available." >&2
    echo "       Install it with your package manager (Debian: apt-get install $*)." >&2
    exit 1
  fi
}

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
else
  say "prometheus found: $(command -v prometheus)"
fi

# Alertmanager (make sim-up, the alerting tests; amtool validates the routing).
if ! command -v prometheus-alertmanager >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  apt_install prometheus-alertmanager
else
  say "alertmanager found: $(command -v prometheus-alertmanager)"
fi

# GNU time: the benchmarks' per-process CPU split (bench/rollback.py wraps modules, antctl, systemctl).
if [[ ! -x /usr/bin/time ]]; then
  apt_install time
fi

# Event-driven rollback: ansible-rulebook's rule engine (drools) needs Java 17.
if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -q 'version "\(1[7-9]\|2[0-9]\)'; then
  apt_install openjdk-17-jre-headless
else
  say "java found: $(command -v java)"
fi

# ansible-rulebook lives in its own virtualenv: it pins websockets<15.1, the dashboard needs
# websockets 17 (pip cannot install both into .venv). The rulebook's playbooks still run with
# .venv's ansible-playbook (put .venv/bin first on PATH when starting it).
EDA_REQS=("ansible-rulebook~=1.3.2" "ansible-core~=2.19.0" "ansible-runner~=2.4" "psycopg[binary]~=3.3" "PyYAML~=6.0")
eda_stamp=.venv-eda/.installed-$(printf '%s\n' "${EDA_REQS[@]}" | sha256sum | cut -c1-16)
if [[ ! -f "$eda_stamp" ]]; then
  say "installing ansible-rulebook into .venv-eda"
  [[ -x .venv-eda/bin/python ]] || "$PY" -m venv .venv-eda
  .venv-eda/bin/pip install --quiet --upgrade pip
  .venv-eda/bin/pip install --quiet "${EDA_REQS[@]}"
  rm -f .venv-eda/.installed-*
  touch "$eda_stamp"
else
  say "ansible-rulebook up to date (.venv-eda)"
fi
rm -f "$(.venv-eda/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/autonomi_network_migration_collection.pth"

if (( want_test )); then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
  else
    say "PostgreSQL server binaries found"
  fi
  command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck
  command -v rsync >/dev/null 2>&1 || apt_install rsync
  # The dashboard's browser test drives Debian's chromium through Playwright (no browser download).
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  # The SSH fleet (tests/scenarios/test_ssh_fleet.py, SIM_SSH=1 make sim-up): its own sshd on
  # loopback, accounts per host, become through sudo, modules run by the system Python.
  ssh_need=()
  [[ -x /usr/sbin/sshd ]] || ssh_need+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || ssh_need+=(sudo)
  [[ -x /usr/bin/python3 ]] || ssh_need+=(python3)
  if ((${#ssh_need[@]})); then apt_install "${ssh_need[@]}"; else say "openssh-server and sudo found"; fi
  # A real systemd in a container of its own (tests/realsystemd): systemd-nspawn and mmdebstrap.
  command -v systemd-nspawn >/dev/null 2>&1 || apt_install systemd-container
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
fi
say "set-up complete"
