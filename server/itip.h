/*
 * server/itip.h: the iTIP merge engine (RFC 5546, RFC 6638 section 3).
 * Applies one accepted iTIP message to one user's calendars in the store:
 * REQUEST, CANCEL, REPLY, ADD, PUBLISH, COUNTER, DECLINECOUNTER, REFRESH.
 * The inbound gate (policy/) has already decided that the sender may
 * speak for the message; this module does the checks that need the
 * user's stored calendars (DESIGN.md gate steps 7 and 8).
 */
#ifndef CALGATE_ITIP_H
#define CALGATE_ITIP_H

#include <stddef.h>
#include <stdint.h>

#include "server/config.h"
#include "server/store.h"

#define ITIP_MAX_COMPONENTS	1000	/* VEVENTs (master + overrides) */
#define ITIP_MAX_DEPTH		6	/* BEGIN: nesting, VCALENDAR = 1 */

enum itip_outcome { ITIP_APPLIED, ITIP_NOOP, ITIP_REFUSED };

/*
 * Reason codes, by outcome:
 *   applied: created, updated, cancelled, cancelled-instance, deleted,
 *            reply-applied, proposal-pending (COUNTER/DECLINECOUNTER kept;
 *            the calendar itself is unchanged)
 *   noop:    duplicate, unchanged, stale-sequence, stale-dtstamp,
 *            stale-reply, unknown-uid (CANCEL), unknown-instance,
 *            refresh-unsupported, no-attendee (REPLY without ATTENDEE)
 *   refused: organizer-changed, unknown-organizer, not-organizer,
 *            no-organizer, attendee-unknown (recorded as a proposal with
 *            state "unknown-attendee"), unknown-uid, component-mismatch,
 *            calendar-missing, and for bad input: ical-invalid, no-uid,
 *            several-uids, no-method, method-unsupported, no-component,
 *            unsupported-component, too-many-overrides, too-deep,
 *            too-large
 */
struct itip_result {
	enum itip_outcome outcome;
	char reason[64];	/* short code, see above */
	char detail[256];	/* one human sentence */
	char method[16];
	char uid[256];
	int64_t collection_id;	/* where it landed (0 if none) */
	char href_name[256];	/* object name in the collection */
};

/*
 * Applies one iTIP message (the iCalendar text of the iMIP part, with
 * METHOD) for user u; from is the From address (lower case, no mailto:).
 * With dry_run it decides exactly as a real run would but writes nothing.
 * Runs in one store transaction (nested inside the caller's, if any).
 * Returns 0 with *res filled whatever the outcome, -1 on a store error
 * (nothing written; an enclosing transaction will roll back).
 */
int itip_apply(struct store *, const struct user_conf *u, const char *from,
    const char *ical, size_t len, int dry_run, struct itip_result *res);

/* "applied", "noop", "refused". */
const char *itip_outcome_name(enum itip_outcome);

#endif
