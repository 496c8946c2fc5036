# tests/integration/dovecot.sh: a private Dovecot on loopback, for tests.
# Source it (POSIX sh), then:
#
#   dovecot_start DIR     config, certificate, users file and maildirs in
#                         DIR (plus the lines in $DOVECOT_EXTRA, if set);
#                         sets DOVECOT_CONF, DOVECOT_PORT (plaintext, with
#                         STARTTLS), DOVECOT_TLS_PORT (imaps), DOVECOT_CA
#                         (the self-signed certificate, for imap_ca_file),
#                         DOVECOT_LOG, DOVECOT_RAWLOG (per-user rawlogs:
#                         DIR/rawlog/USER/*.in holds what clients sent,
#                         *.out what the server sent, so a test can see
#                         exactly which messages were fetched)
#                         The plaintext port also listens on 127.0.0.2,
#                         where logged-in clients see no IDLE capability
#                         (to test polling).
#   dovecot_user NAME PASSWORD          add a user (works while running)
#   dovecot_save USER FILE [MAILBOX]    deliver with doveadm save
#   dovecot_drop USER FILE              deliver straight into the maildir
#                                       (works while Dovecot is stopped)
#   dovecot_maildir USER                print the user's INBOX maildir
#   dovecot_logins_failed USER          logins refused so far for USER
#   dovecot_stop / dovecot_restart      stop (master and the processes it
#                                       started: clients are disconnected)
#                                       keeps DIR; restart reuses ports
#   dovecot_cleanup                     stop and remove DIR
#
# Runs as root (mail owned by nobody) or as an ordinary user (mail owned by
# that user). Every wait is bounded.

dovecot_free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dovecot_wait_port() {	# PORT: up to 10 s for a listener
	_i=0
	while [ $_i -lt 100 ]; do
		/usr/bin/python3 -c 'import socket, sys; \
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
		    "$1" 2>/dev/null && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "dovecot.sh: nothing listens on port $1" >&2
	return 1
}

