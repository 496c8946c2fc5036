/*
 * tests/unit/test_store_webdav.c: the store functions webdav/ added:
 * collection MOVE and COPY (deep and shallow), dead property copies, UID
 * lookup and the dead-property shortcut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/store.h"
#include "tests/unit/check.h"

static int
exists(struct store *st, int64_t uid, const char *path, int64_t *id)
{
	struct store_collection c;
	int rc = store_collection_get(st, uid, path, &c);

	if (id)
		*id = c.id;
	store_collection_clear(&c);
	return rc == 0;
}

static int
count_obj(void *arg, const struct store_object *o)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static int
objects(struct store *st, int64_t coll)
{
	int n = 0;

	store_object_list(st, coll, 0, INT64_MIN, INT64_MAX, count_obj, &n);
	return n;
}

int
main(void)
{
	char dir[] = "/tmp/calgate-unit.XXXXXX", err[256], cmd[300];
	struct store_object_meta meta = { .uid = "u1", .component = "VEVENT",
	    .start = 0, .end = 10 };
	struct store *st;
	int64_t user, a_b, x_b, y_b, z, id;
	char *name = NULL;
	int any = -1;

	if (mkdtemp(dir) == NULL)
		return 1;
	st = store_open(dir, err, sizeof err);
	check(st != NULL, "store opens: %s", err);
	if (st == NULL)
		return check_done();
	store_user_ensure(st, "u", &user);
	check(store_collection_create(st, user, "a", 0, NULL, NULL) == 0 &&
	    store_collection_create(st, user, "a/b", 1, "VEVENT", &a_b) == 0 &&
	    store_collection_create(st, user, "a/b/c", 0, NULL, NULL) == 0,
	    "tree a/b/c created");
	check(store_object_put(st, a_b, "e.ics", "DATA", 4, "text/calendar",
	    &meta, NULL) == 0, "object put");
	check(store_prop_any(st, a_b, &any) == 0 && any == 0, "no dead props");
	check(store_prop_set(st, a_b, "e.ics", "urn:x", "p", "<p/>") == 0,
	    "dead prop set");
	check(store_prop_any(st, a_b, &any) == 0 && any == 1,
	    "dead props seen");
	check(store_object_uid_name(st, a_b, "u1", &name) == 0 && name &&
	    !strcmp(name, "e.ics"), "uid lookup");
	free(name);
	check(store_object_uid_name(st, a_b, "nope", &name) == STORE_NOTFOUND,
	    "unknown uid");

	check(store_collection_move(st, user, "a", "x") == 0, "move a -> x");
	check(!exists(st, user, "a", NULL) && !exists(st, user, "a/b", NULL),
	    "a is gone");
	check(exists(st, user, "x/b", &x_b) && exists(st, user, "x/b/c", NULL),
	    "x/b and x/b/c exist");
	check(x_b == a_b && objects(st, x_b) == 1, "objects moved along");
	check(store_collection_move(st, user, "x/b", "nope/b") ==
	    STORE_NOTFOUND, "move under a missing parent");
	check(store_collection_create(st, user, "y", 0, NULL, NULL) == 0 &&
	    store_collection_move(st, user, "x", "y") == STORE_CONFLICT,
	    "move onto an existing collection");
	store_collection_delete(st, user, "y");

	check(store_collection_copy(st, user, "x", "y", 1) == 0, "deep copy");
	check(exists(st, user, "y/b", &y_b) && exists(st, user, "y/b/c",
	    NULL) && y_b != x_b && objects(st, y_b) == 1,
	    "deep copy has the tree and the object");
	check(store_prop_any(st, y_b, &any) == 0 && any == 1,
	    "deep copy has the dead props");
	check(store_collection_copy(st, user, "x/b", "z", 0) == 0 &&
	    exists(st, user, "z", &z) && !exists(st, user, "z/c", NULL) &&
	    objects(st, z) == 1, "shallow copy: members, no sub-collections");
	check(store_collection_copy(st, user, "x", "x/b/c/d", 1) ==
	    STORE_CONFLICT, "copy into itself refused");
	check(exists(st, user, "x/b", &id) && objects(st, id) == 1,
	    "source intact");
	check(store_prop_copy(st, x_b, "e.ics", z, "f.ics") == 0,
	    "prop copy");
	store_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_done();
}
