#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is not on PATH, for the
# Redis ledger tests (internal/testredis starts a private server per test).
# Idempotent: does nothing when redis-server is already installed.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends redis-server

command -v redis-server >/dev/null
