/*
 * imap-poller/imap.c: one IMAP session. libetpan speaks IMAP; the bytes go
 * through our own mailstream_low driver (plain socket, then GnuTLS),
 * because Debian's libetpan is built on GnuTLS and there its
 * mailstream_ssl_set_server_certicate() is a no-op: it never verifies the
 * server. Owning the transport also makes every wait interruptible (the
 * stop eventfd is polled with the socket) and bounded (IO_TIMEOUT_MS).
 *
 * Only BODYSTRUCTURE is read for ordinary mail; a message is fetched whole
 * only when it has a text/calendar or application/ics part at any depth.
 */
#include "imap-poller/imap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <libetpan/libetpan.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/log.h"

#define CONNECT_TIMEOUT_MS	15000
#define IO_TIMEOUT_MS		60000
#define STREAM_BUFFER		4096
#define MAX_DESCRIBE		100

/* The transport under libetpan: a socket, TLS once it is up. */
struct net {
	int fd;
	int stopfd;
	gnutls_session_t tls;		/* NULL before TLS */
	int stopped;			/* the stop descriptor fired */
	int timed_out;
	int eof;			/* the server closed the connection */
};

struct imap {
	mailimap *s;
	struct net *net;		/* owned by the mailstream_low */
	uint32_t uidvalidity;
	int idle;
};

/* ---- shared credentials ---------------------------------------------- */

/*
 * GnuTLS credentials are read-only once set up and may be shared by all
 * sessions; loading the system trust store once per account instead would
 * cost a few hundred KB each.
 */
struct cred {
	int verify;
	char *ca_file;			/* NULL: system store */
	gnutls_certificate_credentials_t c;
	struct cred *next;
};
static pthread_mutex_t cred_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cred *creds;

static gnutls_certificate_credentials_t
cred_get(int verify, const char *ca_file, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t c = NULL;
	struct cred *k;
	int r;

	if (!verify)
		ca_file = NULL;
	pthread_mutex_lock(&cred_mu);
	for (k = creds; k; k = k->next)
		if (k->verify == verify && ((!k->ca_file && !ca_file) ||
		    (k->ca_file && ca_file && !strcmp(k->ca_file, ca_file))))
			break;
	if (k != NULL) {
		pthread_mutex_unlock(&cred_mu);
		return k->c;
	}
	if (gnutls_certificate_allocate_credentials(&c) < 0) {
		snprintf(err, errlen, "TLS: out of memory");
		goto fail;
	}
	if (verify && ca_file)
		r = gnutls_certificate_set_x509_trust_file(c, ca_file,
		    GNUTLS_X509_FMT_PEM);
	else if (verify)
		r = gnutls_certificate_set_x509_system_trust(c);
	else
		r = 1;
	if (r <= 0) {
		snprintf(err, errlen, "TLS: no trusted certificate loaded "
		    "from %s%s%s", ca_file ? ca_file : "the system store",
		    r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
		goto fail;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL || (ca_file && (k->ca_file = strdup(ca_file)) == NULL)) {
		free(k);
		snprintf(err, errlen, "TLS: out of memory");
		goto fail;
	}
	k->verify = verify;
	k->c = c;
	k->next = creds;
	creds = k;
	pthread_mutex_unlock(&cred_mu);
	return c;
fail:
	if (c)
		gnutls_certificate_free_credentials(c);
	pthread_mutex_unlock(&cred_mu);
	return NULL;
}

void
imap_cleanup(void)
{
	struct cred *k, *next;

	pthread_mutex_lock(&cred_mu);
	for (k = creds; k; k = next) {
		next = k->next;
		gnutls_certificate_free_credentials(k->c);
		free(k->ca_file);
		free(k);
	}
	creds = NULL;
	pthread_mutex_unlock(&cred_mu);
}

/* ---- the transport ----------------------------------------------------- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits until fd is ready for events, the stop descriptor fires or the
 * deadline passes. 0: ready; -1: stopped or timed out (flags set).
 */
static int
net_wait(struct net *n, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = n->fd, .events = events },
			{ .fd = n->stopfd, .events = POLLIN },
		};
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			n->timed_out = 1;
			return -1;
		}
		r = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (p[1].revents) {
			n->stopped = 1;
			return -1;
		}
		if (p[0].revents)
			return 0;
	}
}

static ssize_t
net_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct net *n = p;
	ssize_t r = send(n->fd, buf, len, MSG_NOSIGNAL);

	if (r < 0)
		gnutls_transport_set_errno(n->tls, errno);
	return r;
}

static ssize_t
net_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct net *n = p;
	ssize_t r = recv(n->fd, buf, len, 0);

	if (r < 0)
		gnutls_transport_set_errno(n->tls, errno);
	return r;
}

