#!/usr/bin/env bash
# Debian packages the tests need; installs only what is missing, so a second run is quick.
#   chromium         headless browser that opens the HTML report
#   docker-registry  a real OCI distribution registry on loopback (image source tests)
#   openssh-server   an sshd on loopback (host source tests over ssh)
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "system packages: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing a package must not start its service: tests start their own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
