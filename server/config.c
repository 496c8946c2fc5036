/*
 * server/config.c: loads the INI file with inih and validates every key
 * against one table (name, type, bounds, default). Every problem is
 * reported as FILE:LINE; a file with any problem is refused as a whole.
 * Relative paths are taken from the config file's own directory.
 * Secrets (password hashes, IMAP passwords) are kept in memory only and
 * never written back out by anything in here.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONF_MAX_LINE		4096
#define CONF_MAX_SECRET		1024
#define CONF_MAX_ERRORS		100

enum ktype {
	K_STR,		/* any text */
	K_PATH,		/* a path, made absolute against the config dir */
	K_INT,
	K_SIZE,		/* bytes, with optional k/M/G suffix */
	K_BOOL,
	K_ENUM,
	K_LISTEN,
	K_LOGLEVEL,
	K_DNS,
	K_HASH,
	K_ADDRS,	/* list of mail addresses */
	K_SENDERS,	/* list of addresses or @domains */
	K_SIGNERS,	/* dkim_signers */
	K_DOMAINS,	/* dkim_domains */
	K_IMAPURL,
	K_SECRETFILE,
	K_NAME,		/* calendar name */
};

enum ksect { S_SERVER, S_DNS, S_POLICY, S_USER };

struct key {
	enum ksect sect;
	const char *name;
	enum ktype type;
	size_t off;
	long min, max;
	const char *const *words;	/* K_ENUM: value i is words[i] */
	const char *def;		/* NULL: no default (unset) */
};

static const char *const w_require[] = { "dmarc", "dkim", "none", NULL };
static const char *const w_new[] = { "anyone", "known", NULL };
static const char *const w_spf[] = { "off", "authentication-results", NULL };
static const char *const w_tls[] = { "required", "none", NULL };
static const char *const w_cancel[] = { "mark", "delete", NULL };

#define C(f)	offsetof(struct config, f)
#define P(f)	offsetof(struct gate_policy, f)
#define U(f)	offsetof(struct user_conf, f)