static ssize_t
low_read(mailstream_low *low, void *buf, size_t count)
{
	struct net *n = low->data;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;

	for (;;) {
		ssize_t r;
		short ev = POLLIN;

		if (n->tls) {
			r = gnutls_record_recv(n->tls, buf, count);
			if (r > 0)
				return r;
			if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
				n->eof = 1;
				return 0;
			}
			if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
				return -1;
			if (gnutls_record_get_direction(n->tls))
				ev = POLLOUT;
		} else {
			r = recv(n->fd, buf, count, 0);
			if (r > 0)
				return r;
			if (r == 0) {
				n->eof = 1;
				return 0;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
		}
		if (net_wait(n, ev, deadline))
			return -1;
	}
}

static ssize_t
low_write(mailstream_low *low, const void *buf, size_t count)
{
	struct net *n = low->data;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	size_t done = 0;

	while (done < count) {
		ssize_t r;
		short ev = POLLOUT;

		if (n->tls) {
			r = gnutls_record_send(n->tls, (const char *)buf + done,
			    count - done);
			if (r < 0 && r != GNUTLS_E_AGAIN &&
			    r != GNUTLS_E_INTERRUPTED)
				return -1;
			if (r < 0 && !gnutls_record_get_direction(n->tls))
				ev = POLLIN;
		} else {
			r = send(n->fd, (const char *)buf + done, count - done,
			    MSG_NOSIGNAL);
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				return -1;
		}
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (net_wait(n, ev, deadline))
			return -1;
	}
	return (ssize_t)count;
}

static int
low_close(mailstream_low *low)
{
	struct net *n = low->data;

	if (n->tls)
		gnutls_bye(n->tls, GNUTLS_SHUT_WR);	/* best effort */
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	return 0;
}

static int
low_get_fd(mailstream_low *low)
{
	return ((struct net *)low->data)->fd;
}

static void
low_free(mailstream_low *low)
{
	struct net *n = low->data;

	if (n->fd >= 0)
		close(n->fd);
	if (n->tls)
		gnutls_deinit(n->tls);
	free(n);
	free(low);
}

static void
low_cancel(mailstream_low *low)
{
	(void)low;
}

static struct mailstream_cancel *
low_get_cancel(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static carray *
low_cert_chain(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static int
low_idle_unsupported(mailstream_low *low)
{
	(void)low;
	return -1;
}

static mailstream_low_driver low_driver = {
	.mailstream_read = low_read,
	.mailstream_write = low_write,
	.mailstream_close = low_close,
	.mailstream_get_fd = low_get_fd,
	.mailstream_free = low_free,
	.mailstream_cancel = low_cancel,
	.mailstream_get_cancel = low_get_cancel,
	.mailstream_get_certificate_chain = low_cert_chain,
	.mailstream_setup_idle = low_idle_unsupported,
	.mailstream_unsetup_idle = low_idle_unsupported,
	.mailstream_interrupt_idle = low_idle_unsupported,
};

/* A DNS request that may outlive its caller (see resolve). */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256];
	char port[16];
};

/*
 * getaddrinfo, but interruptible: a DNS outage can block a lookup for
 * many seconds and SIGTERM must not wait for it. 0 with *res, a
 * getaddrinfo error, or -1 when the stop descriptor fired.
 */
static int
resolve(const char *host, int port, int stopfd, struct addrinfo **res)
{
	struct lookup *lk = calloc(1, sizeof *lk);
	struct gaicb *list[1];
	struct pollfd p = { .fd = stopfd, .events = POLLIN };
	int r;

	*res = NULL;
	if (lk == NULL)
		return EAI_MEMORY;
	snprintf(lk->host, sizeof lk->host, "%s", host);
	snprintf(lk->port, sizeof lk->port, "%d", port);
	lk->hints.ai_socktype = SOCK_STREAM;
	lk->hints.ai_flags = AI_NUMERICSERV;
	lk->cb.ar_name = lk->host;
	lk->cb.ar_service = lk->port;
	lk->cb.ar_request = &lk->hints;
	list[0] = &lk->cb;
	r = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (r != 0) {
		free(lk);
		return r;
	}
	while ((r = gai_error(&lk->cb)) == EAI_INPROGRESS) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (poll(&p, 1, 0) > 0) {
			/* Still running: its memory must stay (a tiny leak,
			 * at shutdown only). */
			if (gai_cancel(&lk->cb) == EAI_CANCELED)
				free(lk);
			return -1;
		}
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (r == 0)
		*res = lk->cb.ar_result;
	else if (lk->cb.ar_result)
		freeaddrinfo(lk->cb.ar_result);
	free(lk);
	return r;
}

