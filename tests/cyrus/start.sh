#!/usr/bin/env bash
# tests/cyrus/start.sh DIR -- start a throw-away Cyrus IMAP 3.6 (imapd, timsieved, lmtpd, idled)
# on loopback, for backscatter's integration tests, with Debian's namespace: every folder under
# "INBOX." (altnamespace: no, unixhierarchysep: no).
#
# The server is Debian's cyrus-imapd/cyrus-common as tests/cyrus/unpack.sh unpacked them (they
# conflict with dovecot-imapd, so they are not installed) into BACKSCATTER_CYRUS_DIR (default
# target/cyrus of this repository). Everything else (imapd.conf, cyrus.conf, sasldb, spool, sieve
# scripts, sockets, log) lives in DIR; /etc and /var are never touched. Cyrus logs to syslog only:
# DIR/log/master.log holds what the master printed.
#
# Cyrus refuses to run as root: as root the master binds the ports and then becomes
# CYRUS_USER (default nobody:nogroup), which owns DIR. As any other user everything runs as the
# caller.
#
# Optional environment:
#   IMAP_PORT SIEVE_PORT LMTP_PORT   fixed ports (default: free ports picked by the kernel)
#   BACKSCATTER_CYRUS_DIR  where unpack.sh put the packages (default: target/cyrus)
#   CYRUS_USER CYRUS_GROUP  who runs the server when started as root (default nobody/nogroup)
#   CYRUS_EXTRA_CONF  lines appended to imapd.conf
#   CYRUS_WAIT_S      seconds to wait for the greetings (default 20)
#   CYRUS_OWNER_PID   a watchdog stops the server and deletes DIR once this process is gone
#
# Prints KEY=VALUE lines on stdout, also written to DIR/env:
#   CYRUS_DIR CYRUS_PID CYRUS_LOG IMAP_PORT SIEVE_PORT LMTP_PORT LMTP_SOCKET CYRUS_VERSION START_MS
# Users (sasldb): alice/alicepw, bob/bobpw, and the administrator cyrus/cyruspw. A user's INBOX
# (user.NAME) is created at their first login (Debian's autocreate_quota: 0); tests/suite/cyrus.rs
# creates them and their Sent, Drafts and Trash folders up front, as the administrator.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

die() { echo "start.sh: $*" >&2; exit "${EXIT:-1}"; }
pstat() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null; }
alive() { local f; f=($(pstat "$1")); [ -n "${f[0]:-}" ] && [ "${f[0]}" != Z ]; }

D=${1:?usage: start.sh DIR}
mkdir -p "$D"
D=$(cd "$D" && pwd -P)
[ ${#D} -le 60 ] || EXIT=2 die "$D is too long for unix socket paths (keep it under 60 characters)"
if [ -s "$D/run/master.pid" ] && alive "$(cat "$D/run/master.pid")"; then
  die "cyrus is already running in $D (pid $(cat "$D/run/master.pid"))"
fi

t0=${EPOCHREALTIME/./}
CACHE=${BACKSCATTER_CYRUS_DIR:-$(cd "$HERE/../.." && pwd -P)/target/cyrus}
R=$CACHE/root
BIN=$R/usr/lib/cyrus/bin
[ -x "$BIN/master" ] || EXIT=2 die "no Cyrus in $R (run tests/cyrus/unpack.sh, or scripts/test)"
command -v saslpasswd2 >/dev/null || EXIT=2 die "saslpasswd2 is not installed (apt-get install sasl2-bin)"
export LD_LIBRARY_PATH="$R/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
VERSION=$(cat "$CACHE/VERSION" 2>/dev/null || echo unknown)

if [ -z "${IMAP_PORT:-}" ] || [ -z "${SIEVE_PORT:-}" ] || [ -z "${LMTP_PORT:-}" ]; then
  PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
  read -r P1 P2 P3 < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))') || die "cannot pick free ports (python3 missing? set IMAP_PORT SIEVE_PORT LMTP_PORT)"
  IMAP_PORT=${IMAP_PORT:-$P1}; SIEVE_PORT=${SIEVE_PORT:-$P2}; LMTP_PORT=${LMTP_PORT:-$P3}
