#!/usr/bin/env bash
# Install the Debian packages that the real-server tests and the demo use, if they are missing:
# prometheus (with promtool), prometheus-alertmanager (with amtool), and python3-numpy for the
# Python 3.11 that Triton's Python backend embeds, and python3-venv for the systemd install
# (README "Running under systemd": a venv under /opt/lifecycled), chromium, the headless
# browser the HTML drift report is tested in, and openssl, which makes the listener's test
# certificate, and postgresql, the server the state store tests and the replica tests run on
# (started by the tests themselves, in a temporary folder), and pgbouncer, which a store test
# puts in front of it.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing Debian packages: ${need[*]} (run as root: apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
# The Debian packages start their services; the tests start their own instances on free ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql pgbouncer; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