/* Non-blocking connect to each address in turn. Returns the fd or -1. */
static int
net_connect(const struct imap_account *acc, int stopfd,
    enum imap_status *st, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1, r, last = 0;

	r = resolve(acc->host, acc->port, stopfd, &res);
	if (r == -1) {
		snprintf(err, errlen, "stopped");
		*st = IMAP_ESTOP;
		return -1;
	}
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", acc->host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		*st = IMAP_ENET;
		return -1;
	}
	*st = IMAP_ENET;
	for (ai = res; ai; ai = ai->ai_next) {
		struct net n = { .stopfd = stopfd };
		socklen_t sl = sizeof last;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		n.fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			last = errno;
		} else if (net_wait(&n, POLLOUT, now_ms() +
		    CONNECT_TIMEOUT_MS) == 0) {
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl))
				last = errno;
			if (last == 0)
				break;
		} else if (n.stopped) {
			*st = IMAP_ESTOP;
			close(fd);
			fd = -1;
			break;
		} else {
			last = ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0 && *st != IMAP_ESTOP)
		snprintf(err, errlen, "cannot connect to %s:%d: %s", acc->host,
		    acc->port, strerror(last ? last : ECONNREFUSED));
	if (fd >= 0) {
		int one = 1, idle = 300, intvl = 60, cnt = 3;

		/*
		 * An IDLE connection is silent for minutes: keepalives find
		 * a peer that vanished (NAT timeout, host gone) in ~8 min
		 * instead of at the next IDLE re-issue.
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		    sizeof intvl);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
		*st = IMAP_OK;
	}
	return fd;
}

static int
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/* Runs the TLS handshake on n (verifying the peer unless told not to). */
static enum imap_status
net_tls(struct net *n, const struct imap_account *acc, char *err,
    size_t errlen)
{
	gnutls_certificate_credentials_t c;
	int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
	int r;

	c = cred_get(acc->verify, acc->ca_file, err, errlen);
	if (c == NULL)
		return IMAP_ETLS;
	if (gnutls_init(&n->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
		n->tls = NULL;
		snprintf(err, errlen, "TLS: cannot create a session");
		return IMAP_ETLS;
	}
	gnutls_set_default_priority(n->tls);
	gnutls_credentials_set(n->tls, GNUTLS_CRD_CERTIFICATE, c);
	if (!is_ip_literal(acc->host))
		gnutls_server_name_set(n->tls, GNUTLS_NAME_DNS, acc->host,
		    strlen(acc->host));
	/* Checks the chain and that the certificate names host (or IP). */
	if (acc->verify)
		gnutls_session_set_verify_cert(n->tls, acc->host, 0);
	gnutls_transport_set_ptr(n->tls, n);
	gnutls_transport_set_push_function(n->tls, net_push);
	gnutls_transport_set_pull_function(n->tls, net_pull);
	while ((r = gnutls_handshake(n->tls)) < 0) {
		if (gnutls_error_is_fatal(r)) {
			gnutls_datum_t out = { 0 };
			unsigned status;

			if (r != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
				snprintf(err, errlen, "TLS handshake with %s "
				    "failed: %s", acc->host,
				    gnutls_strerror(r));
				return r == GNUTLS_E_PULL_ERROR ||
				    r == GNUTLS_E_PUSH_ERROR ||
				    r == GNUTLS_E_PREMATURE_TERMINATION ?
				    IMAP_ENET : IMAP_ETLS;
			}
			status = gnutls_session_get_verify_cert_status(n->tls);
			gnutls_certificate_verification_status_print(status,
			    GNUTLS_CRT_X509, &out, 0);
			snprintf(err, errlen, "TLS certificate of %s not "
			    "trusted: %s", acc->host,
			    out.data ? (char *)out.data : "?");
			gnutls_free(out.data);
			return IMAP_ETLS;
		}
		if (net_wait(n, gnutls_record_get_direction(n->tls) ?
		    POLLOUT : POLLIN, deadline)) {
			snprintf(err, errlen, "TLS handshake with %s: %s",
			    acc->host, n->stopped ? "stopped" : "timed out");
			return n->stopped ? IMAP_ESTOP : IMAP_ENET;
		}
	}
	return IMAP_OK;
}

/* ---- the session ------------------------------------------------------- */

/* The server's last response text, cleaned for a log line or status. */
static const char *
server_text(const struct imap *im)
{
	static __thread char buf[160];
	const char *t = im->s ? im->s->imap_response : NULL;
	size_t i;

	if (t == NULL || *t == '\0')
		return "no reason given";
	for (i = 0; t[i] && i + 1 < sizeof buf; i++)
		buf[i] = (t[i] < ' ' || t[i] == 0x7f) ? ' ' : t[i];
	buf[i] = '\0';
	return buf;
}

/* Maps a libetpan error to a status and an explanation. */
static enum imap_status
fail(struct imap *im, int r, const char *what, char *err, size_t errlen)
{
	if (im->net && im->net->stopped) {
		snprintf(err, errlen, "stopped");
		return IMAP_ESTOP;
	}
	if (im->net && im->net->timed_out) {
		snprintf(err, errlen, "%s: the server did not answer within "
		    "%d s", what, IO_TIMEOUT_MS / 1000);
		return IMAP_ENET;
	}
	if (im->net && im->net->eof) {
		snprintf(err, errlen, "%s: the server closed the connection",
		    what);
		return IMAP_ENET;
	}
	if (r == MAILIMAP_ERROR_STREAM) {
		snprintf(err, errlen, "%s: connection lost", what);
		return IMAP_ENET;
	}
	if (r == MAILIMAP_ERROR_PARSE) {
		snprintf(err, errlen, "%s: unreadable server response", what);
		return IMAP_ENET;
	}
	snprintf(err, errlen, "%s refused: %s", what, server_text(im));
	return IMAP_ENO;
}

static int
has_cap(struct imap *im, const char *name)
{
	return mailimap_has_extension(im->s, (char *)name) ||
	    (!strncasecmp(name, "AUTH=", 5) &&
	    mailimap_has_authentication(im->s, (char *)name + 5));
}

static enum imap_status
refresh_caps(struct imap *im, char *err, size_t errlen)
{
	struct mailimap_capability_data *cap = NULL;
	int r = mailimap_capability(im->s, &cap);

	if (cap)
		mailimap_capability_data_free(cap);
	return r == MAILIMAP_NO_ERROR ? IMAP_OK :
	    fail(im, r, "CAPABILITY", err, errlen);
}

static enum imap_status
starttls(struct imap *im, const struct imap_account *acc, char *err,
    size_t errlen)
{
	enum imap_status st;
	int r;

	if (!has_cap(im, "STARTTLS")) {
		snprintf(err, errlen, "%s does not offer STARTTLS (use "
		    "imaps://, or imap_tls = none on loopback)", acc->host);
		return IMAP_ETLS;
	}
	r = mailimap_starttls(im->s);
	if (r != MAILIMAP_NO_ERROR) {
		st = fail(im, r, "STARTTLS", err, errlen);
		return st == IMAP_ENO ? IMAP_ETLS : st;
	}
	/*
	 * Anything already buffered was sent before TLS and could have been
	 * injected by a man in the middle (CVE-2011-0411 style): refuse.
	 */
	if (im->s->imap_stream->read_buffer_len > 0) {
		snprintf(err, errlen, "%s sent data after STARTTLS before "
		    "the handshake", acc->host);
		return IMAP_ETLS;
	}
	st = net_tls(im->net, acc, err, errlen);
	if (st != IMAP_OK)
		return st;
	return refresh_caps(im, err, errlen);
}

/* AUTHENTICATE PLAIN with an initial response (RFC 4959). */
static int
auth_plain(struct imap *im, const struct imap_account *acc)
{
	size_t ul = strlen(acc->login), pl = strlen(acc->password);
	size_t rawlen = ul * 2 + pl + 2, b64len = (rawlen + 2) / 3 * 4;
	char *raw = malloc(rawlen), *cmd = malloc(b64len + 32);
	gnutls_datum_t in, out = { 0 };
	int r = MAILIMAP_ERROR_MEMORY;

	if (raw == NULL || cmd == NULL)
		goto out;
	memcpy(raw, acc->login, ul);
	raw[ul] = '\0';
	memcpy(raw + ul + 1, acc->login, ul);
	raw[ul * 2 + 1] = '\0';
	memcpy(raw + ul * 2 + 2, acc->password, pl);
	in.data = (unsigned char *)raw;
	in.size = (unsigned)rawlen;
	if (gnutls_base64_encode2(&in, &out) < 0)
		goto out;
	snprintf(cmd, b64len + 32, "AUTHENTICATE PLAIN %.*s", (int)out.size,
	    (char *)out.data);
	r = mailimap_custom_command(im->s, cmd);
	/* libetpan does not know a custom command logged us in. */
	if (r == MAILIMAP_NO_ERROR)
		im->s->imap_state = MAILIMAP_STATE_AUTHENTICATED;
out:
	if (raw)
		explicit_bzero(raw, rawlen);
	if (cmd)
		explicit_bzero(cmd, b64len + 32);
	if (out.data) {
		explicit_bzero(out.data, out.size);
		gnutls_free(out.data);
	}
	free(raw);
	free(cmd);
	return r;
}

static enum imap_status
login(struct imap *im, const struct imap_account *acc, char *err,
    size_t errlen)
{
	int r;

	if (has_cap(im, "LOGINDISABLED") && has_cap(im, "AUTH=PLAIN") &&
	    has_cap(im, "SASL-IR"))
		r = auth_plain(im, acc);
	else
		r = mailimap_login(im->s, acc->login, acc->password);
	if (r == MAILIMAP_ERROR_LOGIN || r == MAILIMAP_ERROR_CUSTOM_COMMAND) {
		/* [UNAVAILABLE] is the server's trouble, not the password. */
		if (strstr(server_text(im), "UNAVAILABLE")) {
			snprintf(err, errlen, "login: server unavailable: %s",
			    server_text(im));
			return IMAP_ENET;
		}
		snprintf(err, errlen, "login as %s rejected: %s", acc->login,
		    server_text(im));
		return IMAP_EAUTH;
	}
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, "login", err, errlen);
	return refresh_caps(im, err, errlen);
}

static enum imap_status
open_mailbox(struct imap *im, const struct imap_account *acc, char *err,
    size_t errlen)
{
	int r;

	if (acc->flag)
		r = mailimap_select(im->s, acc->mailbox);
	else
		r = mailimap_examine(im->s, acc->mailbox);
	if (r == MAILIMAP_ERROR_SELECT || r == MAILIMAP_ERROR_EXAMINE) {
		snprintf(err, errlen, "cannot open mailbox %s: %s",
		    acc->mailbox, server_text(im));
		return IMAP_EMAILBOX;
	}
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, acc->flag ? "SELECT" : "EXAMINE", err,
		    errlen);
	im->uidvalidity = im->s->imap_selection_info ?
	    im->s->imap_selection_info->sel_uidvalidity : 0;
	if (im->uidvalidity == 0) {
		snprintf(err, errlen, "mailbox %s has no UIDVALIDITY",
		    acc->mailbox);
		return IMAP_EMAILBOX;
	}
	im->idle = mailimap_has_idle(im->s);
	return IMAP_OK;
}