dovecot_start() {
	DOVECOT_DIR=$1
	mkdir -p "$DOVECOT_DIR/run" "$DOVECOT_DIR/state" "$DOVECOT_DIR/home" \
	    "$DOVECOT_DIR/rawlog"
	chmod 755 "$DOVECOT_DIR" "$DOVECOT_DIR/home" "$DOVECOT_DIR/rawlog"
	# Parents must be traversable by the mail user.
	_d=$(dirname "$DOVECOT_DIR")
	[ "$(id -u)" = 0 ] && chmod o+x "$_d" 2>/dev/null
	: >"$DOVECOT_DIR/passwd"
	chmod 644 "$DOVECOT_DIR/passwd"
	DOVECOT_LOG=$DOVECOT_DIR/dovecot.log
	DOVECOT_RAWLOG=$DOVECOT_DIR/rawlog
	DOVECOT_CA=$DOVECOT_DIR/cert.pem
	DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -keyout "$DOVECOT_DIR/key.pem" -out "$DOVECOT_CA" \
	    -subj /CN=localhost \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    >/dev/null 2>&1 || { echo "dovecot.sh: openssl failed" >&2;
	    return 1; }
	if [ "$(id -u)" = 0 ]; then
		DOVECOT_UID=nobody DOVECOT_GID=nogroup
		_internal=dovecot _login=dovenull
	else
		DOVECOT_UID=$(id -un) DOVECOT_GID=$(id -gn)
		_internal=$DOVECOT_UID _login=$DOVECOT_UID
	fi
	chown "$DOVECOT_UID:$DOVECOT_GID" "$DOVECOT_DIR/home" \
	    "$DOVECOT_DIR/rawlog" 2>/dev/null
	DOVECOT_PORT=$(dovecot_free_port)
	DOVECOT_TLS_PORT=$(dovecot_free_port)
	cat >"$DOVECOT_CONF" <<EOF
instance_name = calgate-test-$$
base_dir = $DOVECOT_DIR/run
state_dir = $DOVECOT_DIR/state
log_path = $DOVECOT_LOG
protocols = imap
listen = 127.0.0.1
default_internal_user = $_internal
default_login_user = $_login
first_valid_uid = 1
ssl = yes
ssl_cert = <$DOVECOT_CA
ssl_key = <$DOVECOT_DIR/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DOVECOT_DIR/passwd
}
userdb {
  driver = static
  args = uid=$DOVECOT_UID gid=$DOVECOT_GID home=$DOVECOT_DIR/home/%u
}
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
protocol imap {
  rawlog_dir = $DOVECOT_DIR/rawlog/%u
}
local 127.0.0.2 {
  protocol imap {
    imap_capability = IMAP4rev1 LITERAL+ SASL-IR UIDPLUS ENABLE
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1, 127.0.0.2
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_TLS_PORT
    ssl = yes
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${DOVECOT_EXTRA:-}
EOF
	dovecot -c "$DOVECOT_CONF" || { echo "dovecot.sh: dovecot did not \
start; see $DOVECOT_LOG" >&2; return 1; }
	dovecot_wait_port "$DOVECOT_PORT" &&
	    dovecot_wait_port "$DOVECOT_TLS_PORT"
}

dovecot_user() {
	echo "$1:{PLAIN}$2::::::" >>"$DOVECOT_DIR/passwd"
	mkdir -p "$DOVECOT_DIR/home/$1/Maildir/new" \
	    "$DOVECOT_DIR/home/$1/Maildir/cur" \
	    "$DOVECOT_DIR/home/$1/Maildir/tmp" "$DOVECOT_RAWLOG/$1"
	chown -R "$DOVECOT_UID:$DOVECOT_GID" "$DOVECOT_DIR/home/$1" \
	    "$DOVECOT_RAWLOG/$1" 2>/dev/null
	return 0
}

dovecot_save() {
	doveadm -c "$DOVECOT_CONF" save -u "$1" -m "${3:-INBOX}" <"$2"
}

dovecot_maildir() {
	echo "$DOVECOT_DIR/home/$1/Maildir"
}

dovecot_drop() {
	_n=$(date +%s).$$.$(od -An -N4 -tx4 /dev/urandom | tr -d ' ').calgate
	_m=$DOVECOT_DIR/home/$1/Maildir
	cp "$2" "$_m/tmp/$_n" && chown "$DOVECOT_UID:$DOVECOT_GID" \
	    "$_m/tmp/$_n" 2>/dev/null
	mv "$_m/tmp/$_n" "$_m/new/$_n"
}

dovecot_logins_failed() {
	grep -c "passwd-file($1,.*Password mismatch" "$DOVECOT_LOG" 2>/dev/null
}

dovecot_stop() {
	[ -n "${DOVECOT_CONF:-}" ] || return 0
	_pid=$(cat "$DOVECOT_DIR/run/master.pid" 2>/dev/null)
	[ -n "$_pid" ] || return 0
	# Its children (imap processes serving clients) outlive the master;
	# a real restart ends their connections too.
	_kids=$(ps -o pid= --ppid "$_pid" 2>/dev/null)
	kill "$_pid" 2>/dev/null
	_i=0
	while kill -0 "$_pid" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	kill -9 "$_pid" $_kids 2>/dev/null
	rm -f "$DOVECOT_DIR/run/master.pid"
	return 0
}

dovecot_restart() {
	dovecot_stop
	dovecot -c "$DOVECOT_CONF" || return 1
	dovecot_wait_port "$DOVECOT_PORT" &&
	    dovecot_wait_port "$DOVECOT_TLS_PORT"
}

dovecot_cleanup() {
	dovecot_stop
	[ -n "${DOVECOT_DIR:-}" ] && rm -rf "$DOVECOT_DIR"
	DOVECOT_CONF=
}
