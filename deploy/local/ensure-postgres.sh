#!/usr/bin/env bash
# Start the local PostgreSQL for the tests that are about PostgreSQL, when it
# is installed but stopped. Tests marked `postgres` are skipped with a reason
# only where no PostgreSQL is installed at all.
set -u
answers() { (exec 3<>"/dev/tcp/127.0.0.1/5432") 2>/dev/null; }
answers && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
fi
echo "PostgreSQL is not running on 127.0.0.1:5432; the PostgreSQL tests will be skipped." >&2
exit 0
