/*
 * webdav/dav.h: WebDAV and CalDAV (RFC 4918, 4791, 6578, 6764, 5397) for
 * one authenticated request under /dav/ or /.well-known/caldav.
 */
#ifndef CALGATE_DAV_H
#define CALGATE_DAV_H

#include "server/http.h"

void dav_handle(struct http_request *, struct http_response *);

#endif
