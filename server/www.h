/*
 * server/www.h: the status page's static files (www/) and its JSON API.
 * Every route here runs for an authenticated user.
 */
#ifndef CALGATE_WWW_H
#define CALGATE_WWW_H

#include "server/http.h"

void www_handle(struct http_request *, struct http_response *);

#endif
