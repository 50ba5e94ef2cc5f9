#!/usr/bin/env bash
# Prints the path of the server binary that SERVER names: vault (the
# default; see vault.sh) or openbao (see bao.sh). make dev and make cluster
# pass the Makefile's SERVER.
set -euo pipefail
case ${SERVER:-vault} in
  vault) exec "$(dirname "$0")/vault.sh" ;;
  openbao) exec "$(dirname "$0")/bao.sh" ;;
  *) echo "SERVER=$SERVER: want vault or openbao" >&2; exit 1 ;;
esac
