#!/usr/bin/env bash
# Builds the imdsguard Debian package: scripts/build-package.sh --packager deb
# (its --help says the rest), kept under this name for the tests, the docs
# and `make deb` that call it.
set -euo pipefail

exec "$(dirname "${BASH_SOURCE[0]}")/build-package.sh" --packager deb "$@"
