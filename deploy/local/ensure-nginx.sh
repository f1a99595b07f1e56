#!/usr/bin/env bash
# The edge tests run the compose file's nginx configuration for real, in
# front of a test stack, with the distribution's nginx. Install it once; the
# package's own service is never started (the tests run nginx with a
# configuration of their own, on a port of their own).
set -eu
NGINX="${CHATVAKT_NGINX:-/usr/sbin/nginx}"
[ -x "$NGINX" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: the package must not start a system nginx on port 80.
install_nginx() {
  local made=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    $1 sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    made=1
  fi
  $1 apt-get update -qq && $1 apt-get install -y -qq nginx-light >/dev/null || true
  [ -z "$made" ] || $1 rm -f /usr/sbin/policy-rc.d
}
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  install_nginx ""
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  install_nginx sudo
fi
[ -x "$NGINX" ] && exit 0
echo "nginx is not installed at $NGINX; the proxy tests will be skipped." >&2
exit 0