enum imap_status
imap_open(const struct imap_account *acc, int stopfd, struct imap **out,
    char *err, size_t errlen)
{
	struct imap *im = calloc(1, sizeof *im);
	mailstream_low *low = NULL;
	mailstream *stream;
	enum imap_status st = IMAP_ENET;
	struct net *n = NULL;
	int fd, r;

	*out = NULL;
	if (im == NULL || (n = calloc(1, sizeof *n)) == NULL)
		goto nomem;
	n->fd = -1;
	fd = net_connect(acc, stopfd, &st, err, errlen);
	if (fd < 0)
		goto fail;
	n->fd = fd;
	n->stopfd = stopfd;
	if (acc->ssl && (st = net_tls(n, acc, err, errlen)) != IMAP_OK)
		goto fail;
	low = mailstream_low_new(n, &low_driver);
	if (low == NULL)
		goto nomem;
	n = NULL;			/* the mailstream_low owns it now */
	stream = mailstream_new(low, STREAM_BUFFER);
	if (stream == NULL) {
		mailstream_low_close(low);
		mailstream_low_free(low);
		goto nomem;
	}
	im->s = mailimap_new(0, NULL);
	if (im->s == NULL) {
		mailstream_close(stream);
		goto nomem;
	}
	im->net = low->data;
	r = mailimap_connect(im->s, stream);
	if (r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		st = fail(im, r, "greeting", err, errlen);
		goto fail;
	}
	if ((st = refresh_caps(im, err, errlen)) != IMAP_OK)
		goto fail;
	if (!acc->ssl && !acc->plaintext &&
	    (st = starttls(im, acc, err, errlen)) != IMAP_OK)
		goto fail;
	if (r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED &&
	    (st = login(im, acc, err, errlen)) != IMAP_OK)
		goto fail;
	if ((st = open_mailbox(im, acc, err, errlen)) != IMAP_OK)
		goto fail;
	*out = im;
	return IMAP_OK;
nomem:
	snprintf(err, errlen, "out of memory");
	st = IMAP_ENET;
fail:
	if (n != NULL) {
		if (n->fd >= 0)
			close(n->fd);
		if (n->tls)
			gnutls_deinit(n->tls);
		free(n);
	}
	imap_close(im);
	return st;
}

