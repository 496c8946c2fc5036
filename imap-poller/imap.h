/*
 * imap-poller/imap.h: one IMAP session (libetpan over our own GnuTLS
 * transport). Connects, secures (imaps:// or STARTTLS, certificate and host
 * name verified), logs in, opens one mailbox read-only (EXAMINE) unless a
 * keyword flag is wanted (SELECT), finds calendar messages from their
 * BODYSTRUCTURE and fetches only those whole. Knows nothing of the store,
 * the accounts table or policy: poller.c drives it.
 *
 * Every blocking step also watches a stop descriptor (an eventfd): when it
 * becomes readable the step gives up with IMAP_ESTOP at once.
 */
#ifndef CALGATE_IMAP_H
#define CALGATE_IMAP_H

#include <stddef.h>
#include <stdint.h>

enum imap_status {
	IMAP_OK = 0,
	IMAP_ENET,		/* DNS, connect, drop, timeout, bad reply */
	IMAP_EAUTH,		/* the server refused the login */
	IMAP_ETLS,		/* handshake or certificate check failed */
	IMAP_EMAILBOX,		/* the mailbox could not be opened */
	IMAP_ENO,		/* the server refused a command (NO, BAD) */
	IMAP_ESTOP,		/* the stop descriptor fired */
};

/* Where and how to connect; strings are borrowed. */
struct imap_account {
	const char *host;
	int port;
	int ssl;			/* 1: imaps://; 0: imap:// */
	int plaintext;			/* no STARTTLS (loopback only) */
	int verify;			/* check certificate and host name */
	const char *ca_file;		/* trust only this; NULL: system */
	const char *login, *password;
	const char *mailbox;
	const char *flag;		/* keyword to set; NULL: read-only */
};

/* What BODYSTRUCTURE said about one message. */
#define IMAP_MAX_DEPTH	16
struct imap_msginfo {
	uint32_t uid;
	uint32_t size;			/* RFC822.SIZE */
	int present;			/* 0: expunged meanwhile */
	int calendar;			/* text/calendar, application/ics */
	uint32_t section[IMAP_MAX_DEPTH];	/* the first such part */
	int nsection;
};

struct imap;

/*
 * Connects and opens the mailbox. On success *out is the session (free
 * with imap_close). On failure returns the status and writes one line for
 * a person to err (never the password).
 */
enum imap_status imap_open(const struct imap_account *, int stopfd,
    struct imap **out, char *err, size_t errlen);
void imap_close(struct imap *);		/* accepts NULL */

uint32_t imap_uidvalidity(const struct imap *);
int imap_has_idle(const struct imap *);

/*
 * The UIDs above after, ascending, in *uids (caller frees). An empty
 * mailbox gives *n = 0.
 */
enum imap_status imap_new_uids(struct imap *, uint32_t after,
    uint32_t **uids, size_t *n, char *err, size_t errlen);

/* BODYSTRUCTURE of n messages (n <= 100) into out[0..n-1], same order. */
enum imap_status imap_describe(struct imap *, const uint32_t *uids,
    size_t n, struct imap_msginfo *out, char *err, size_t errlen);

/*
 * Fetches the whole message (BODY.PEEK[], the exact bytes) and the SHA-256
 * of its calendar part as transferred (BODY.PEEK[section]: still in its
 * Content-Transfer-Encoding). *raw is malloc'd and NUL-terminated (caller
 * frees); NULL when the message was expunged meanwhile.
 */
enum imap_status imap_fetch(struct imap *, const struct imap_msginfo *,
    char **raw, size_t *len, unsigned char calhash[32], char *err,
    size_t errlen);

/* Adds the keyword flag to uid (UID STORE +FLAGS.SILENT). */
enum imap_status imap_set_flag(struct imap *, uint32_t uid,
    const char *keyword, char *err, size_t errlen);

/*
 * Waits up to timeout_ms for the mailbox to change: in IDLE (RFC 2177)
 * when the server has it, else idle on the socket's side and NOOP at the
 * end. Returns IMAP_OK when something may have changed or the time is up.
 */
enum imap_status imap_wait(struct imap *, int timeout_ms, char *err,
    size_t errlen);

/* Frees the shared TLS credentials; call when no session is left. */
void imap_cleanup(void);

#endif
