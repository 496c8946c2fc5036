/*
 * server/www.c: serves the status page's files from www/ (next to the
 * binary) with a strict Content-Security-Policy. The JSON API behind the
 * page (server/api.c) is routed from here too.
 */
#include "server/www.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/api.h"

#define WWW_MAX_FILE	(1u << 20)

static char www_dir[PATH_MAX + 16];
static pthread_once_t www_once = PTHREAD_ONCE_INIT;

/* www/ beside the executable: works from the build tree and installed. */
static void
www_find(void)
{
	char exe[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;

	if (n <= 0) {
		snprintf(www_dir, sizeof www_dir, "www");
		return;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(www_dir, sizeof www_dir, "%s/www", exe);
	if (access(www_dir, R_OK) != 0 && slash) {
		/* build-san/calgate: the sources are one level up */
		snprintf(www_dir, sizeof www_dir, "%s/../www", exe);
	}
}

static const struct {
	const char *ext, *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
};

static void
serve_file(struct http_response *resp, const char *name)
{
	char path[PATH_MAX + 300];
	const char *type = NULL, *dot = strrchr(name, '.');
	struct stat st;
	char *buf;
	int fd;

	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(dot, types[i].ext))
			type = types[i].type;
	/* Only plain names inside www/: no slashes, no dot files. */
	if (type == NULL || strchr(name, '/') || name[0] == '.' ||
	    strlen(name) > 200) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	pthread_once(&www_once, www_find);
	snprintf(path, sizeof path, "%s/%s", www_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > WWW_MAX_FILE) {
		if (fd >= 0)
			close(fd);
		http_respond_text(resp, 404, "not found");
		return;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		close(fd);
		free(buf);
		http_respond_text(resp, 500, "cannot read the page");
		return;
	}
	close(fd);
	http_respond(resp, 200, type, buf, (size_t)st.st_size);
	http_add_header(resp, "Content-Security-Policy",
	    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
	    "; form-action 'self'; base-uri 'none'");
	http_add_header(resp, "X-Content-Type-Options", "nosniff");
	http_add_header(resp, "Referrer-Policy", "same-origin");
	http_add_header(resp, "Cache-Control", "no-cache");
}

void
www_handle(struct http_request *req, struct http_response *resp)
{
	const char *p = req->path;

	if (api_owns(p)) {
		api_handle(req, resp);
		return;
	}
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		http_respond_text(resp, 405, "method not allowed");
		http_add_header(resp, "Allow", "GET, HEAD");
		return;
	}
	if (!strcmp(p, "/") || !strcmp(p, "/status"))
		serve_file(resp, "index.html");
	else if (!strncmp(p, "/www/", 5))
		serve_file(resp, p + 5);
	else
		http_respond_text(resp, 404, "not found");
}
