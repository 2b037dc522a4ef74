#!/usr/bin/env bash
# .ci/bench-import.sh [N]: the by-hand import benchmark (not run by CI).
# Generates N realistic mails (default 2000) and times, as whole
# processes in one run with farm-bench, a raw go-message parse of the
# files, `mailcase import --store mem://` and `mailcase import` into the
# default durable SQLite store. Quote the medians and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailcase" ./examples/mailcase
go build -o "$work/benchimport" ./.ci/benchimport
"$work/benchimport" gen "$work/mail" "$n"
echo "corpus: $n mails, $(du -sm "$work/mail" | cut -f1) MB"
# sqlite: a fresh database per run (the file is removed before each run).
cat > "$work/sqlite.sh" <<SH
#!/bin/sh
rm -f "$work/b.db" "$work/b.db-wal" "$work/b.db-shm"
exec "$work/mailcase" import --quiet --store "sqlite://$work/b.db" "$work/mail"
SH
chmod +x "$work/sqlite.sh"
echo "== import --store mem:// vs raw parse"
farm-bench -n 5 --timeout 600 --vs "$work/benchimport parse $work/mail" -- "$work/mailcase" import --quiet --store mem:// "$work/mail"
echo "== import (SQLite) vs import --store mem://"
farm-bench -n 5 --timeout 900 --vs "$work/mailcase import --quiet --store mem:// $work/mail" -- "$work/sqlite.sh"