fi

mkdir -p "$D/run/proc" "$D/run/lock" "$D/run/socket" "$D/log" "$D/spool" "$D/sieve" \
  "$D/lib/db" "$D/lib/log" "$D/lib/msg" "$D/lib/proc" "$D/lib/ptclient" "$D/lib/quota" \
  "$D/lib/sieve" "$D/lib/socket" "$D/lib/sync" "$D/lib/user"
rm -f "$D/run/master.pid"

# ---- watchdog (as in tests/dovecot/start.sh): once the owner process is gone, stop and delete
if [ -n "${CYRUS_OWNER_PID:-}" ]; then
  OWNER_START=$(f=($(pstat "$CYRUS_OWNER_PID")); echo "${f[19]:-}")
  [ -n "$OWNER_START" ] || die "CYRUS_OWNER_PID=$CYRUS_OWNER_PID is not a running process"
  WD_TAG="bs-cyrus-watchdog $CYRUS_OWNER_PID $OWNER_START $D "
  W=$(cat "$D/watchdog.pid" 2>/dev/null || true)
  if [ -n "$W" ] && alive "$W" && tr '\0' ' ' < "/proc/$W/cmdline" 2>/dev/null | grep -qF -- "$WD_TAG"; then
    :
  else
    setsid bash -c '
      owner() { local f; f=($(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null))
                [ "${f[0]:-Z}" != Z ] && [ "${f[19]:-}" = "$2" ]; }
      while owner "$1" "$2" && [ -d "$3" ]; do sleep 1; done
      [ -d "$3" ] && exec bash "$4" "$3" --kill --rm --from-watchdog' \
      bs-cyrus-watchdog "$CYRUS_OWNER_PID" "$OWNER_START" "$D" "$HERE/stop.sh" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$D/watchdog.pid"
  fi
fi

# ---- who runs the server
if [ "$(id -u)" = 0 ]; then
  RUN_USER=${CYRUS_USER:-nobody}; RUN_GROUP=${CYRUS_GROUP:-$(id -gn "$RUN_USER")}
  [ "$(id -u "$RUN_USER")" != 0 ] || EXIT=2 die "Cyrus refuses to run as root: set CYRUS_USER to another user"
  # the server (as RUN_USER) must be able to read the unpacked binaries
  setpriv --reuid="$RUN_USER" --regid="$RUN_GROUP" --clear-groups test -x "$BIN/imapd" \
    || EXIT=2 die "$RUN_USER cannot run $BIN/imapd: unpack Cyrus where every user can read it (BACKSCATTER_CYRUS_DIR)"
else
  RUN_USER=$(id -un); RUN_GROUP=$(id -gn)
fi
export CYRUS_USER=$RUN_USER CYRUS_GROUP=$RUN_GROUP

# ---- imapd.conf: Debian's /etc/imapd.conf settings, with every path in DIR
cat > "$D/imapd.conf" <<EOF
# generated by backscatter tests/cyrus/start.sh; Debian 12 defaults where they matter
configdirectory: $D/lib
proc_path: $D/run/proc
mboxname_lockpath: $D/run/lock
defaultpartition: default
partition-default: $D/spool
altnamespace: no
unixhierarchysep: no
lmtp_downcase_rcpt: yes
allowanonymouslogin: no
autocreate_quota: 0
umask: 077
sieveusehomedir: false
sievedir: $D/sieve
hashimapspool: true
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $D/sasldb2
sasl_mech_list: PLAIN LOGIN
sasl_auto_transition: no
lmtpsocket: $D/run/socket/lmtp
idlesocket: $D/run/socket/idle
notifysocket: $D/run/socket/notify
syslog_prefix: bs-cyrus-$IMAP_PORT
servername: localhost
admins: cyrus
cyrus_user: $RUN_USER
cyrus_group: $RUN_GROUP
EOF
if [ -n "${CYRUS_EXTRA_CONF:-}" ]; then
  printf '\n# CYRUS_EXTRA_CONF\n%s\n' "$CYRUS_EXTRA_CONF" >> "$D/imapd.conf"
