#!/usr/bin/env bash
# tests/cyrus/unpack.sh -- put Debian's Cyrus IMAP server (cyrus-common, cyrus-imapd) where
# tests/cyrus/start.sh finds it, without installing it: the packages conflict with
# dovecot-imapd (both provide imap-server), so they are fetched with `apt-get download` and
# unpacked with `dpkg -x` into BACKSCATTER_CYRUS_DIR (default: target/cyrus of this repository):
#   DIR/root/usr/lib/cyrus/bin/{master,imapd,lmtpd,timsieved,idled,...}
#   DIR/root/usr/lib/x86_64-linux-gnu/libcyrus*.so.0   (start.sh puts them on LD_LIBRARY_PATH)
#   DIR/VERSION                                        (the package version)
# Does nothing when DIR/root is already there. The shared libraries the binaries need from the
# system (libical3 libpcre3 libxapian30, and sasl2-bin for saslpasswd2) are ordinary packages
# that scripts/test installs; this script checks they resolve and names any that do not.
# No maintainer script runs, no service starts, nothing outside DIR is written.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DIR=${BACKSCATTER_CYRUS_DIR:-$(cd "$HERE/../.." && pwd -P)/target/cyrus}
PACKAGES=(cyrus-common cyrus-imapd)
die() { echo "unpack.sh: $*" >&2; exit 1; }
# unpack_debs (shared with the other harness)
. "$HERE/../lib/debunpack.sh"

check_libs() {
  local lib="$DIR/root/usr/lib/x86_64-linux-gnu" missing
  missing=$(for b in master imapd lmtpd timsieved idled ctl_cyrusdb; do
      LD_LIBRARY_PATH="$lib" ldd "$DIR/root/usr/lib/cyrus/bin/$b"; done 2>&1 \
    | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')
  [ -z "$missing" ] || die "Cyrus in $DIR needs libraries that are not installed: $missing(scripts/test installs them: apt-get install libical3 libpcre3 libxapian30)"
}

if [ -x "$DIR/root/usr/lib/cyrus/bin/master" ] && [ -s "$DIR/VERSION" ]; then
  check_libs
  echo "$DIR"
  exit 0
fi

unpack_debs "$DIR" cyrus-imapd "${PACKAGES[@]}"
check_libs
echo "unpack.sh: Cyrus $(cat "$DIR/VERSION") unpacked in $DIR/root" >&2
echo "$DIR"
