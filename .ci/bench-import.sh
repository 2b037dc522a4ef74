#!/usr/bin/env bash
# .ci/bench-import.sh [N]: the by-hand import benchmark (not run by CI).
# Generates N realistic mails (default 2000, about 52 MB: plain and quoted
# replies, multipart/alternative, 150 KB PDF attachments, cp1252 and
# ISO-2022-JP) and times, as whole processes in one run, a raw go-message
# parse of the files, `mailcase import --store mem://` and `mailcase import`
# into the default durable SQLite store. Each pair of commands runs in turn
# (A B A B ...), so the ratios hold when the machine's speed drifts; quote
# the medians and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
runs=${RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailcase" ./examples/mailcase
go build -o "$work/benchimport" ./.ci/benchimport
"$work/benchimport" gen "$work/mail" "$n"
echo "corpus: $n mails, $(du -sb "$work/mail" | cut -f1) bytes"
# SQLite: a fresh database per run (removed, untimed, before each run).
fresh="rm -f $work/b.db $work/b.db-wal $work/b.db-shm"
echo "== import --store mem:// (A) vs raw parse (B)"
"$work/benchimport" compare -n "$runs" -before "$fresh" \
	-a "$work/mailcase import --quiet --store mem:// $work/mail" \
	-b "$work/benchimport parse $work/mail"
echo "== import into SQLite (A) vs import --store mem:// (B)"
"$work/benchimport" compare -n "$runs" -before "$fresh" \
	-a "$work/mailcase import --quiet --store sqlite://$work/b.db $work/mail" \
	-b "$work/mailcase import --quiet --store mem:// $work/mail"