static const struct key keys[] = {
	{ S_SERVER, "listen", K_LISTEN, 0, 0, 0, NULL, "127.0.0.1:8008" },
	{ S_SERVER, "data_dir", K_PATH, C(data_dir), 0, 0, NULL, "./data" },
	{ S_SERVER, "tls_cert", K_PATH, C(tls_cert), 0, 0, NULL, NULL },
	{ S_SERVER, "tls_key", K_PATH, C(tls_key), 0, 0, NULL, NULL },
	{ S_SERVER, "max_body", K_SIZE, C(max_body), 1024, 1L << 30, NULL,
	  "16M" },
	{ S_SERVER, "threads", K_INT, C(threads), 1, 256, NULL, "8" },
	{ S_SERVER, "defer_retry", K_INT, C(defer_retry), 1, 3600, NULL,
	  "60" },
	{ S_SERVER, "defer_max", K_INT, C(defer_max), 60, 30 * 86400, NULL,
	  "86400" },
	{ S_SERVER, "cancel", K_ENUM, C(cancel), 0, 0, w_cancel, "mark" },
	{ S_SERVER, "log_level", K_LOGLEVEL, C(log_level), 0, 0, NULL,
	  "info" },

	{ S_DNS, "resolver", K_DNS, 0, 0, 0, NULL, "system" },
	{ S_DNS, "timeout_ms", K_INT, C(dns_timeout_ms), 100, 60000, NULL,
	  "5000" },

	{ S_POLICY, "require", K_ENUM, P(require), 0, 0, w_require, "dmarc" },
	{ S_POLICY, "dkim_signers", K_SIGNERS, 0, 0, 0, NULL, "aligned" },
	{ S_POLICY, "dkim_domains", K_DOMAINS, 0, 0, 0, NULL, "*" },
	{ S_POLICY, "organizer_must_match_from", K_BOOL,
	  P(organizer_must_match_from), 0, 0, NULL, "yes" },
	{ S_POLICY, "new_events_from", K_ENUM, P(new_events_from), 0, 0,
	  w_new, "anyone" },
	{ S_POLICY, "spf", K_ENUM, P(spf), 0, 0, w_spf, "off" },
	{ S_POLICY, "trusted_authserv_id", K_STR, P(trusted_authserv_id), 0,
	  255, NULL, "" },

	{ S_USER, "password", K_HASH, U(password), 0, 0, NULL, NULL },
	{ S_USER, "addresses", K_ADDRS, 0, 0, 0, NULL, NULL },
	{ S_USER, "known_senders", K_SENDERS, 0, 0, 0, NULL, NULL },
	{ S_USER, "calendar", K_NAME, U(calendar), 0, 0, NULL, "default" },
	{ S_USER, "cancel", K_ENUM, U(cancel), 0, 0, w_cancel, NULL },
	{ S_USER, "admin", K_BOOL, U(admin), 0, 0, NULL, "no" },
	{ S_USER, "imap", K_IMAPURL, 0, 0, 0, NULL, NULL },
	{ S_USER, "imap_password_file", K_SECRETFILE, 0, 0, 0, NULL, NULL },
	{ S_USER, "imap_password", K_STR, U(imap_secret), 1,
	  CONF_MAX_SECRET, NULL, NULL },
	{ S_USER, "imap_tls", K_ENUM, U(imap_tls), 0, 0, w_tls, "required" },
	{ S_USER, "imap_tls_verify", K_BOOL, U(imap_tls_verify), 0, 0, NULL,
	  "yes" },
	{ S_USER, "imap_ca_file", K_PATH, U(imap_ca_file), 0, 0, NULL, NULL },
	{ S_USER, "imap_flag", K_STR, U(imap_flag), 1, 64, NULL, NULL },
	{ S_USER, "poll_interval", K_INT, U(poll_interval), 1, 86400, NULL,
	  "60" },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* A per-user policy.X line, applied after the whole file is read. */
struct override {
	size_t user;
	const struct key *k;
	char *value;
	int line;
};

struct arena_blk { struct arena_blk *next; };

struct loader {
	struct config *cfg;
	FILE *errs;
	FILE *in;
	const char *file;
	char *dir;			/* config file's directory */
	int line;
	int nerr;
	char section[256];		/* current section, as written */
	enum ksect sect;
	long cur_user;			/* index into cfg->users, or -1 */
	int bad_section;
	int new_section;		/* reader saw a [section] line */
	int section_line;
	unsigned char seen[NKEYS];	/* duplicates within one section */
	struct override *ovr;
	size_t novr;
	unsigned char *user_extra_ok;	/* per user: password seen */
};

/* ---- arena ---- */

static void *
arena_alloc(struct config *c, size_t n)
{
	struct arena_blk *b = calloc(1, sizeof *b + n + 1);

	if (b == NULL)
		fatal("out of memory");
	b->next = c->arena;
	c->arena = b;
	return b + 1;
}

static char *
arena_strndup(struct config *c, const char *s, size_t n)
{
	char *p = arena_alloc(c, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *
arena_strdup(struct config *c, const char *s)
{
	return arena_strndup(c, s, strlen(s));
}

/* ---- errors ---- */

static void __attribute__((format(printf, 2, 3)))
conf_err(struct loader *L, const char *fmt, ...)
{
	va_list ap;

	L->nerr++;
	if (L->nerr > CONF_MAX_ERRORS)
		return;
	fprintf(L->errs, "%s:%d: ", L->file, L->line);
	va_start(ap, fmt);
	vfprintf(L->errs, fmt, ap);
	va_end(ap);
	fputc('\n', L->errs);
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			cur[j] = d;
		}
		memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
	}
	return prev[lb];
}

static void
unknown_key(struct loader *L, const char *name)
{
	char best[128] = "", cand[128];
	size_t bestd = 3;

	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		size_t d;

		if (k->sect == L->sect)
			snprintf(cand, sizeof cand, "%s", k->name);
		else if (L->sect == S_USER && k->sect == S_POLICY)
			snprintf(cand, sizeof cand, "policy.%s", k->name);
		else
			continue;
		d = edit_distance(name, cand);
		if (d < bestd) {
			bestd = d;
			snprintf(best, sizeof best, "%s", cand);
		}
	}
	if (best[0])
		conf_err(L, "unknown key \"%s\" (did you mean \"%s\"?)", name,
		    best);
	else
		conf_err(L, "unknown key \"%s\" in [%s]", name, L->section);
}

/* ---- value parsers: each returns 0, or -1 after conf_err() ---- */