void
imap_close(struct imap *im)
{
	if (im == NULL)
		return;
	/*
	 * Close the stream first: mailimap_free would send LOGOUT and wait
	 * for an answer from a server that may be gone.
	 */
	if (im->s && im->s->imap_stream) {
		mailstream_close(im->s->imap_stream);
		im->s->imap_stream = NULL;
	}
	if (im->s)
		mailimap_free(im->s);
	free(im);
}

uint32_t
imap_uidvalidity(const struct imap *im)
{
	return im->uidvalidity;
}

int
imap_has_idle(const struct imap *im)
{
	return im->idle;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

enum imap_status
imap_new_uids(struct imap *im, uint32_t after, uint32_t **uids, size_t *n,
    char *err, size_t errlen)
{
	struct mailimap_search_key *key;
	struct mailimap_set *set;
	clist *result = NULL;
	clistiter *it;
	size_t k = 0;
	int r;

	*uids = NULL;
	*n = 0;
	set = mailimap_set_new_interval(after + 1, 0);
	key = set ? mailimap_search_key_new_uid(set) : NULL;
	if (key == NULL) {
		if (set)
			mailimap_set_free(set);
		snprintf(err, errlen, "out of memory");
		return IMAP_ENET;
	}
	r = mailimap_uid_search(im->s, NULL, key, &result);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, "UID SEARCH", err, errlen);
	*uids = malloc((clist_count(result) + 1) * sizeof **uids);
	if (*uids == NULL) {
		mailimap_search_result_free(result);
		snprintf(err, errlen, "out of memory");
		return IMAP_ENET;
	}
	/* "UID n:*" always matches the highest UID, even below n. */
	for (it = clist_begin(result); it; it = clist_next(it)) {
		uint32_t *u = clist_content(it);

		if (u && *u > after)
			(*uids)[k++] = *u;
	}
	mailimap_search_result_free(result);
	qsort(*uids, k, sizeof **uids, cmp_u32);
	*n = k;
	return IMAP_OK;
}

