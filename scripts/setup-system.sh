#!/usr/bin/env bash
# Install the Debian packages that the demo or the tests use, if they are missing.
#
#   scripts/setup-system.sh demo   prometheus (with promtool) and prometheus-alertmanager: the demo
#                                  runs them when present and says so in one line when not; as
#                                  root they are installed, otherwise nothing is and it goes on.
#   scripts/setup-system.sh test   what the real-server tests need besides: python3-numpy for the
#                                  Python 3.11 that Triton's Python backend embeds, python3-venv
#                                  and python3-seccomp (the installed daemon is run under the
#                                  unit's system-call filter), systemd (systemd-analyze), chromium
#                                  (the HTML report and dashboards are viewed in it), openssl
#                                  (test certificates), postgresql and pgbouncer (state store
#                                  tests; each test starts its own server in a temporary folder).
#                                  Without root, missing packages are an error.
#
# It never starts, stops or reconfigures a service: a host that already runs Prometheus,
# Alertmanager or PostgreSQL keeps them as they are (the demo and the tests use free ports).
set -euo pipefail
what=${1:-test}
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [ "$what" = test ]; then
  /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
  /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  /usr/bin/python3 -c 'import seccomp' >/dev/null 2>&1 || need+=(python3-seccomp)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
elif [ "$what" != demo ]; then
  echo "usage: $0 demo|test" >&2
  exit 2
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if [ "$what" = demo ]; then
    echo "setup-system: the demo runs without ${need[*]} (as root: apt-get install ${need[*]})" >&2
    exit 0
  fi
  echo "setup-system: missing Debian packages: ${need[*]} (run as root: apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages are installed without starting their services where the host lets us say so.
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
