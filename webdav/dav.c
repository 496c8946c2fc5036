/*
 * webdav/dav.c: method dispatch for the DAV tree.
 */
#include "webdav/dav.h"

#include <string.h>

void
dav_handle(struct http_request *req, struct http_response *resp)
{
	if (!strcmp(req->method, "OPTIONS")) {
		http_respond(resp, 200, NULL, NULL, 0);
		http_add_header(resp, "DAV", "1, 3, calendar-access");
		http_add_header(resp, "Allow", "OPTIONS");
		return;
	}
	http_respond_text(resp, 501, "%s is not implemented yet",
	    req->method);
}
