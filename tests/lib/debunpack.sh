# tests/lib/debunpack.sh -- fetching Debian packages without installing them, shared by
# tests/cyrus/unpack.sh and tests/mailutils/unpack.sh (sourced, not run; the caller defines
# die MESSAGE).

# unpack_debs DIR MAIN_PACKAGE PACKAGE...
# Fetch the packages with `apt-get download` (after one `apt-get update` if that fails: a fresh
# container has no package lists, an old one stale ones) and unpack them with `dpkg-deb -x`
# into DIR/root, readable and runnable by every user (the servers run unprivileged); write
# MAIN_PACKAGE's version to DIR/VERSION. The tree is built in a temporary directory inside DIR
# and moved into place at the end, so an interrupted run leaves no half-unpacked DIR/root. No
# maintainer script runs, no service starts, nothing outside DIR is written.
unpack_debs() {
  local dir=$1 main=$2
  shift 2
  local packages=("$@") sudo=""
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "apt-get and dpkg are needed to fetch Debian's $main"
  mkdir -p "$dir"
  UNPACK_WORK=$(mktemp -d "$dir/.unpack.XXXXXX")
  trap 'rm -rf "$UNPACK_WORK"' EXIT
  # apt's download sandbox user (_apt) must be able to write here
  chmod 755 "$UNPACK_WORK"
  if ! _download "${packages[@]}"; then
    # the package lists may be missing (a fresh container) or stale
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    _download "${packages[@]}" \
      || { cat "$UNPACK_WORK/apt.log" >&2; die "apt-get download ${packages[*]} failed"; }
  fi
  mkdir "$UNPACK_WORK/root"
  local deb
  for deb in "$UNPACK_WORK"/*.deb; do dpkg-deb -x "$deb" "$UNPACK_WORK/root"; done
  dpkg-deb -f "$UNPACK_WORK/${main}"_*.deb Version > "$UNPACK_WORK/VERSION"
  chmod -R a+rX "$UNPACK_WORK/root"
  rm -rf "$dir/root" "$dir/VERSION"
  mv "$UNPACK_WORK/root" "$dir/root"
  mv "$UNPACK_WORK/VERSION" "$dir/VERSION"
}

_download() {
  (cd "$UNPACK_WORK" && apt-get download -q "$@") >"$UNPACK_WORK/apt.log" 2>&1
}