static char *
lower_dup(struct config *c, const char *s, size_t n)
{
	char *p = arena_strndup(c, s, n);

	for (char *q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

static int
parse_bool(struct loader *L, const char *key, const char *v, int *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcmp(v, "1") || !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcmp(v, "0") || !strcasecmp(v, "off"))
		*out = 0;
	else {
		conf_err(L, "%s: \"%s\" is not yes or no", key, v);
		return -1;
	}
	return 0;
}

static int
parse_long(struct loader *L, const struct key *k, const char *v, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end != '\0') {
		conf_err(L, "%s: \"%s\" is not a number", k->name, v);
		return -1;
	}
	if (n < k->min || n > k->max) {
		conf_err(L, "%s: %ld is out of range (%ld to %ld)", k->name,
		    n, k->min, k->max);
		return -1;
	}
	*out = n;
	return 0;
}

static int
parse_size(struct loader *L, const struct key *k, const char *v, size_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *v == '-') {
		conf_err(L, "%s: \"%s\" is not a size", k->name, v);
		return -1;
	}
	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	}
	if (*end != '\0') {
		conf_err(L, "%s: \"%s\" is not a size (bytes, or with k, M, "
		    "G)", k->name, v);
		return -1;
	}
	if (n < (unsigned long long)k->min || n > (unsigned long long)k->max) {
		conf_err(L, "%s: %s is out of range (%ld to %ld bytes)",
		    k->name, v, k->min, k->max);
		return -1;
	}
	*out = (size_t)n;
	return 0;
}

/* Splits a comma-separated list into trimmed, non-empty items. */
static char **
split_list(struct loader *L, const char *v, size_t *n)
{
	size_t cap = 1;
	char **out;

	for (const char *p = v; *p; p++)
		cap += (*p == ',');
	out = arena_alloc(L->cfg, (cap + 1) * sizeof *out);
	*n = 0;
	while (*v) {
		const char *e = strchr(v, ',');
		const char *s = v, *t;

		if (e == NULL)
			e = v + strlen(v);
		t = e;
		while (s < t && isspace((unsigned char)*s))
			s++;
		while (t > s && isspace((unsigned char)t[-1]))
			t--;
		if (t > s)
			out[(*n)++] = lower_dup(L->cfg, s, (size_t)(t - s));
		v = *e ? e + 1 : e;
	}
	return out;
}

static int
valid_domain(const char *d)
{
	size_t len = strlen(d), lab = 0;

	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
		return 0;
	for (const char *p = d; *p; p++) {
		if (*p == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return strchr(d, '.') != NULL;
}

static int
valid_address(const char *a)
{
	const char *at = strrchr(a, '@');

	if (at == NULL || at == a || at - a > 64)
		return 0;
	for (const char *p = a; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' ||
		    *p == ',' || *p == '"')
			return 0;
	return valid_domain(at + 1);
}

static int
parse_addrs(struct loader *L, const struct key *k, const char *v,
    char ***out, size_t *n, int allow_domain)
{
	char **list = split_list(L, v, n);
	int bad = 0;

	for (size_t i = 0; i < *n; i++) {
		char *a = list[i];

		if (!strncmp(a, "mailto:", 7))
			list[i] = a = a + 7;
		if (allow_domain && a[0] == '@' ? valid_domain(a + 1)
		    : valid_address(a))
			continue;
		conf_err(L, "%s: \"%s\" is not a mail address%s", k->name, a,
		    allow_domain ? " or @domain" : "");
		bad = 1;
	}
	*out = list;
	return bad ? -1 : 0;
}

/* An IPv4 or IPv6 address literal? */
static int
is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* A whole decimal port number in [min, 65535]: 0, else -1. */
static int
parse_port(const char *s, long min, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || *end || end == s || n < min || n > 65535)
		return -1;
	*out = n;
	return 0;
}

static int
parse_listen(struct loader *L, const char *v)
{
	const char *colon;
	char host[256];
	size_t hl;
	long port;

	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		hl = (size_t)(rb - v - 1);
		if (hl >= sizeof host)
			goto bad;
		memcpy(host, v + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || (size_t)(colon - v) >= sizeof host)
			goto bad;
		hl = (size_t)(colon - v);
		memcpy(host, v, hl);
	}
	host[hl] = '\0';
	if (!is_ip(host)) {
		conf_err(L, "listen: \"%s\" is not an IP address", host);
		return -1;
	}
	if (parse_port(colon + 1, 0, &port)) {
		conf_err(L, "listen: \"%s\" is not a valid port", v);
		return -1;
	}
	L->cfg->listen_host = arena_strdup(L->cfg, host);
	L->cfg->listen_port = (int)port;
	return 0;
bad:
	conf_err(L, "listen: \"%s\" is not HOST:PORT", v);
	return -1;
}

