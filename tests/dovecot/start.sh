#!/usr/bin/env bash
# tests/dovecot/start.sh DIR -- start a throw-away Dovecot 2.3 (+Pigeonhole, ManageSieve, LMTP)
# on loopback, for backscatter's integration tests.
#
# Everything (config, sockets, state, logs, TLS cert, users, mail) lives in DIR; /etc/dovecot is
# never read (dovecot -c DIR/dovecot.conf). Running it again on the same DIR after stop.sh (with
# the same *_PORT variables) brings the same server back: same mail, same cert.
#
# Works as root (master as root, logins as dovenull, mail owned by DOVECOT_MAIL_USER, default
# nobody: Dovecot refuses UID 0 for mail) and as any other user (every process runs as the caller).
#
# Optional environment:
#   IMAP_PORT IMAPS_PORT SIEVE_PORT LMTP_PORT SIEVES_PORT  fixed ports (default: free ports
#                        picked by the kernel; SIEVES_PORT is ManageSieve over implicit TLS)
#   DOVECOT_EXTRA_CONF   text appended to dovecot.conf (e.g. "plugin { sieve_extensions = -include }")
#   DOVECOT_MAIL_FORMAT  maildir (default) | mdbox
#   DOVECOT_NS_PREFIX    the personal namespace's prefix (default empty; "INBOX." gives the layout of
#                        Cyrus and Courier, every folder under INBOX)
#   DOVECOT_NS_SEPARATOR its hierarchy separator (default /)
#   DOVECOT_MAIL_USER    mail owner when run as root (default nobody)
#   DOVECOT_DEBUG=1      mail/auth debug logging into DIR/log/dovecot.log
#   DOVECOT_WAIT_S       seconds to wait for the greetings (default 60: a loaded machine is slow)
#   DOVECOT_OWNER_PID    a watchdog stops the server and deletes DIR once this process is gone
#                        (a test binary killed by ^C never runs its destructors)
#
# Prints KEY=VALUE lines on stdout, also written to DIR/env:
#   DOVECOT_DIR DOVECOT_CONF DOVECOT_PID DOVECOT_LOG IMAP_HOST IMAP_PORT IMAPS_PORT SIEVE_PORT SIEVES_PORT
#   LMTP_PORT LMTP_SOCKET TLS_CA MAIL_UID MAIL_GID MAIL_FORMAT START_MS
# Users: alice/alicepw bob/bobpw carol/carolpw (alice@example.test etc. work too).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

die() { echo "start.sh: $*" >&2; exit "${EXIT:-1}"; }
# alive, start_watchdog, greets (shared with tests/cyrus/start.sh)
. "$HERE/../lib/lifetime.sh"

D=${1:?usage: start.sh DIR}
mkdir -p "$D"
D=$(cd "$D" && pwd -P)
# unix sockets live in $D/run and sun_path holds 108 bytes: keep DIR short
[ ${#D} -le 60 ] || EXIT=2 die "$D is too long for unix socket paths (keep it under 60 characters, e.g. mktemp -d /tmp/dc.XXXXXX)"
if [ -s "$D/run/master.pid" ] && alive "$(cat "$D/run/master.pid")"; then
  die "dovecot is already running in $D (pid $(cat "$D/run/master.pid"))"
fi

t0=${EPOCHREALTIME/./}
VERSION=$(dovecot --version 2>/dev/null || true)
case "$VERSION" in
  2.3.*) ;;
  "") EXIT=2 die "dovecot is not installed (apt-get install dovecot-imapd dovecot-managesieved dovecot-sieve dovecot-lmtpd)";;
  *) EXIT=2 die "dovecot $VERSION found, but this configuration is Dovecot 2.3 syntax";;
esac
command -v openssl >/dev/null || EXIT=2 die "openssl is not installed"

FORMAT=${DOVECOT_MAIL_FORMAT:-maildir}
case "$FORMAT" in
  maildir) MAIL_LOCATION='maildir:~/Maildir';;
  mdbox) MAIL_LOCATION='mdbox:~/mdbox';;
  *) EXIT=2 die "DOVECOT_MAIL_FORMAT must be maildir or mdbox, not $FORMAT";;
esac

# ---- ports: the caller's, or free ones chosen by the kernel (bind to port 0, read it back)
if [ -z "${IMAP_PORT:-}" ] || [ -z "${IMAPS_PORT:-}" ] || [ -z "${SIEVE_PORT:-}" ] || [ -z "${LMTP_PORT:-}" ] || [ -z "${SIEVES_PORT:-}" ]; then
  PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3   # a pyenv shim costs ~250 ms a call
  read -r P1 P2 P3 P4 P5 < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(5)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))') || die "cannot pick free ports (python3 missing? set IMAP_PORT IMAPS_PORT SIEVE_PORT LMTP_PORT SIEVES_PORT)"
  IMAP_PORT=${IMAP_PORT:-$P1}; IMAPS_PORT=${IMAPS_PORT:-$P2}
  SIEVE_PORT=${SIEVE_PORT:-$P3}; LMTP_PORT=${LMTP_PORT:-$P4}; SIEVES_PORT=${SIEVES_PORT:-$P5}
