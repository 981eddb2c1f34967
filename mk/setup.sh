#!/bin/sh
# Install the Debian packages listed in $1 that are not installed yet.
# Runs as root (CI, fresh machines); as another user it prints the command to run and fails.
set -eu
list="$1"
missing=""
for p in $(grep -v '^#' "$list"); do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "setup: installing missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "setup: not root; run: sudo apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing; }
