#!/bin/sh
# Runs the IMAP source tests against a real Dovecot (Debian's dovecot-imapd).
# Not part of the main CI path: it installs a package. The test starts its
# own Dovecot instance with a configuration it writes (own ports and
# directories), so a system instance started by the package does not
# matter.
set -eu

cd "$(dirname "$0")/.."

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		SUDO="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends dovecot-imapd
fi

# Fail (instead of skipping) when Dovecot cannot be found.
EMAILCRM_REQUIRE_DOVECOT=1 go test -count=1 -run 'TestDovecot' -v ./adapters/imapsource/