fi

mkdir -p "$D/run" "$D/state" "$D/log" "$D/ssl" "$D/mail"
rm -f "$D/run/master.pid"

# ---- watchdog: once the owner process is gone (same pid and start time), stop the server and
# delete DIR (see start_watchdog in tests/lib/lifetime.sh).
if [ -n "${DOVECOT_OWNER_PID:-}" ]; then
  start_watchdog bs-dovecot-watchdog "$DOVECOT_OWNER_PID" "$D" "$D/run/watchdog.pid" "$HERE/stop.sh"
fi

# ---- who runs what
if [ "$(id -u)" = 0 ]; then
  MAIL_USER=${DOVECOT_MAIL_USER:-nobody}
  getent passwd dovecot >/dev/null || EXIT=2 die "system user 'dovecot' is missing (install dovecot-core)"
  getent passwd dovenull >/dev/null || EXIT=2 die "system user 'dovenull' is missing (install dovecot-core)"
  INTERNAL_USER=dovecot; INTERNAL_GROUP=dovecot; LOGIN_USER=dovenull; ROOTLESS=0
else
  MAIL_USER=$(id -un)
  INTERNAL_USER=$MAIL_USER; INTERNAL_GROUP=$(id -gn); LOGIN_USER=$MAIL_USER; ROOTLESS=1
fi
MAIL_UID=$(id -u "$MAIL_USER"); MAIL_GID=$(id -g "$MAIL_USER")
[ "$MAIL_UID" != 0 ] || EXIT=2 die "dovecot refuses UID 0 for mail: set DOVECOT_MAIL_USER to another user"

# ---- self-signed certificate, kept across restarts (EC P-256: a few ms; RSA takes 100 ms+)
if [ ! -s "$D/ssl/cert.pem" ] || [ ! -s "$D/ssl/key.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$D/ssl/key.pem" -out "$D/ssl/cert.pem" -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:FALSE" </dev/null >/dev/null 2>"$D/log/openssl.log" \
    || { cat "$D/log/openssl.log" >&2; die "openssl could not make the test certificate"; }
  chmod 600 "$D/ssl/key.pem"
fi

# ---- users (passwd-file: user:{PLAIN}password:uid:gid::home::)
: > "$D/users"
for u in alice bob carol; do
  echo "$u:{PLAIN}${u}pw:$MAIL_UID:$MAIL_GID::$D/mail/$u::" >> "$D/users"
  if [ "$FORMAT" = maildir ]; then mkdir -p "$D/mail/$u/Maildir/cur" "$D/mail/$u/Maildir/new" "$D/mail/$u/Maildir/tmp"
  else mkdir -p "$D/mail/$u"; fi
done
chmod 644 "$D/users"

DEBUG=no; [ "${DOVECOT_DEBUG:-0}" = 1 ] && DEBUG=yes

# ---- configuration (Dovecot 2.3 syntax)
cat > "$D/dovecot.conf" <<EOF
# generated by backscatter tests/dovecot/start.sh -- Dovecot 2.3 syntax
instance_name = bs-test-$IMAP_PORT
base_dir = $D/run
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
debug_log_path = $D/log/dovecot.log
mail_debug = $DEBUG
auth_debug = $DEBUG
auth_verbose = $DEBUG

protocols = imap lmtp sieve
listen = 127.0.0.1
default_internal_user = $INTERNAL_USER
default_internal_group = $INTERNAL_GROUP
default_login_user = $LOGIN_USER
first_valid_uid = 1
first_valid_gid = 1
# no stats connections: a login process spawned during shutdown can block 5 s on stats-writer
stats_writer_socket_path =

# auth: plaintext passwords, allowed without TLS (loopback only)
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8 ::1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $D/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $D/users
}

ssl = yes
ssl_cert = <$D/ssl/cert.pem
ssl_key = <$D/ssl/key.pem
ssl_min_protocol = TLSv1.2

mail_location = $MAIL_LOCATION
mail_fsync = never
maildir_very_dirty_syncs = yes
namespace inbox {
  inbox = yes
  prefix = ${DOVECOT_NS_PREFIX:-}
  separator = ${DOVECOT_NS_SEPARATOR:-/}
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}