static int
parse_dns(struct loader *L, const char *v)
{
	const char *at;
	char addr[64];
	long port = 53;

	L->cfg->dns_resolver = arena_strdup(L->cfg, v);
	if (!strcmp(v, "system")) {
		L->cfg->dns_addr = NULL;
		return 0;
	}
	at = strchr(v, '@');
	if ((at ? (size_t)(at - v) : strlen(v)) >= sizeof addr)
		goto bad;
	snprintf(addr, sizeof addr, "%.*s",
	    (int)(at ? (size_t)(at - v) : strlen(v)), v);
	if (!is_ip(addr))
		goto bad;
	if (at && parse_port(at + 1, 1, &port))
		goto bad;
	L->cfg->dns_addr = arena_strdup(L->cfg, addr);
	L->cfg->dns_port = (int)port;
	return 0;
bad:
	conf_err(L, "resolver: \"%s\" is not \"system\" or IP@PORT", v);
	return -1;
}

static int
parse_signers(struct loader *L, const char *v, struct gate_policy *p)
{
	size_t n;
	char **list = split_list(L, v, &n);
	int bad = 0;

	p->signers = 0;
	p->signer_domains = arena_alloc(L->cfg, (n + 1) * sizeof(char *));
	p->nsigner_domains = 0;
	if (n == 0) {
		conf_err(L, "dkim_signers: empty (use aligned, "
		    "google-workspace, any, or signer domains)");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i], "aligned"))
			p->signers |= GATE_SIGNER_ALIGNED;
		else if (!strcmp(list[i], "google-workspace"))
			p->signers |= GATE_SIGNER_GOOGLE;
		else if (!strcmp(list[i], "any"))
			p->signers |= GATE_SIGNER_ANY;
		else if (valid_domain(list[i]))
			p->signer_domains[p->nsigner_domains++] = list[i];
		else {
			conf_err(L, "dkim_signers: \"%s\" is not aligned, "
			    "google-workspace, any or a domain", list[i]);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static int
parse_domains(struct loader *L, const char *v, struct gate_policy *p)
{
	size_t n;
	char **list = split_list(L, v, &n);

	p->dkim_domains_any = 0;
	p->dkim_domains = list;
	p->ndkim_domains = n;
	if (n == 1 && !strcmp(list[0], "*")) {
		p->dkim_domains_any = 1;
		p->ndkim_domains = 0;
		return 0;
	}
	if (n == 0) {
		conf_err(L, "dkim_domains: empty (use * or a list of From "
		    "domains)");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!valid_domain(list[i])) {
			conf_err(L, "dkim_domains: \"%s\" is not a domain "
			    "(use * alone for every domain)", list[i]);
			return -1;
		}
	}
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into the arena; NULL on a bad escape or NUL. */
static char *
pct_decode(struct config *c, const char *s, size_t n)
{
	char *out = arena_alloc(c, n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;

			if (i + 2 >= n)
				return NULL;
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return NULL;
			*o++ = (char)(h * 16 + l);
			i += 2;
		} else
			*o++ = s[i];
	}
	*o = '\0';
	return out;
}

static int
parse_imapurl(struct loader *L, struct user_conf *u, const char *v)
{
	const char *rest, *slash, *at, *hp, *colon;
	size_t alen;

	if (!strncmp(v, "imaps://", 8)) {
		u->imap_ssl = 1;
		rest = v + 8;
		u->imap_port = 993;
	} else if (!strncmp(v, "imap://", 7)) {
		u->imap_ssl = 0;
		rest = v + 7;
		u->imap_port = 143;
	} else
		goto bad;
	slash = strchr(rest, '/');
	alen = slash ? (size_t)(slash - rest) : strlen(rest);
	at = memrchr(rest, '@', alen);
	if (at == NULL || at == rest)
		goto bad;
	u->imap_login = pct_decode(L->cfg, rest, (size_t)(at - rest));
	if (u->imap_login == NULL)
		goto bad;
	hp = at + 1;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(rest + alen - hp));

		if (rb == NULL)
			goto bad;
		u->imap_host = arena_strndup(L->cfg, hp + 1,
		    (size_t)(rb - hp - 1));
		colon = rb + 1 < rest + alen && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < rest + alen && colon == NULL)
			goto bad;
	} else {
		colon = memchr(hp, ':', (size_t)(rest + alen - hp));
		u->imap_host = arena_strndup(L->cfg, hp,
		    (size_t)((colon ? colon : rest + alen) - hp));
	}
	if (u->imap_host[0] == '\0')
		goto bad;
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);

		if (end != rest + alen || port < 1 || port > 65535)
			goto bad;
		u->imap_port = (int)port;
	}
	if (slash && slash[1]) {
		u->imap_mailbox = pct_decode(L->cfg, slash + 1,
		    strlen(slash + 1));
		if (u->imap_mailbox == NULL)
			goto bad;
	} else
		u->imap_mailbox = arena_strdup(L->cfg, "INBOX");
	u->imap = arena_strdup(L->cfg, v);
	return 0;