static int
is_calendar_part(const struct mailimap_body_type_1part *p)
{
	if (p->bd_type == MAILIMAP_BODY_TYPE_1PART_TEXT)
		return p->bd_data.bd_type_text &&
		    !strcasecmp(p->bd_data.bd_type_text->bd_media_text,
		    "calendar");
	if (p->bd_type == MAILIMAP_BODY_TYPE_1PART_BASIC) {
		const struct mailimap_media_basic *m =
		    p->bd_data.bd_type_basic ?
		    p->bd_data.bd_type_basic->bd_media_basic : NULL;

		return m && m->med_type == MAILIMAP_MEDIA_BASIC_APPLICATION &&
		    m->med_subtype && !strcasecmp(m->med_subtype, "ics");
	}
	return 0;
}

/*
 * Looks for the first calendar part below body, whose section number is
 * sec[0..depth-1] (IMAP4rev1 6.4.5: a multipart's children are .1, .2...;
 * a single-part body at the top or inside message/rfc822 is .1).
 */
static int
find_calendar(const struct mailimap_body *b, struct imap_msginfo *mi,
    int depth)
{
	clistiter *it;
	uint32_t i = 1;

	if (b == NULL || depth >= IMAP_MAX_DEPTH)
		return 0;
	if (b->bd_type == MAILIMAP_BODY_MPART) {
		if (b->bd_data.bd_body_mpart == NULL)
			return 0;
		for (it = clist_begin(b->bd_data.bd_body_mpart->bd_list); it;
		    it = clist_next(it), i++) {
			const struct mailimap_body *c = clist_content(it);

			mi->section[depth] = i;
			if (c && c->bd_type == MAILIMAP_BODY_MPART ?
			    find_calendar(c, mi, depth + 1) :
			    find_calendar(c, mi, depth))
				return 1;
		}
		return 0;
	}
	/* A single part; its own number is already in section[depth]. */
	if (b->bd_data.bd_body_1part == NULL)
		return 0;
	if (is_calendar_part(b->bd_data.bd_body_1part)) {
		mi->nsection = depth + 1;
		return 1;
	}
	if (b->bd_data.bd_body_1part->bd_type == MAILIMAP_BODY_TYPE_1PART_MSG &&
	    b->bd_data.bd_body_1part->bd_data.bd_type_msg) {
		const struct mailimap_body *inner =
		    b->bd_data.bd_body_1part->bd_data.bd_type_msg->bd_body;

		if (depth + 1 >= IMAP_MAX_DEPTH)
			return 0;
		if (inner && inner->bd_type == MAILIMAP_BODY_MPART)
			return find_calendar(inner, mi, depth + 1);
		mi->section[depth + 1] = 1;
		return find_calendar(inner, mi, depth + 1);
	}
	return 0;
}

/* Adds a to ft; frees it on failure. a may be NULL (out of memory). */
static int
add_att(struct mailimap_fetch_type *ft, struct mailimap_fetch_att *a)
{
	if (a == NULL)
		return -1;
	if (mailimap_fetch_type_new_fetch_att_list_add(ft, a) != 0) {
		mailimap_fetch_att_free(a);
		return -1;
	}
	return 0;
}

/* BODY.PEEK[sec], owning sec; frees sec on failure. */
static struct mailimap_fetch_att *
peek_att(struct mailimap_section *sec)
{
	struct mailimap_fetch_att *a;

	if (sec == NULL)
		return NULL;
	a = mailimap_fetch_att_new_body_peek_section(sec);
	if (a == NULL)
		mailimap_section_free(sec);
	return a;
}

