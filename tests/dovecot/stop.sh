#!/usr/bin/env bash
# tests/dovecot/stop.sh DIR [--kill] [--rm] -- stop the Dovecot that start.sh DIR started.
#   (default)  SIGTERM to the master and wait for it (~1.1 s: the master sleeps 1 s at shutdown)
#   --kill     SIGKILL the master's process group (master and all its children, ~20 ms)
#   --rm       delete DIR afterwards
# Only the pid in DIR/run/master.pid is signalled, and only if its command line names
# DIR/dovecot.conf. With --rm the watchdog start.sh may have left (DIR/run/watchdog.pid) goes too.
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
[ -d "$D" ] || { echo "stop.sh: no directory $D" >&2; exit 0; }
D=$(cd "$D" && pwd -P)

# gone or a zombie (re-parented to PID 1, which may reap late) both count as dead
# /proc/PID/stat fields from the state on (the command name before them may hold spaces)
pstat() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null; }
alive() { local f; f=($(pstat "$1")); [ -n "${f[0]:-}" ] && [ "${f[0]}" != Z ]; }
names() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }

# The watchdog (its own process group: setsid) goes only with DIR: after a plain stop it keeps
# watching, so a restart by start.sh leaves no moment uncovered.
WPF="$D/run/watchdog.pid"
if [ "$RM" = 1 ] && [ "$FROM_WATCHDOG" = 0 ] && [ -s "$WPF" ]; then
  W=$(cat "$WPF")
  if alive "$W" && names "$W" bs-dovecot-watchdog && names "$W" "$D"; then
    kill -TERM -- "-$W" 2>/dev/null || kill -TERM "$W" 2>/dev/null
  fi
  rm -f "$WPF"
fi

PF="$D/run/master.pid"
if [ -s "$PF" ]; then
  PID=$(cat "$PF")
  if alive "$PID" && names "$PID" "$D/dovecot.conf"; then
    if [ "$KILL" = 1 ] && [ "$(ps -o pgid= -p "$PID" | tr -d ' ')" = "$PID" ]; then
      kill -KILL -- "-$PID"
    else
      kill -TERM "$PID"
    fi
    for _ in $(seq 1 250); do alive "$PID" || break; sleep 0.02; done
    if alive "$PID"; then
      echo "stop.sh: dovecot $PID still running after 5 s; killing its process group" >&2
      kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null
    fi
  fi
  rm -f "$PF"
fi
[ "$RM" = 1 ] && rm -rf -- "$D"
exit 0