bad:
	conf_err(L, "imap: \"%s\" is not imaps://LOGIN@HOST[:PORT]/MAILBOX "
	    "(or imap://...)", v);
	return -1;
}

static char *
make_path(struct loader *L, const char *v)
{
	char *p;
	size_t n;

	if (v[0] == '/')
		return arena_strdup(L->cfg, v);
	while (v[0] == '.' && v[1] == '/')
		v += 2;
	n = strlen(L->dir) + strlen(v) + 2;
	p = arena_alloc(L->cfg, n);
	snprintf(p, n, "%s/%s", L->dir, v);
	return p;
}

/* Reads the secret: mode 0600 or stricter, one trailing newline dropped. */
static int
read_secret_file(struct loader *L, struct user_conf *u, const char *v)
{
	char *path = make_path(L, v), buf[CONF_MAX_SECRET + 2];
	struct stat st;
	FILE *f;
	size_t n;

	f = fopen(path, "r");
	if (f == NULL) {
		conf_err(L, "imap_password_file: cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		conf_err(L, "imap_password_file: %s is not a regular file",
		    path);
		fclose(f);
		return -1;
	}
	if (st.st_mode & 077) {
		conf_err(L, "imap_password_file: %s is readable by group or "
		    "others (mode %03o; chmod 600 it)", path,
		    (unsigned)(st.st_mode & 0777));
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n > CONF_MAX_SECRET) {
		conf_err(L, "imap_password_file: %s is too long", path);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n || strchr(buf, '\n')) {
		conf_err(L, "imap_password_file: %s must hold one line, the "
		    "password", path);
		explicit_bzero(buf, sizeof buf);
		return -1;
	}
	u->imap_password_file = path;
	u->imap_secret = arena_strdup(L->cfg, buf);
	explicit_bzero(buf, sizeof buf);
	return 0;
}

static int
parse_hash(struct loader *L, const char *v, char **out)
{
	int ok = crypt_checksalt(v);

	if (v[0] != '$' || ok == CRYPT_SALT_INVALID ||
	    ok == CRYPT_SALT_METHOD_DISABLED) {
		/* Do not echo the value: it may be a plain password. */
		conf_err(L, "password: not a crypt(3) hash (make one with "
		    "`calgate passwd`)");
		return -1;
	}
	*out = arena_strdup(L->cfg, v);
	return 0;
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    *s != '.')
			return 0;
	return 1;
}

/*
 * Parses v for key k into base (a struct config, gate_policy or
 * user_conf, as k->sect says). u is the user for user keys.
 */
static int
set_value(struct loader *L, const struct key *k, void *base,
    struct user_conf *u, const char *v)
{
	char *field = (char *)base + k->off;
	long n;

