/*
 * tests/unit/test_poller.c: the poller's pure parts (Message-ID parsing)
 * and its store functions (accounts, imip_log: dedup lookup, tagging,
 * deferred retries). The IMAP side is tested against a real Dovecot in
 * tests/integration/test_imap_poller.sh.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imap-poller/poller.h"
#include "server/store.h"
#include "tests/unit/check.h"

static const struct {
	const char *raw, *want;
} msgids[] = {
	{ "Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody", "<a@b>" },
	{ "Subject: x\nmessage-id:   <a@b>  \n\nbody", "<a@b>" },
	{ "MESSAGE-ID:\r\n <folded@x>\r\n\r\n", "<folded@x>" },
	{ "Message-ID: <a\r\n\t@b>\r\n\r\n", "<a @b>" },
	{ "Subject: no id\r\n\r\nMessage-ID: <in-body@x>\r\n", NULL },
	{ "Message-ID:\r\n\r\n", NULL },
	{ "Message-ID: <last@x>", "<last@x>" },
	{ "X-Message-ID: <not@x>\r\n\r\n", NULL },
	{ "", NULL },
};

static void
test_message_id(void)
{
	char big[3000];
	char *id;

	for (size_t i = 0; i < sizeof msgids / sizeof msgids[0]; i++) {
		id = poller_message_id(msgids[i].raw, strlen(msgids[i].raw));
		check(msgids[i].want ? id && !strcmp(id, msgids[i].want) :
		    id == NULL, "message id case %zu: got %s", i,
		    id ? id : "(null)");
		free(id);
	}
	/* An absurd header is cut, never overflows. */
	memcpy(big, "Message-ID: <", 13);
	memset(big + 13, 'x', sizeof big - 13);
	id = poller_message_id(big, sizeof big);
	check(id && strlen(id) == 998, "long message id is bounded");
	free(id);
	/* Not NUL-terminated input: only len bytes are read. */
	id = poller_message_id("Message-ID: <a@b>XXXX", 17);
	check(id && !strcmp(id, "<a@b>"), "respects len");
	free(id);
}

