#!/usr/bin/env bash
# Make sure a RabbitMQ answers on the AMQP_URI's host and port, with the
# management plugin the tests use for per-test vhosts.
# Starts the local one when it is installed but stopped; installs the
# distribution's package when it is missing and we are root on a Debian-like
# machine; otherwise says in one sentence what to do.
set -u
uri="${AMQP_URI:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${uri#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5672

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }
local_host() { case "$host" in 127.*|localhost|::1) return 0;; *) return 1;; esac; }

if ! answers; then
  if ! local_host; then
    echo "RabbitMQ at $host:$port does not answer; start it there or set AMQP_URI." >&2; exit 1
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing rabbitmq-server from the distribution's packages..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null || {
        echo "Could not install rabbitmq-server: install it (apt-get install rabbitmq-server) and try again." >&2; exit 1; }
    else
      echo "RabbitMQ is not installed: install rabbitmq-server (3.10 or newer) and try again." >&2; exit 1
    fi
  fi
  echo "Starting RabbitMQ..."
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do answers && break; sleep 1; done
  answers || { echo "RabbitMQ did not start within 90 s; see /var/log/rabbitmq." >&2; exit 1; }
fi

if [ "${WITH_MANAGEMENT:-0}" = 1 ] && local_host && command -v rabbitmq-plugins >/dev/null 2>&1; then
  if ! curl -fs -u guest:guest "http://$host:15672/api/overview" >/dev/null 2>&1; then
    rabbitmq-plugins enable --online rabbitmq_management >/dev/null 2>&1 \
      || rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do curl -fs -u guest:guest "http://$host:15672/api/overview" >/dev/null 2>&1 && break; sleep 1; done
  fi
  curl -fs -u guest:guest "http://$host:15672/api/overview" >/dev/null 2>&1 \
    || { echo "The RabbitMQ management API on $host:15672 does not answer (rabbitmq-plugins enable rabbitmq_management)." >&2; exit 1; }
fi
exit 0