	switch (k->type) {
	case K_STR:
		if ((long)strlen(v) > k->max ||
		    (long)strlen(v) < k->min) {
			conf_err(L, "%s: must be %ld to %ld characters",
			    k->name, k->min, k->max);
			return -1;
		}
		*(char **)field = arena_strdup(L->cfg, v);
		return 0;
	case K_PATH:
		if (*v == '\0') {
			conf_err(L, "%s: empty path", k->name);
			return -1;
		}
		*(char **)field = make_path(L, v);
		return 0;
	case K_NAME:
		if (!valid_name(v)) {
			conf_err(L, "%s: \"%s\" is not a valid name (letters, "
			    "digits, - _ .)", k->name, v);
			return -1;
		}
		*(char **)field = arena_strdup(L->cfg, v);
		return 0;
	case K_INT:
		if (parse_long(L, k, v, &n))
			return -1;
		*(int *)field = (int)n;
		return 0;
	case K_SIZE:
		return parse_size(L, k, v, (size_t *)field);
	case K_BOOL:
		return parse_bool(L, k->name, v, (int *)field);
	case K_ENUM:
		for (int i = 0; k->words[i]; i++) {
			if (!strcasecmp(v, k->words[i])) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			char opts[256] = "";

			for (int i = 0; k->words[i]; i++)
				snprintf(opts + strlen(opts),
				    sizeof opts - strlen(opts), "%s%s",
				    i ? ", " : "", k->words[i]);
			conf_err(L, "%s: \"%s\" is not one of %s", k->name, v,
			    opts);
		}
		return -1;
	case K_LOGLEVEL:
		if (log_parse_level(v, (enum log_level *)field)) {
			conf_err(L, "%s: \"%s\" is not debug, info, warn or "
			    "error", k->name, v);
			return -1;
		}
		return 0;
	case K_LISTEN:
		return parse_listen(L, v);
	case K_DNS:
		return parse_dns(L, v);
	case K_HASH:
		return parse_hash(L, v, (char **)field);
	case K_ADDRS:
		return parse_addrs(L, k, v, &u->addresses, &u->naddresses, 0);
	case K_SENDERS:
		return parse_addrs(L, k, v, &u->known_senders,
		    &u->nknown_senders, 1);
	case K_SIGNERS:
		return parse_signers(L, v, base);
	case K_DOMAINS:
		return parse_domains(L, v, base);
	case K_IMAPURL:
		return parse_imapurl(L, u, v);
	case K_SECRETFILE:
		return read_secret_file(L, u, v);
	}
	return -1;
}

/* ---- sections ---- */

static void
apply_defaults(struct loader *L, enum ksect sect, void *base,
    struct user_conf *u)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == sect && keys[i].def != NULL)
			if (set_value(L, &keys[i], base, u, keys[i].def))
				fatal("bad built-in default for %s",
				    keys[i].name);
}

static void
start_section(struct loader *L, const char *section)
{
	struct config *c = L->cfg;

	snprintf(L->section, sizeof L->section, "%s", section);
	memset(L->seen, 0, sizeof L->seen);
	L->bad_section = 0;
	L->cur_user = -1;
	if (!strcmp(section, "server"))
		L->sect = S_SERVER;
	else if (!strcmp(section, "dns"))
		L->sect = S_DNS;
	else if (!strcmp(section, "policy"))
		L->sect = S_POLICY;
	else if (!strncmp(section, "user ", 5)) {
		const char *name = section + 5;
		struct user_conf *u;

		while (*name == ' ')
			name++;
		L->sect = S_USER;
		if (!valid_name(name)) {
			conf_err(L, "[user %s]: not a valid user name "
			    "(letters, digits, - _ .; at most 64)", name);
			L->bad_section = 1;
			return;
		}
		for (size_t i = 0; i < c->nusers; i++) {
			if (!strcmp(c->users[i].name, name)) {
				conf_err(L, "[user %s]: duplicate user (first "
				    "at line %d)", name, c->users[i].line);
				L->bad_section = 1;
				return;
			}
		}
		u = realloc(c->users, (c->nusers + 1) * sizeof *u);
		if (u == NULL)
			fatal("out of memory");
		c->users = u;
		u = &c->users[c->nusers];
		memset(u, 0, sizeof *u);
		u->name = arena_strdup(c, name);
		u->line = L->line;
		u->cancel = (enum conf_cancel)-1;
		L->cur_user = (long)c->nusers++;
		apply_defaults(L, S_USER, u, u);
	} else {
		conf_err(L, "unknown section [%s] (expected [server], [dns], "
		    "[policy] or [user NAME])", section);
		L->bad_section = 1;
	}
}

