#!/bin/sh
# The status page in a real browser, end to end: real unbound, a private
# Dovecot and `calgate serve` polling alice's INBOX (tests/integration/
# e2efix.py), real DKIM-signed invitations delivered over IMAP, and Debian's
# headless chromium driven by playwright-core (tests/browser/): log in, read
# the account state and the skipped Google-style invitation with its hint,
# reload a relaxed configuration as the admin, click "Check again", see it
# accepted. Saves tests/artifacts/status.png (and status-admin.png).
#   CALGATE_BIN=build-san/calgate   run calgate under ASan+UBSan
#   RECHECK_EXPECT=accepted         what "Check again" must end in
set -u
cd "$(dirname "$0")/../.."

fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium (apt-get install chromium)"
command -v node >/dev/null || fail "no node"
command -v dovecot >/dev/null || fail "no dovecot"
[ -x /usr/sbin/unbound ] || fail "no /usr/sbin/unbound"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
	(cd tests/browser && timeout 120 npm ci --no-audit --no-fund \
	    --loglevel=error) || fail "npm ci for playwright-core failed"
fi
mkdir -p tests/artifacts
exec timeout 150 /usr/bin/python3 tests/integration/status_page.py
