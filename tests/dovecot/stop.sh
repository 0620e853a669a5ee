#!/usr/bin/env bash
# tests/dovecot/stop.sh DIR [--kill] [--rm] -- stop the Dovecot that start.sh DIR started.
#   (default)  SIGTERM to the master and wait for it (~1.1 s: the master sleeps 1 s at shutdown)
#   --kill     SIGKILL the master's process group (master and all its children, ~20 ms)
#   --rm       delete DIR afterwards
# Only the pid in DIR/run/master.pid is signalled, and only if its command line names
# DIR/dovecot.conf. With --rm the watchdog start.sh may have left (DIR/run/watchdog.pid) goes too.
# The logic is tests/lib/lifetime.sh's stop_main, shared with tests/cyrus/stop.sh.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/lifetime.sh"
D=${1:?usage: stop.sh DIR [--kill] [--rm]}; shift
[ -d "$D" ] || { echo "stop.sh: no directory $D" >&2; exit 0; }
D=$(cd "$D" && pwd -P)
stop_main dovecot "$D" "$D/dovecot.conf" bs-dovecot-watchdog "$D/run/watchdog.pid" "$@"
