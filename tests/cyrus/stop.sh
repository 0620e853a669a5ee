#!/usr/bin/env bash
# tests/cyrus/stop.sh DIR [--kill] [--rm] -- stop the Cyrus that start.sh DIR started.
#   (default)  SIGTERM to the master and wait for it
#   --kill     SIGKILL the master's process group (master and all its services)
#   --rm       delete DIR afterwards (and the watchdog start.sh may have left)
# Only the pid in DIR/run/master.pid is signalled, and only if its command line names
# DIR/imapd.conf. The logic is tests/lib/lifetime.sh's stop_main, shared with tests/dovecot/stop.sh.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/lifetime.sh"
D=${1:?usage: stop.sh DIR [--kill] [--rm]}; shift
[ -d "$D" ] || exit 0
D=$(cd "$D" && pwd -P)
stop_main cyrus "$D" "$D/imapd.conf" bs-cyrus-watchdog "$D/watchdog.pid" "$@"