static const struct key *
find_key(enum ksect sect, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == sect && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *L = user;
	const struct key *k;
	void *base;
	struct user_conf *u = NULL;

	if (section[0] == '\0') {
		conf_err(L, "\"%s\" is outside any section", name);
		return 1;
	}
	if (L->new_section || strcmp(section, L->section) != 0) {
		int line = L->line;

		L->new_section = 0;
		L->line = L->section_line ? L->section_line : line;
		start_section(L, section);
		L->line = line;
	}
	if (L->bad_section)
		return 1;
	if (L->sect == S_USER)
		u = &L->cfg->users[L->cur_user];

	if (L->sect == S_USER && !strncmp(name, "policy.", 7)) {
		struct gate_policy scratch = L->cfg->policy;
		struct override *o;

		k = find_key(S_POLICY, name + 7);
		if (k == NULL) {
			unknown_key(L, name);
			return 1;
		}
		if (L->seen[k - keys]++) {
			conf_err(L, "%s: set twice in [%s]", name, L->section);
			return 1;
		}
		if (set_value(L, k, &scratch, u, value))
			return 1;
		o = realloc(L->ovr, (L->novr + 1) * sizeof *o);
		if (o == NULL)
			fatal("out of memory");
		L->ovr = o;
		o[L->novr++] = (struct override){ (size_t)L->cur_user, k,
		    arena_strdup(L->cfg, value), L->line };
		return 1;
	}
	k = find_key(L->sect, name);
	if (k == NULL) {
		unknown_key(L, name);
		return 1;
	}
	if (L->seen[k - keys]++) {
		conf_err(L, "%s: set twice in [%s]", name, L->section);
		return 1;
	}
	base = L->sect == S_POLICY ? (void *)&L->cfg->policy
	    : L->sect == S_USER ? (void *)u : (void *)L->cfg;
	set_value(L, k, base, u, value);
	return 1;
}

/* inih reader that counts lines, so every error can name its line. */
static char *
reader(char *buf, int n, void *stream)
{
	struct loader *L = stream;
	char *r = fgets(buf, n, L->in);

	if (r != NULL) {
		size_t len = strlen(buf);
		const char *p = buf;

		L->line++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			/* Even a repeated name starts a new section. */
			L->new_section = 1;
			L->section_line = L->line;
		}
		if (len == (size_t)n - 1 && buf[len - 1] != '\n' &&
		    !feof(L->in)) {
			int ch;

			/* Swallow the rest; report the line as too long. */
			while ((ch = fgetc(L->in)) != EOF && ch != '\n')
				;
			conf_err(L, "line longer than %d bytes", n - 2);
			buf[0] = '\0';
		}
	}
	return r;
}

/* The effective policy of every user: [policy], then their policy.* lines. */
static void
apply_overrides(struct loader *L)
{
	struct config *c = L->cfg;

	for (size_t i = 0; i < c->nusers; i++) {
		c->users[i].policy = c->policy;
		if ((int)c->users[i].cancel == -1)
			c->users[i].cancel = c->cancel;
	}
	for (size_t i = 0; i < L->novr; i++) {
		struct override *o = &L->ovr[i];
		struct user_conf *u = &c->users[o->user];

		L->line = o->line;
		set_value(L, o->k, &u->policy, u, o->value);
	}
}

static int
is_loopback(const char *host)
{
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) ||
	    !strcmp(host, "::1");
}

static void
check_whole(struct loader *L)
{
	struct config *c = L->cfg;

	L->line = 0;
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		conf_err(L, "tls_cert and tls_key: set both or neither");
	if (c->policy.spf == GATE_SPF_AUTHRES &&
	    c->policy.trusted_authserv_id[0] == '\0')
		conf_err(L, "spf = authentication-results needs "
		    "trusted_authserv_id");
	for (size_t i = 0; i < c->nusers; i++) {
		struct user_conf *u = &c->users[i];

		L->line = u->line;
		if (u->password == NULL)
			conf_err(L, "[user %s]: password is missing (make one "
			    "with `calgate passwd`)", u->name);
		if (u->policy.spf == GATE_SPF_AUTHRES &&
		    u->policy.trusted_authserv_id[0] == '\0')
			conf_err(L, "[user %s]: spf = authentication-results "
			    "needs trusted_authserv_id", u->name);
		if (u->imap == NULL) {
			if (u->imap_password_file || u->imap_secret)
				conf_err(L, "[user %s]: an IMAP password is set "
				    "but imap is not", u->name);
			continue;
		}
		if (u->imap_secret == NULL)
			conf_err(L, "[user %s]: imap needs imap_password_file",
			    u->name);
		if (u->imap_tls == CONF_TLS_NONE && u->imap_ssl)
			conf_err(L, "[user %s]: imap_tls = none with imaps://",
			    u->name);
		if (u->imap_tls == CONF_TLS_NONE && !is_loopback(u->imap_host))
			conf_err(L, "[user %s]: imap_tls = none is only allowed "
			    "for a server on loopback, not %s", u->name,
			    u->imap_host);
	}
}