# no auth penalty: anvil would add seconds of delay after each failed login
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = $IMAPS_PORT
    ssl = yes
  }
}
service managesieve-login {
  inet_listener sieve {
    port = $SIEVE_PORT
  }
  inet_listener sieves {
    port = $SIEVES_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    port = $LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0666
  }
}

# IDLE, MOVE, UIDPLUS, CONDSTORE, QRESYNC, SPECIAL-USE, MULTIAPPEND, LITERAL+ are on by default;
# imap_zlib adds COMPRESS=DEFLATE (RFC 4978), as most hosted Dovecots offer
protocol imap {
  mail_max_userip_connections = 1000
  mail_plugins = \$mail_plugins imap_zlib
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
  postmaster_address = postmaster@example.test
}
protocol lda {
  mail_plugins = \$mail_plugins sieve
  postmaster_address = postmaster@example.test
}
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +

plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_max_script_size = 1M
  sieve_quota_max_scripts = 0
  sieve_quota_max_storage = 0
  sieve_max_redirects = 4
  sieve_extensions = +vnd.dovecot.debug +editheader
}
EOF

if [ "$ROOTLESS" = 1 ]; then
  # chroot needs root; auth-worker must not try to switch to root
  cat >> "$D/dovecot.conf" <<'EOF'

# rootless: everything runs as the caller
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service managesieve-login {
  chroot =
}
service auth-worker {
  user = $default_internal_user
}
EOF
else
  # dovenull and dovecot must be able to enter DIR (mktemp -d makes it 0700)
  chmod 755 "$D"
  chown -R "$MAIL_UID:$MAIL_GID" "$D/mail"
fi

if [ -n "${DOVECOT_EXTRA_CONF:-}" ]; then
  printf '\n# DOVECOT_EXTRA_CONF\n%s\n' "$DOVECOT_EXTRA_CONF" >> "$D/dovecot.conf"
fi

# doveconf names the bad line precisely, dovecot itself less so
doveconf -c "$D/dovecot.conf" -n </dev/null >"$D/doveconf-n.txt" 2>"$D/log/doveconf.log" \
  || { cat "$D/log/doveconf.log" >&2; die "invalid configuration $D/dovecot.conf"; }

# The daemon keeps inherited stdio open: without these redirections a caller reading our output
# through a pipe ($(...), | tee, Rust Command::output()) would wait until dovecot exits.
if ! dovecot -c "$D/dovecot.conf" </dev/null >/dev/null 2>"$D/log/master.log"; then
  cat "$D/log/master.log" >&2; tail -n 20 "$D/log/dovecot.log" >&2 2>/dev/null || true
  die "dovecot failed to start"
fi

# ---- readiness: the master owns the listening sockets, so a TCP connect succeeds before any
# login or auth process exists. Wait for the real greetings instead.
deadline=$(( ${EPOCHREALTIME/./} + ${DOVECOT_WAIT_S:-60} * 1000000 ))
until [ -s "$D/run/master.pid" ] && greets "$IMAP_PORT" "* OK" 2>/dev/null \
      && greets "$SIEVE_PORT" "OK" 2>/dev/null && greets "$LMTP_PORT" "220" 2>/dev/null \
      && (exec 3<>"/dev/tcp/127.0.0.1/$IMAPS_PORT") 2>/dev/null; do
  if [ -s "$D/run/master.pid" ] && ! alive "$(cat "$D/run/master.pid")"; then
    tail -n 30 "$D/log/dovecot.log" "$D/log/master.log" >&2 2>/dev/null || true
    die "dovecot exited during startup; see $D/log/dovecot.log"
  fi
  if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
    tail -n 30 "$D/log/dovecot.log" "$D/log/master.log" >&2 2>/dev/null || true
    die "dovecot not ready after ${DOVECOT_WAIT_S:-60} s; see $D/log/dovecot.log"
  fi
  sleep 0.01
done
PID=$(cat "$D/run/master.pid")

t1=${EPOCHREALTIME/./}
cat > "$D/env" <<EOF
DOVECOT_DIR=$D
DOVECOT_CONF=$D/dovecot.conf
DOVECOT_PID=$PID
DOVECOT_LOG=$D/log/dovecot.log
IMAP_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$IMAPS_PORT
SIEVE_PORT=$SIEVE_PORT
SIEVES_PORT=$SIEVES_PORT
LMTP_PORT=$LMTP_PORT
LMTP_SOCKET=$D/run/lmtp
TLS_CA=$D/ssl/cert.pem
MAIL_UID=$MAIL_UID
MAIL_GID=$MAIL_GID
MAIL_FORMAT=$FORMAT
START_MS=$(( (t1 - t0) / 1000 ))
EOF
cat "$D/env"