static void
test_store(void)
{
	char dir[] = "/tmp/calgate-test-poller.XXXXXX", err[256];
	struct store_imip_due due[4];
	struct store_account acc;
	struct store *st;
	int64_t uid_a, uid_b, id1, id2, before, when;
	size_t n;
	int tagged;

	check(mkdtemp(dir) != NULL, "mkdtemp");
	st = store_open(dir, err, sizeof err);
	check(st != NULL, "store_open: %s", err);
	if (st == NULL)
		return;
	check(store_user_ensure(st, "alice", &uid_a) == 0, "user alice");
	check(store_user_ensure(st, "bob", &uid_b) == 0, "user bob");

	check(store_account_get(st, uid_a, &acc) == STORE_NOTFOUND,
	    "no account row yet");
	check(store_account_state(st, uid_a, "connecting", NULL, 0, 0) == 0,
	    "state connecting");
	check(store_account_reset(st, uid_a, 77) == 0, "reset");
	check(store_account_progress(st, uid_a, 77, 5) == 0, "progress 5");
	check(store_account_progress(st, uid_a, 77, 3) == 0, "progress 3");
	check(store_account_progress(st, uid_a, 78, 9) == STORE_CONFLICT,
	    "progress with another uidvalidity refused");
	check(store_account_state(st, uid_a, "backoff", "refused", 1234, 1)
	    == 0, "state backoff");
	check(store_account_get(st, uid_a, &acc) == 0 &&
	    acc.uidvalidity == 77 && acc.last_uid == 5 &&
	    !strcmp(acc.state, "backoff") && !strcmp(acc.detail, "refused") &&
	    acc.next_try == 1234 && acc.last_ok > 0, "account row");
	store_account_clear(&acc);
	check(store_account_reset(st, uid_a, 78) == 0 &&
	    store_account_get(st, uid_a, &acc) == 0 && acc.last_uid == 0 &&
	    acc.uidvalidity == 78, "reset on a new UIDVALIDITY");
	store_account_clear(&acc);

	/* A hook's row, then the poller's tag in the same transaction. */
	check(store_begin(st) == 0, "begin");
	check(store_imip_last_id(st, &before) == 0 && before == 0, "last id");
	{
		struct store_imip e = {
			.user_id = uid_a, .decision = "accept",
			.reason = "dmarc-pass",
		};
		check(store_imip_insert(st, &e, &id1) == 0, "add");
	}
	check(store_imip_tag(st, uid_a, before, "<m1@x>", "h1", 78, 4,
	    &tagged) == 0 && tagged == 1, "tag");
	check(store_commit(st) == 0, "commit");
	check(store_imip_seen(st, uid_a, "<m1@x>", "h1") == 0, "seen");
	check(store_imip_seen(st, uid_a, "<m1@x>", "h2") == STORE_NOTFOUND,
	    "another calendar part is new");
	check(store_imip_seen(st, uid_b, "<m1@x>", "h1") == STORE_NOTFOUND,
	    "another user's message is not alice's");
	check(store_imip_seen(st, uid_a, NULL, "h1") == STORE_NOTFOUND,
	    "no Message-ID differs from one");

	/* Without a Message-ID, the hash alone identifies it. */
	{
		struct store_imip e = {
			.user_id = uid_a, .decision = "defer",
			.reason = "dns-temperror", .raw = "RAW", .raw_len = 3,
			.next_retry = (int64_t)time(NULL) - 1,
		};
		check(store_imip_last_id(st, &before) == 0 && before == id1,
		    "last id moves");
		check(store_imip_insert(st, &e, &id2) == 0, "add defer");
		check(store_imip_tag(st, uid_a, before, NULL, "h3", 78, 6,
		    &tagged) == 0 && tagged == 1, "tag defer");
		check(store_imip_seen(st, uid_a, NULL, "h3") == 0,
		    "seen without Message-ID");
	}
	check(store_imip_next_retry(st, uid_a, &when) == 0 &&
	    when < (int64_t)time(NULL), "next retry");
	check(store_imip_next_retry(st, uid_b, &when) == STORE_NOTFOUND,
	    "bob has nothing deferred");
	check(store_imip_due(st, uid_a, (int64_t)time(NULL), due, 4, &n) == 0
	    && n == 1 && due[0].id == id2 && due[0].len == 3 &&
	    !memcmp(due[0].raw, "RAW", 4) && due[0].imap_uid == 6 &&
	    due[0].uidvalidity == 78, "due row");
	for (size_t i = 0; i < n; i++)
		store_imip_due_clear(&due[i]);
	{
		struct store_imip e = {
			.id = id2, .user_id = uid_a, .decision = "accept",
			.reason = "dmarc-pass",
		};

		struct store_imip_raw r;

		check(store_imip_update(st, &e) == 0, "retry update");
		check(store_imip_raw(st, id2, &r) == 0 && r.raw == NULL,
		    "an accepted row keeps no raw message");
		store_imip_raw_clear(&r);
	}
	check(store_imip_due(st, uid_a, (int64_t)time(NULL), due, 4, &n) == 0
	    && n == 0, "nothing due after the retry");
	check(store_imip_next_retry(st, uid_a, &when) == STORE_NOTFOUND,
	    "nothing deferred");
	{
		struct store_imip e = {
			.id = 999, .user_id = uid_a, .decision = "accept",
			.reason = "x",
		};

		check(store_imip_update(st, &e) == STORE_NOTFOUND,
		    "retry update of a missing row");
	}

	/* A rolled-back hook leaves nothing behind. */
	check(store_begin(st) == 0, "begin 2");
	{
		struct store_imip e = {
			.user_id = uid_a, .decision = "accept", .reason = "x",
		};
		check(store_imip_insert(st, &e, NULL) == 0, "add 3");
	}
	store_rollback(st);
	check(store_imip_last_id(st, &before) == 0 && before == id2,
	    "rollback removed the row");

	store_close(st);
	{
		char path[300];

		snprintf(path, sizeof path, "%s/calgate.db", dir);
		unlink(path);
		snprintf(path, sizeof path, "%s/calgate.db-wal", dir);
		unlink(path);
		snprintf(path, sizeof path, "%s/calgate.db-shm", dir);
		unlink(path);
		rmdir(dir);
	}
}

int
main(void)
{
	test_message_id();
	test_store();
	return check_done();
}
