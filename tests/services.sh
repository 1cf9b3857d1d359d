#!/usr/bin/env bash
# What the tests need from the machine: OpenLDAP (slapd, ldap-utils), systemd-analyze, promtool, Chromium and
# PostgreSQL installed, PostgreSQL running with the test role and database. Idempotent; uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
  echo "installing slapd and ldap-utils from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null
  # The tests run their own slapd on a random port; the packaged service is not needed.
  $SUDO systemctl disable --now slapd >/dev/null 2>&1 || $SUDO service slapd stop >/dev/null 2>&1 || true
fi

# systemd-analyze checks the unit files in systemd/ (tests/test_systemd_units.py). The tests only
# read unit files with it; systemd itself is never started.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing systemd (for systemd-analyze) from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# The console's browser tests (tests/console/) drive Debian's Chromium with its chromedriver; a
# Chinese font makes their screenshots readable (the office machines have one of their own).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium, chromium-driver and a Chinese font from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-microhei >/dev/null
fi

# promtool (Debian's prometheus package) checks and unit-tests the alert rules in ops/
# (tests/test_ops.py). Only promtool is used; the packaged Prometheus server is stopped.
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (for promtool) from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || $SUDO service prometheus stop >/dev/null 2>&1 || true
fi

# PostgreSQL for the tests of state, leadership and the SQL source on the real server. Debian's
# package creates a "main" cluster; it is started below whether or not the package started it.
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
    if [ "$status" != "online" ]; then
      echo "starting PostgreSQL $version/$cluster" >&2
      $SUDO pg_ctlcluster "$version" "$cluster" start || true
    fi
  done
fi

# A role and database for the PostgreSQL tests (SYNCD_TEST_PG_URL), created once.
if command -v psql >/dev/null 2>&1 && pg_lsclusters --no-header 2>/dev/null | grep -q online; then
  as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
  for _ in 1 2 3 4 5 6 7 8 9 10; do as_postgres "psql -qAtc 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
  if ! as_postgres "psql -qAtc \"select 1 from pg_roles where rolname='syncd_test'\"" | grep -q 1; then
    as_postgres "psql -qc \"create role syncd_test login password 'syncd_test'\""
  fi
  # syncd_test_other: another unit's state on the same server (the leader's takeover must leave it alone).
  for database in syncd_test syncd_test_other; do
    if ! as_postgres "psql -qAtc \"select 1 from pg_database where datname='$database'\"" | grep -q 1; then
      as_postgres "psql -qc 'create database $database owner syncd_test'"
    fi
  done
fi
