# Sourced by scripts/test.sh and scripts/bench.sh: sets and exports GARAGE_BIN to a Garage 2.5.0
# binary ($GARAGE_BIN if set, else `garage` on PATH or in ~/.cargo/bin at that version), installing it
# with cargo when none is found (about 8 minutes once).
# shellcheck shell=bash
GARAGE_VERSION=2.5.0
if [ -z "${GARAGE_BIN:-}" ]; then
  for candidate in "$(command -v garage || true)" "$HOME/.cargo/bin/garage"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "v\?$GARAGE_VERSION"; then
      GARAGE_BIN=$candidate
      break
    fi
  done
fi
if [ -z "${GARAGE_BIN:-}" ]; then
  echo "==> Installing Garage $GARAGE_VERSION (cargo install, about 8 minutes once)" >&2
  cargo install garage --locked --version "$GARAGE_VERSION"
  GARAGE_BIN=$HOME/.cargo/bin/garage
fi
export GARAGE_BIN
