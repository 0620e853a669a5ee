# tests/lib/lifetime.sh -- the process-lifetime logic tests/dovecot/*.sh and tests/cyrus/*.sh share
# (sourced, not run): is a pid alive, the owner watchdog, waiting for a greeting, stopping a master.

# a pid counts as alive unless gone or a zombie (a daemonized master is re-parented to PID 1,
# which may reap it late, so `kill -0` alone would still see it)
# /proc/PID/stat fields from the state on (the command name before them may hold spaces)
pstat() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null; }
alive() { local f; f=($(pstat "$1")); [ -n "${f[0]:-}" ] && [ "${f[0]}" != Z ]; }
# whether pid $1's command line contains $2
names() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }

# start_watchdog NAME OWNER_PID DIR PIDFILE STOP_SCRIPT
# Once the owner process is gone (same pid and start time), run `STOP_SCRIPT DIR --kill --rm
# --from-watchdog`. Started before the server so that no moment is left uncovered; it survives
# `stop.sh --kill` (a restart) and is reused by the next start.sh for the same DIR and owner; one
# left by another owner is stopped. Its command line starts with NAME (e.g. bs-dovecot-watchdog).
start_watchdog() {
  local name=$1 owner=$2 dir=$3 pidfile=$4 stop=$5 owner_start w
  owner_start=$(f=($(pstat "$owner")); echo "${f[19]:-}")
  [ -n "$owner_start" ] || die "owner pid $owner is not a running process"
  w=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$w" ] && alive "$w" && names "$w" "$name $owner $owner_start $dir "; then
    return 0  # already watching
  fi
  if [ -n "$w" ] && alive "$w" && names "$w" "$name"; then
    kill -TERM -- "-$w" 2>/dev/null || kill -TERM "$w" 2>/dev/null || true
  fi
  setsid bash -c '
    owner() { local f; f=($(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null))
              [ "${f[0]:-Z}" != Z ] && [ "${f[19]:-}" = "$2" ]; }
    while owner "$1" "$2" && [ -d "$3" ]; do sleep 1; done
    [ -d "$3" ] && exec bash "$4" "$3" --kill --rm --from-watchdog' \
    "$name" "$owner" "$owner_start" "$dir" "$stop" \
    </dev/null >/dev/null 2>&1 &
  echo $! > "$pidfile"
}

# greets PORT PREFIX: whether a server on 127.0.0.1:PORT sends a line starting with PREFIX within
# 2 s (a listening socket alone proves nothing: the master owns it before any service runs)
greets() {
  local line ok=1
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  while IFS= read -r -t 2 line <&3; do
    case "$line" in "$2"*) ok=0; break;; esac
  done
  exec 3<&- 3>&-
  return $ok
}

# stop_main LABEL DIR MARK WATCHDOG_NAME WATCHDOG_PIDFILE ARGS...
# What stop.sh does: ARGS are its options
#   (default)  SIGTERM to the master and wait for it
#   --kill     SIGKILL the master's process group (master and all its children)
#   --rm       delete DIR afterwards, and the watchdog start.sh may have left
# Only the pid in DIR/run/master.pid is signalled, and only if its command line names MARK (its
# config file). The watchdog (its own process group: setsid) goes only with DIR: after a plain
# stop it keeps watching, so a restart by start.sh leaves no moment uncovered.
stop_main() {
  local label=$1 dir=$2 mark=$3 wname=$4 wpf=$5 kill=0 rm=0 from_watchdog=0 a pid w
  shift 5
  for a in "$@"; do
    case "$a" in
      --kill) kill=1;;
      --rm) rm=1;;
      --from-watchdog) from_watchdog=1;;
      *) echo "stop.sh: unknown option $a" >&2; return 2;;
    esac
  done
  if [ "$rm" = 1 ] && [ "$from_watchdog" = 0 ] && [ -s "$wpf" ]; then
    w=$(cat "$wpf")
    if alive "$w" && names "$w" "$wname" && names "$w" "$dir"; then
      kill -TERM -- "-$w" 2>/dev/null || kill -TERM "$w" 2>/dev/null
    fi
    rm -f "$wpf"
  fi
  local pf="$dir/run/master.pid"
  if [ -s "$pf" ]; then
    pid=$(cat "$pf")
    if alive "$pid" && names "$pid" "$mark"; then
      if [ "$kill" = 1 ] && [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then
        kill -KILL -- "-$pid"
      else
        kill -TERM "$pid"
      fi
      for _ in $(seq 1 250); do alive "$pid" || break; sleep 0.02; done
      if alive "$pid"; then
        echo "stop.sh: $label $pid still running after 5 s; killing its process group" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      fi
    fi
    rm -f "$pf"
  fi
  [ "$rm" = 1 ] && rm -rf -- "$dir"
  return 0
}
