/*
 * server/api.h: the status page's JSON API and /metrics.
 *
 *   GET  /api/status                       accounts, counts, chart, token
 *   GET  /api/invitations?decision=&before=&limit=
 *   POST /api/invitations/<id>/recheck     skip/defer rows only
 *   POST /api/reload                       admin only
 *   GET  /metrics                          admin only, Prometheus text
 *
 * A user sees their own rows; an admin sees everyone's. POSTs need a
 * same-origin Origin (or Referer) and the X-CSRF-Token from /api/status.
 */
#ifndef CALGATE_API_H
#define CALGATE_API_H

#include "server/http.h"

/* 1 if path is one of the API's (then use api_handle), else 0. */
int api_owns(const char *path);
/* Answers one authenticated request for an API path. */
void api_handle(struct http_request *, struct http_response *);

#endif
