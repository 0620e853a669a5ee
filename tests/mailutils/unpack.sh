#!/usr/bin/env bash
# tests/mailutils/unpack.sh -- put Debian's GNU Mailutils IMAP server (mailutils-imap4d 3.15)
# where tests/suite/mailutils.rs finds it, without installing it: the packages and the shared
# libraries a Dovecot machine lacks are fetched with `apt-get download` and unpacked with
# `dpkg -x` into BACKSCATTER_MAILUTILS_DIR (default: target/mailutils of this repository):
#   DIR/root/usr/sbin/imap4d
#   DIR/root/usr/lib/x86_64-linux-gnu/*.so*   (the test puts them on LD_LIBRARY_PATH)
#   DIR/VERSION                               (the package version)
# Does nothing when DIR/root is already there. No maintainer script runs, no service starts,
# nothing outside DIR is written.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DIR=${BACKSCATTER_MAILUTILS_DIR:-$(cd "$HERE/../.." && pwd -P)/target/mailutils}
PACKAGES=(mailutils-imap4d libmailutils9 mailutils-common libgsasl18 libmariadb3 libidn12 libntlm0 libgssglue1)
die() { echo "unpack.sh: $*" >&2; exit 1; }
# unpack_debs (shared with the other harness)
. "$HERE/../lib/debunpack.sh"

check_libs() {
  local missing
  missing=$(LD_LIBRARY_PATH="$DIR/root/usr/lib/x86_64-linux-gnu" ldd "$DIR/root/usr/sbin/imap4d" 2>&1 \
    | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')
  [ -z "$missing" ] || die "imap4d in $DIR needs libraries that are not there: $missing"
}

if [ -x "$DIR/root/usr/sbin/imap4d" ] && [ -s "$DIR/VERSION" ]; then
  check_libs
  echo "$DIR"
  exit 0
fi

unpack_debs "$DIR" mailutils-imap4d "${PACKAGES[@]}"
check_libs
echo "unpack.sh: GNU Mailutils imap4d $(cat "$DIR/VERSION") unpacked in $DIR/root" >&2
echo "$DIR"
