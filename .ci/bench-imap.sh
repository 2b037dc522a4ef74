#!/usr/bin/env bash
# .ci/bench-imap.sh [N]: the by-hand IMAP ingestion benchmark (not run by
# CI). Starts a private Dovecot 2.3 (Debian's dovecot-imapd; run
# .ci/dovecot-test.sh once to install it) on loopback with implicit TLS,
# fills its INBOX with N realistic mails (default 5000, the corpus of
# .ci/bench-import.sh), and times, as whole processes in one run, a raw
# go-imap UID FETCH 1:* BODY.PEEK[] of the mailbox beside `mailcase run
# --once` draining it in one run (max_per_run: N; filed mail deleted after
# its commit) into mem:// and
# into the default durable SQLite store. Before every run the mailbox is put
# back from a pristine copy and the database removed (untimed). Quote the
# medians and the ratios. Last, `mailcase import` of the same files into
# mem:// and SQLite (A) vs the raw fetch (B): what the pipeline and the
# store cost without IMAP, the bound of run --once.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
runs=${RUNS:-5}
bin=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$bin" ] || { echo "dovecot is not installed: run .ci/dovecot-test.sh once" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
conf="$work/dovecot.conf"
cleanup() { "$bin" -c "$conf" stop 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/mailcase" ./examples/mailcase
go build -o "$work/benchimport" ./.ci/benchimport

if [ "$(id -u)" -eq 0 ]; then muser=dovecot login=dovenull; else muser=$(id -un) login=$(id -un); fi
mgroup=$(id -gn "$muser")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work"/{run,state,mail,home}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
cat > "$conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
ssl = required
ssl_cert = <$work/cert.pem
ssl_key = <$work/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:$work/mail/%u
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = $muser
default_internal_group = $mgroup
default_login_user = $login
mail_uid = $muser
mail_gid = $mgroup
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid=$muser gid=$mgroup home=$work/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $port
    ssl = yes
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Quarantine {
    auto = create
  }
}
CONF
"$bin" -c "$conf"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# The pristine mailbox: a Maildir whose new/ holds the corpus.
"$work/benchimport" gen "$work/corpus" "$n"
mkdir -p "$work/pristine"/{cur,new,tmp}
i=0
for f in "$work"/corpus/*.eml; do
	i=$((i + 1))
	cp "$f" "$work/pristine/new/$(printf '1700000000.M%dP1.bench' "$i")"
done
echo "corpus: $n mails, $(du -sb "$work/corpus" | cut -f1) bytes"
restore="rm -rf $work/mail/support $work/b.db $work/b.db-wal $work/b.db-shm && cp -a $work/pristine $work/mail/support && chown -R $muser:$mgroup $work/mail"

for store in mem:// "sqlite://$work/b.db"; do
	name=${store%%:*}
	cat > "$work/$name.yaml" <<YAML
store: $store
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    source:
      type: imap
      addr: 127.0.0.1:$port
      username: support
      password_env: BENCH_IMAP_PASSWORD
      ca_file: $work/cert.pem
      after: {kind: delete}
      quarantine_folder: Quarantine
      max_per_run: $n
YAML
done
export BENCH_IMAP_PASSWORD=secret MAILCASE_LOG_LEVEL=error
eval "$restore"
"$work/benchimport" fetch "127.0.0.1:$port" "$work/cert.pem" support
# A check before timing: one run drains the whole INBOX.
"$work/mailcase" run --once --config "$work/mem.yaml" >/dev/null
left=$(find "$work/mail/support/cur" "$work/mail/support/new" -type f | wc -l)
[ "$left" -eq 0 ] || { echo "error: run --once left $left mails in INBOX" >&2; exit 1; }
echo "== mailcase run --once, mem:// (A) vs raw UID FETCH (B)"
"$work/benchimport" compare -n "$runs" -before "$restore" \
	-a "$work/mailcase run --once --config $work/mem.yaml >/dev/null" \
	-b "$work/benchimport fetch 127.0.0.1:$port $work/cert.pem support >/dev/null"
echo "== mailcase run --once, SQLite (A) vs raw UID FETCH (B)"
"$work/benchimport" compare -n "$runs" -before "$restore" \
	-a "$work/mailcase run --once --config $work/sqlite.yaml >/dev/null" \
	-b "$work/benchimport fetch 127.0.0.1:$port $work/cert.pem support >/dev/null"
echo "== mailcase import of the same files, mem:// (A) vs raw UID FETCH (B)"
"$work/benchimport" compare -n "$runs" -before "$restore" \
	-a "$work/mailcase import --quiet --store mem:// $work/corpus >/dev/null 2>&1" \
	-b "$work/benchimport fetch 127.0.0.1:$port $work/cert.pem support >/dev/null"
echo "== mailcase import of the same files, SQLite (A) vs raw UID FETCH (B)"
"$work/benchimport" compare -n "$runs" -before "$restore" \
	-a "$work/mailcase import --quiet --store sqlite://$work/b.db $work/corpus >/dev/null 2>&1" \
	-b "$work/benchimport fetch 127.0.0.1:$port $work/cert.pem support >/dev/null"