/* Fills mi from one FETCH response. */
static void
describe_one(const struct mailimap_msg_att *att, struct imap_msginfo *mi)
{
	const struct mailimap_body *body = NULL;
	clistiter *it;

	for (it = clist_begin(att->att_list); it; it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);
		const struct mailimap_msg_att_static *s;

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		s = item->att_data.att_static;
		if (s->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
			mi->size = s->att_data.att_rfc822_size;
		else if (s->att_type == MAILIMAP_MSG_ATT_BODYSTRUCTURE)
			body = s->att_data.att_bodystructure;
	}
	mi->present = 1;
	mi->nsection = 0;
	if (body && body->bd_type == MAILIMAP_BODY_MPART)
		mi->calendar = find_calendar(body, mi, 0);
	else if (body) {
		mi->section[0] = 1;
		mi->calendar = find_calendar(body, mi, 0);
	}
}

static uint32_t
att_uid(const struct mailimap_msg_att *att)
{
	for (clistiter *it = clist_begin(att->att_list); it;
	    it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
			return item->att_data.att_static->att_data.att_uid;
	}
	return 0;
}

/*
 * Sends UID FETCH for set with the items of ft, taking both (either may be
 * NULL). nomem: building them ran out of memory; nothing is sent. Returns
 * IMAP_OK with the answer in *result (free with mailimap_fetch_list_free),
 * else the failure with a reason in err.
 */
static enum imap_status
uid_fetch(struct imap *im, struct mailimap_set *set,
    struct mailimap_fetch_type *ft, int nomem, const char *what,
    clist **result, char *err, size_t errlen)
{
	int r = MAILIMAP_NO_ERROR;

	*result = NULL;
	if (!nomem && set != NULL && ft != NULL)
		r = mailimap_uid_fetch(im->s, set, ft, result);
	else
		nomem = 1;
	if (set)
		mailimap_set_free(set);
	if (ft)
		mailimap_fetch_type_free(ft);
	if (nomem) {
		snprintf(err, errlen, "out of memory");
		return IMAP_ENET;
	}
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, what, err, errlen);
	return IMAP_OK;
}

enum imap_status
imap_describe(struct imap *im, const uint32_t *uids, size_t n,
    struct imap_msginfo *out, char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *result = NULL;
	enum imap_status st;
	int nomem;

	if (n == 0)
		return IMAP_OK;
	if (n > MAX_DESCRIBE)
		n = MAX_DESCRIBE;
	memset(out, 0, n * sizeof *out);
	set = mailimap_set_new_empty();
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	nomem = set == NULL || ft == NULL;
	for (size_t i = 0; !nomem && i < n; i++) {
		out[i].uid = uids[i];
		if (mailimap_set_add_single(set, uids[i]))
			nomem = 1;
	}
	if (!nomem && (add_att(ft, mailimap_fetch_att_new_uid()) ||
	    add_att(ft, mailimap_fetch_att_new_rfc822_size()) ||
	    add_att(ft, mailimap_fetch_att_new_bodystructure())))
		nomem = 1;
	st = uid_fetch(im, set, ft, nomem, "UID FETCH BODYSTRUCTURE",
	    &result, err, errlen);
	if (st != IMAP_OK)
		return st;
	for (clistiter *it = clist_begin(result); it; it = clist_next(it)) {
		const struct mailimap_msg_att *att = clist_content(it);
		uint32_t uid = att_uid(att);

		for (size_t i = 0; i < n; i++)
			if (out[i].uid == uid && uid != 0)
				describe_one(att, &out[i]);
	}
	mailimap_fetch_list_free(result);
	return IMAP_OK;
}

static void
free_item(void *p, void *unused)
{
	(void)unused;
	free(p);
}

static struct mailimap_section *
section_of(const struct imap_msginfo *mi)
{
	struct mailimap_section_part *part;
	struct mailimap_section *sec;
	clist *ids = clist_new();

	if (ids == NULL)
		return NULL;
	for (int i = 0; i < mi->nsection; i++) {
		uint32_t *v = malloc(sizeof *v);

		if (v == NULL || clist_append(ids, v) < 0) {
			free(v);
			goto fail;
		}
		*v = mi->section[i];
	}
	part = mailimap_section_part_new(ids);
	if (part == NULL)
		goto fail;
	sec = mailimap_section_new_part(part);
	if (sec == NULL)
		mailimap_section_part_free(part);
	return sec;
fail:
	clist_foreach(ids, free_item, NULL);
	clist_free(ids);
	return NULL;
}

