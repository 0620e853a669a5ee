#!/usr/bin/env bash
# tests/cyrus/stop.sh DIR [--kill] [--rm] -- stop the Cyrus that start.sh DIR started.
#   (default)  SIGTERM to the master and wait for it
#   --kill     SIGKILL the master's process group (master and all its services)
#   --rm       delete DIR afterwards (and the watchdog start.sh may have left)
# Only the pid in DIR/run/master.pid is signalled, and only if its command line names
# DIR/imapd.conf.
set -uo pipefail
D=${1:?usage: stop.sh DIR [--kill] [--rm]}; shift
KILL=0; RM=0; FROM_WATCHDOG=0
for a in "$@"; do
  case "$a" in
    --kill) KILL=1;;
    --rm) RM=1;;
    --from-watchdog) FROM_WATCHDOG=1;;
    *) echo "stop.sh: unknown option $a" >&2; exit 2;;
  esac
done
[ -d "$D" ] || exit 0
D=$(cd "$D" && pwd -P)

pstat() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null; }
alive() { local f; f=($(pstat "$1")); [ -n "${f[0]:-}" ] && [ "${f[0]}" != Z ]; }
names() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }

WPF="$D/watchdog.pid"
if [ "$RM" = 1 ] && [ "$FROM_WATCHDOG" = 0 ] && [ -s "$WPF" ]; then
  W=$(cat "$WPF")
  if alive "$W" && names "$W" bs-cyrus-watchdog && names "$W" "$D"; then
    kill -TERM -- "-$W" 2>/dev/null || kill -TERM "$W" 2>/dev/null
  fi
  rm -f "$WPF"
fi

PF="$D/run/master.pid"
if [ -s "$PF" ]; then
  PID=$(cat "$PF")
  if alive "$PID" && names "$PID" "$D/imapd.conf"; then
    if [ "$KILL" = 1 ] && [ "$(ps -o pgid= -p "$PID" | tr -d ' ')" = "$PID" ]; then
      kill -KILL -- "-$PID"
    else
      kill -TERM "$PID"
    fi
    for _ in $(seq 1 250); do alive "$PID" || break; sleep 0.02; done
    if alive "$PID"; then
      echo "stop.sh: cyrus $PID still running after 5 s; killing its process group" >&2
      kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null
    fi
  fi
  rm -f "$PF"
fi
[ "$RM" = 1 ] && rm -rf -- "$D"
exit 0