int
config_load(const char *path, struct config **out, FILE *errs)
{
	struct loader L;
	struct config *c;
	const char *slash;
	int rc;

	*out = NULL;
	memset(&L, 0, sizeof L);
	c = calloc(1, sizeof *c);
	if (c == NULL)
		fatal("out of memory");
	L.cfg = c;
	L.errs = errs;
	L.file = path;
	L.cur_user = -1;
	c->path = arena_strdup(c, path);
	slash = strrchr(path, '/');
	L.dir = slash ? arena_strndup(c, path, (size_t)(slash - path))
	    : arena_strdup(c, ".");
	if (slash == path)
		L.dir = arena_strdup(c, "/");
	apply_defaults(&L, S_SERVER, c, NULL);
	apply_defaults(&L, S_DNS, c, NULL);
	apply_defaults(&L, S_POLICY, &c->policy, NULL);

	L.in = fopen(path, "r");
	if (L.in == NULL) {
		fprintf(errs, "%s: cannot read: %s\n", path, strerror(errno));
		config_free(c);
		return -1;
	}
	ini_allow_multiline = false;
	ini_max_line = CONF_MAX_LINE;
	rc = ini_parse_stream(reader, &L, handler, &L);
	fclose(L.in);
	if (rc > 0) {
		L.line = rc;
		conf_err(&L, "syntax error (expected [section] or key = "
		    "value)");
	} else if (rc < 0) {
		conf_err(&L, "cannot parse (out of memory)");
	}
	apply_overrides(&L);
	check_whole(&L);
	free(L.ovr);
	if (L.nerr > 0) {
		/* Also the reload's message, shown while the old file
		 * stays in force: say what happens to this file only. */
		fprintf(errs, "calgate: %d error%s in %s, the whole file "
		    "is refused\n",
		    L.nerr, L.nerr == 1 ? "" : "s", path);
		config_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void
config_free(struct config *c)
{
	struct arena_blk *b, *next;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nusers; i++)
		if (c->users[i].imap_secret)
			explicit_bzero(c->users[i].imap_secret,
			    strlen(c->users[i].imap_secret));
	for (b = c->arena; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(c->users);
	free(c);
}

const struct user_conf *
config_user(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nusers; i++)
		if (!strcmp(c->users[i].name, name))
			return &c->users[i];
	return NULL;
}

static int
describe_policy(const struct gate_policy *p, const char *who, FILE *f)
{
	char signers[512] = "", domains[512] = "";

	if (p->require == GATE_REQUIRE_NONE) {
		fprintf(f, "relaxation: %s: policy.require = none accepts "
		    "invitations with no sender authentication at all "
		    "(anyone can forge the From address: calendar spam "
		    "risk)\n", who);
		return 1;
	}
	if (p->require != GATE_REQUIRE_DKIM)
		return 0;
	if (p->signers & GATE_SIGNER_ALIGNED)
		strcat(signers, ", a signature aligned with the From domain");
	if (p->signers & GATE_SIGNER_GOOGLE)
		strcat(signers, ", the Google Workspace pair (d=google.com "
		    "and the tenant's gappssmtp.com domain)");
	if (p->signers & GATE_SIGNER_ANY)
		strcat(signers, ", ANY valid signature (proves only that "
		    "the mail was not altered, not who sent it)");
	for (size_t i = 0; i < p->nsigner_domains; i++)
		snprintf(signers + strlen(signers),
		    sizeof signers - strlen(signers), ", d=%s",
		    p->signer_domains[i]);
	if (p->dkim_domains_any)
		snprintf(domains, sizeof domains, "any From domain");
	else
		for (size_t i = 0; i < p->ndkim_domains; i++)
			snprintf(domains + strlen(domains),
			    sizeof domains - strlen(domains), "%s%s",
			    i ? ", " : "From domains ", p->dkim_domains[i]);
	fprintf(f, "relaxation: %s: policy.require = dkim accepts mail "
	    "from %s that publishes no DMARC record when it carries%s\n",
	    who, domains, signers[0] ? signers + 1 : " (no signer)");
	return 1;
}

int
config_describe_relaxations(const struct config *c, FILE *f)
{
	int n = describe_policy(&c->policy, "[policy]", f);
	char who[128];

	for (size_t i = 0; i < c->nusers; i++) {
		const struct gate_policy *u = &c->users[i].policy;

		if (!memcmp(u, &c->policy, sizeof *u))
			continue;
		snprintf(who, sizeof who, "[user %s]", c->users[i].name);
		n += describe_policy(u, who, f);
	}
	return n;
}