enum imap_status
imap_fetch(struct imap *im, const struct imap_msginfo *mi, char **raw,
    size_t *len, unsigned char calhash[32], char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *result = NULL;
	enum imap_status st;
	int nomem, have_part = 0;

	*raw = NULL;
	*len = 0;
	set = mailimap_set_new_single(mi->uid);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	nomem = set == NULL || ft == NULL ||
	    add_att(ft, mailimap_fetch_att_new_uid()) ||
	    add_att(ft, peek_att(mailimap_section_new(NULL))) ||
	    add_att(ft, peek_att(section_of(mi)));
	st = uid_fetch(im, set, ft, nomem, "UID FETCH BODY[]", &result, err,
	    errlen);
	if (st != IMAP_OK)
		return st;
	for (clistiter *it = clist_begin(result); it; it = clist_next(it)) {
		const struct mailimap_msg_att *att = clist_content(it);

		if (att_uid(att) != mi->uid)
			continue;
		for (clistiter *j = clist_begin(att->att_list); j;
		    j = clist_next(j)) {
			const struct mailimap_msg_att_item *item =
			    clist_content(j);
			const struct mailimap_msg_att_body_section *bs;

			if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
			    item->att_data.att_static->att_type !=
			    MAILIMAP_MSG_ATT_BODY_SECTION)
				continue;
			bs = item->att_data.att_static->att_data.
			    att_body_section;
			if (bs->sec_section == NULL ||
			    bs->sec_section->sec_spec == NULL) {
				if (*raw != NULL)
					continue;
				*raw = malloc(bs->sec_length + 1);
				if (*raw == NULL)
					break;
				if (bs->sec_length)
					memcpy(*raw, bs->sec_body_part,
					    bs->sec_length);
				(*raw)[bs->sec_length] = '\0';
				*len = bs->sec_length;
			} else if (!have_part && bs->sec_body_part &&
			    bs->sec_length > 0) {
				gnutls_hash_fast(GNUTLS_DIG_SHA256,
				    bs->sec_body_part, bs->sec_length,
				    calhash);
				have_part = 1;
			}
		}
	}
	mailimap_fetch_list_free(result);
	if (*raw != NULL && !have_part)
		gnutls_hash_fast(GNUTLS_DIG_SHA256, *raw, *len, calhash);
	return IMAP_OK;
}

enum imap_status
imap_set_flag(struct imap *im, uint32_t uid, const char *keyword, char *err,
    size_t errlen)
{
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
	struct mailimap_store_att_flags *sa = NULL;
	struct mailimap_flag *f = NULL;
	struct mailimap_set *set = mailimap_set_new_single(uid);
	char *kw = strdup(keyword);
	int r;

	if (fl && kw && (f = mailimap_flag_new_flag_keyword(kw)) != NULL)
		kw = NULL;
	if (f && mailimap_flag_list_add(fl, f) == 0)
		f = NULL;
	if (fl && f == NULL && kw == NULL)
		sa = mailimap_store_att_flags_new_add_flags_silent(fl);
	if (sa == NULL || set == NULL) {
		free(kw);
		if (f)
			mailimap_flag_free(f);
		if (sa)
			mailimap_store_att_flags_free(sa);
		else if (fl)
			mailimap_flag_list_free(fl);
		if (set)
			mailimap_set_free(set);
		snprintf(err, errlen, "out of memory");
		return IMAP_ENET;
	}
	r = mailimap_uid_store(im->s, set, sa);
	mailimap_store_att_flags_free(sa);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, "UID STORE", err, errlen);
	return IMAP_OK;
}

/* Waits for the server to say something; 1 data, 0 timeout, -1 stop. */
static int
wait_server(struct imap *im, int timeout_ms)
{
	struct net *n = im->net;
	int64_t deadline = now_ms() + timeout_ms;

	/* libetpan's and GnuTLS's buffers are invisible to poll(). */
	if (im->s->imap_stream->read_buffer_len > 0 ||
	    (n->tls && gnutls_record_check_pending(n->tls) > 0))
		return 1;
	if (net_wait(n, POLLIN, deadline) == 0)
		return 1;
	if (n->stopped)
		return -1;
	n->timed_out = 0;
	return 0;
}

enum imap_status
imap_wait(struct imap *im, int timeout_ms, char *err, size_t errlen)
{
	int r, w;

	if (!im->idle) {
		struct pollfd p = { .fd = im->net->stopfd, .events = POLLIN };

		while ((w = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		if (w > 0) {
			im->net->stopped = 1;
			snprintf(err, errlen, "stopped");
			return IMAP_ESTOP;
		}
		r = mailimap_noop(im->s);
		return r == MAILIMAP_NO_ERROR ? IMAP_OK :
		    fail(im, r, "NOOP", err, errlen);
	}
	r = mailimap_idle(im->s);
	if (r != MAILIMAP_NO_ERROR)
		return fail(im, r, "IDLE", err, errlen);
	w = wait_server(im, timeout_ms);
	if (w < 0) {
		snprintf(err, errlen, "stopped");
		return IMAP_ESTOP;
	}
	r = mailimap_idle_done(im->s);
	return r == MAILIMAP_NO_ERROR ? IMAP_OK :
	    fail(im, r, "IDLE DONE", err, errlen);
}