fi

# Debian's stock /etc/cyrus.conf leaves idled commented out; it runs here so that IDLE pushes
# new mail at once (imapd otherwise falls back to polling every imapidlepoll seconds).
cat > "$D/cyrus.conf" <<EOF
# generated by backscatter tests/cyrus/start.sh
START {
  recover cmd="$BIN/ctl_cyrusdb -C $D/imapd.conf -r"
  idled   cmd="$BIN/idled -C $D/imapd.conf"
}
SERVICES {
  imap     cmd="$BIN/imapd -C $D/imapd.conf -U 30" listen="127.0.0.1:$IMAP_PORT" prefork=0 maxchild=100
  sieve    cmd="$BIN/timsieved -C $D/imapd.conf" listen="127.0.0.1:$SIEVE_PORT" prefork=0 maxchild=100
  lmtp     cmd="$BIN/lmtpd -C $D/imapd.conf -a" listen="127.0.0.1:$LMTP_PORT" prefork=0 maxchild=20
  lmtpunix cmd="$BIN/lmtpd -C $D/imapd.conf" listen="$D/run/socket/lmtp" prefork=0 maxchild=20
}
EVENTS {
  checkpoint cmd="$BIN/ctl_cyrusdb -C $D/imapd.conf -c" period=30
}
EOF

# ---- users: sasldb in DIR
rm -f "$D/sasldb2"
for u in alice bob cyrus; do
  printf '%s' "${u}pw" | saslpasswd2 -p -c -f "$D/sasldb2" -u localhost "$u" \
    || die "saslpasswd2 could not add $u to $D/sasldb2"
done
chmod 600 "$D/sasldb2"

if [ "$(id -u)" = 0 ]; then
  chmod 755 "$D"
  chown -R "$RUN_USER:$RUN_GROUP" "$D"
fi

# the master daemonizes (-d); its stdio must not hold the caller's pipe open
if ! "$BIN/master" -C "$D/imapd.conf" -M "$D/cyrus.conf" -p "$D/run/master.pid" -d \
     </dev/null >"$D/log/master.log" 2>&1; then
  cat "$D/log/master.log" >&2
  die "cyrus master failed to start"
fi

greets() {  # PORT PREFIX
  local line ok=1
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  while IFS= read -r -t 2 line <&3; do
    case "$line" in "$2"*) ok=0; break;; esac
  done
  exec 3<&- 3>&-
  return $ok
}
deadline=$(( ${EPOCHREALTIME/./} + ${CYRUS_WAIT_S:-20} * 1000000 ))
until [ -s "$D/run/master.pid" ] && greets "$IMAP_PORT" "* OK" 2>/dev/null \
      && greets "$SIEVE_PORT" "OK" 2>/dev/null && greets "$LMTP_PORT" "220" 2>/dev/null; do
  if [ -s "$D/run/master.pid" ] && ! alive "$(cat "$D/run/master.pid")"; then
    tail -n 30 "$D/log/master.log" >&2 2>/dev/null || true
    die "cyrus exited during startup; see $D/log/master.log"
  fi
  if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
    tail -n 30 "$D/log/master.log" >&2 2>/dev/null || true
    die "cyrus not ready after ${CYRUS_WAIT_S:-20} s; see $D/log/master.log"
  fi
  sleep 0.02
done
PID=$(cat "$D/run/master.pid")

t1=${EPOCHREALTIME/./}
cat > "$D/env" <<EOF
CYRUS_DIR=$D
CYRUS_PID=$PID
CYRUS_LOG=$D/log/master.log
CYRUS_VERSION=$VERSION
IMAP_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
SIEVE_PORT=$SIEVE_PORT
LMTP_PORT=$LMTP_PORT
LMTP_SOCKET=$D/run/socket/lmtp
START_MS=$(( (t1 - t0) / 1000 ))
EOF
cat "$D/env"
