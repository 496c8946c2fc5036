/*
 * www/status.js: the status page. Reads /api/status and /api/invitations,
 * draws the accounts, the 30-day chart (inline SVG) and the invitation
 * list, and posts "Check again" and "Reload configuration".
 *
 * Everything that came from a mail or the server is set with textContent
 * or as an SVG attribute, never parsed as HTML: a subject line such as
 * <img src=x onerror=...> shows as text. No inline scripts or styles, so
 * the page works under Content-Security-Policy: default-src 'self'.
 */
'use strict';

(function () {
  /* A gate or merge reason code, explained in plain words. */
  const REASONS = {
    'dmarc-pass': 'The sender passed DMARC: the mail really comes from its domain.',
    'dmarc-none': 'This sender\'s domain publishes no DMARC record, so calgate cannot prove that the mail really comes from it.',
    'dmarc-fail': 'The sender\'s domain publishes a DMARC record and this mail failed it: it may be forged.',
    'dmarc-temperror': 'The sender\'s DMARC record could not be looked up (a temporary DNS problem).',
    'dmarc-permerror': 'The sender\'s DMARC record is broken, so it cannot be checked.',
    'dkim-relaxed': 'The sender\'s domain has no DMARC record, but the mail carries a valid DKIM signature from a signer you trust.',
    'dkim-none': 'The sender\'s domain has no DMARC record and the mail has no DKIM signature.',
    'dkim-fail': 'The sender\'s domain has no DMARC record and none of the mail\'s DKIM signatures is valid.',
    'dkim-signer': 'The sender\'s domain has no DMARC record; the mail is DKIM-signed, but not by a signer your policy trusts.',
    'dkim-unaligned': 'The mail is DKIM-signed, but not by the sender\'s own domain.',
    'dkim-temperror': 'A DKIM key could not be looked up (a temporary DNS problem).',
    'no-auth-required': 'Your policy does not require any sender check (policy.require = none).',
    'from-invalid': 'The mail has no single, valid sender address.',
    'organizer-mismatch': 'The event\'s organizer is not the person who sent the mail.',
    'attendee-mismatch': 'The reply comes from someone other than the attendee it speaks for.',
    'organizer-changed': 'This update comes from someone other than the event\'s organizer.',
    'not-organizer': 'Only the event\'s organizer may send this kind of update.',
    'unknown-organizer': 'The organizer is not one of your known senders, and new events are only accepted from known senders.',
    'unknown-attendee': 'The reply is from someone who is not invited to the event.',
    'attendee-unknown': 'The reply is from someone who is not invited to the event.',
    'unknown-uid': 'This update is for an event that is not in the calendar.',
    'unknown-instance': 'This update is for an occurrence that is not in the calendar.',
    'stale-sequence': 'The calendar already has a newer version of this event.',
    'stale-reply': 'The calendar already has a newer reply from this attendee.',
    'stale-dtstamp': 'The calendar already has a newer version of this event.',
    'ical-invalid': 'The calendar data in the mail is not valid iCalendar.',
    'imip-conflict': 'The mail contains conflicting calendar data.',
    'message-invalid': 'The mail is malformed.',
    'mime-invalid': 'The mail\'s structure (MIME) is malformed.',
    'no-calendar': 'The mail contains no calendar invitation.',
    'no-method': 'The calendar data says neither invitation, reply nor cancellation.',
    'method-unsupported': 'This kind of calendar message is not supported.',
    'no-uid': 'The event has no identifier.',
    'several-uids': 'The mail describes several different events at once.',
    'no-organizer': 'The event names no organizer.',
    'no-attendee': 'The reply names no attendee.',
    'too-large': 'The calendar data is too large.',
    'defer-expired': 'The sender could not be checked for too long (DNS kept failing), so calgate gave up.',
    'created': 'The event was added to the calendar.',
    'updated': 'The event in the calendar was updated.',
    'cancelled': 'The event was cancelled in the calendar.',
    'reply-applied': 'The attendee\'s answer was recorded in the event.',
    'duplicate': 'The calendar already has exactly this version.',
    'proposal-pending': 'The sender proposes a change; it waits for the organizer.',
  };

  const DECISIONS = {
    accept: 'Accepted',
    skip: 'Skipped',
    defer: 'Deferred',
    ignore: 'Ignored',
  };

  const STATES = {
    'new': ['Not connected yet', 'wait'],
    'connecting': ['Connecting', 'wait'],
    'idle': ['Connected, waiting for new mail', 'ok'],
    'polling': ['Checking for new mail', 'ok'],
    'backoff': ['Connection problem, will retry', 'warn'],
    'auth-failed': ['Mailbox login failed', 'bad'],
    'tls-error': ['Secure connection failed', 'bad'],
    'no-mailbox': ['No mailbox configured', 'off'],
  };

  const METHODS = {
    REQUEST: 'invitation or update',
    CANCEL: 'cancellation',
    REPLY: 'reply',
    ADD: 'added occurrence',
    REFRESH: 'refresh request',
    COUNTER: 'counter-proposal',
    DECLINECOUNTER: 'declined counter-proposal',
    PUBLISH: 'published event',
  };

  const $ = (id) => document.getElementById(id);
  let csrf = null;
  let filter = '';
  let nextBefore = null;
  let me = null;

  /* An element with a class and text (text set as text, never as HTML). */
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmtTime(unix) {
    if (!unix) return '—';
    return new Date(unix * 1000).toLocaleString(undefined, {
      year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit',
    });
  }

  function relTime(unix) {
    if (!unix) return 'never';
    const d = Math.round(unix - Date.now() / 1000);
    const a = Math.abs(d);
    let s;
    // Clocks and rounding differ by a second or two: never "in 0 s" for
    // something that just happened.
    if (a < 10) return d > 0 ? 'in a moment' : 'just now';
    if (a < 60) s = a + ' s';
    else if (a < 3600) s = Math.round(a / 60) + ' min';
    else if (a < 86400) s = Math.round(a / 3600) + ' h';
    else s = Math.round(a / 86400) + ' days';
    return d < 0 ? s + ' ago' : 'in ' + s;
  }

  /* iCalendar DATE or DATE-TIME (20261210T100000Z) -> readable; else as is. */
  function fmtDtstart(v) {
    if (!v) return '';
    const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$/.exec(v);
    if (!m) return v;
    if (!m[4]) {
      return new Date(+m[1], m[2] - 1, +m[3]).toLocaleDateString(undefined,
        { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
    }
    const d = m[7] ? new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]))
      : new Date(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    return d.toLocaleString(undefined, { weekday: 'short', year: 'numeric',
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  async function api(path, opts) {
    const o = Object.assign({ credentials: 'same-origin', cache: 'no-store' }, opts || {});
    const r = await fetch(path, o);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body: body };
  }

  function post(path) {
    return api(path, { method: 'POST', headers: { 'X-CSRF-Token': csrf || '' } });
  }

  function showBanner(parts) {
    const b = $('banner');
    clear(b);
    if (!parts) { b.hidden = true; return; }
    for (const p of parts) b.appendChild(p);
    b.hidden = false;
  }

  /* ---- accounts ---- */

  function countBox(n, label, cls) {
    const d = el('div', 'count ' + cls);
    d.appendChild(el('div', 'count-n', n));
    d.appendChild(el('div', 'count-l', label));
    return d;
  }

  function renderAccount(a) {
    const card = el('article', 'card account');
    const head = el('div', 'card-head');
    head.appendChild(el('h3', null, a.user));
    const st = STATES[a.state] || [a.state, 'wait'];
    const badge = el('span', 'state state-' + st[1], st[0]);
    badge.dataset.state = a.state;
    head.appendChild(badge);
    card.appendChild(head);

    if (a.mailbox) {
      card.appendChild(el('p', 'mailbox', 'Mailbox ' + a.mailbox + ' on ' + a.host));
    }
    if (a.detail) card.appendChild(el('p', 'detail', a.detail));
    const dl = el('dl', 'facts');
    function fact(k, v) { dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', null, v)); }
    if (a.mailbox) {
      fact('Last successful check', a.last_ok
        ? relTime(a.last_ok) + ' (' + fmtTime(a.last_ok) + ')' : 'not yet');
      if (a.next_try && (a.state === 'backoff' || a.state === 'auth-failed' ||
          a.state === 'tls-error')) {
        fact('Next try', relTime(a.next_try) + ' (' + fmtTime(a.next_try) + ')');
      }
    }
    card.appendChild(dl);

    const counts = el('div', 'counts');
    counts.appendChild(countBox(a.counts_7d.accepted, 'accepted', 'accept'));
    counts.appendChild(countBox(a.counts_7d.skipped, 'skipped', 'skip'));
    counts.appendChild(countBox(a.counts_7d.deferred, 'deferred', 'defer'));
    card.appendChild(el('p', 'small muted', 'Invitations in the last 7 days'));
    card.appendChild(counts);

    if (a.calendars.length) {
      const ul = el('ul', 'calendars');
      for (const c of a.calendars) {
        const li = el('li');
        li.appendChild(el('span', 'cal-name', c.name));
        li.appendChild(el('span', 'cal-n', c.events + (c.events === 1 ? ' event' : ' events')));
        ul.appendChild(li);
      }
      card.appendChild(el('p', 'small muted', 'Calendars'));
      card.appendChild(ul);
    }
    return card;
  }

  /* ---- chart ---- */

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function renderChart(days) {
    const box = $('chart');
    clear(box);
    const W = 720, H = 170, L = 34, B = 24, T = 10;
    const series = [['accept', 'accepted'], ['skip', 'skipped'], ['defer', 'deferred']];
    let max = 0;
    for (const d of days) max = Math.max(max, d.accept + d.skip + d.defer);
    const top = Math.max(4, Math.ceil(max / 4) * 4);
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'Invitations per day over the last 30 days', class: 'chart-svg' });
    for (let i = 0; i <= 4; i++) {
      const y = T + (H - T - B) * (1 - i / 4);
      s.appendChild(svg('line', { x1: L, x2: W, y1: y, y2: y, class: 'grid' }));
      s.appendChild(svg('text', { x: L - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, top * i / 4));
    }
    const bw = (W - L) / days.length;
    days.forEach(function (d, i) {
      const g = svg('g', { class: 'day' });
      const total = d.accept + d.skip + d.defer;
      g.appendChild(svg('title', {}, d.date + ': ' + d.accept + ' accepted, ' +
        d.skip + ' skipped, ' + d.defer + ' deferred'));
      let y = H - B;
      for (const [k] of series) {
        if (!d[k]) continue;
        const h = (H - T - B) * d[k] / top;
        y -= h;
        g.appendChild(svg('rect', { x: L + i * bw + 2, y: y, width: Math.max(1, bw - 4),
          height: h, class: 'bar-' + k }));
      }
      if (!total) {
        g.appendChild(svg('rect', { x: L + i * bw + 2, y: H - B - 1, width: Math.max(1, bw - 4),
          height: 1, class: 'bar-zero' }));
      }
      s.appendChild(g);
      if ((days.length - 1 - i) % 7 === 0) {
        const last = i === days.length - 1;
        s.appendChild(svg('text', { x: last ? W : L + i * bw + bw / 2, y: H - 6,
          class: 'axis', 'text-anchor': last ? 'end' : 'middle' },
          last ? 'today' : d.date.slice(5)));
      }
    });
    box.appendChild(s);
    const legend = el('div', 'legend');
    for (const [k, label] of series) {
      const item = el('span', 'legend-item');
      item.appendChild(el('span', 'swatch bar-' + k));
      item.appendChild(document.createTextNode(label));
      legend.appendChild(item);
    }
    box.appendChild(legend);
  }

  /* ---- invitations ---- */

  function reasonText(code) {
    return REASONS[code] || null;
  }

  /* "It is DKIM-signed by google.com and by x.gappssmtp.com (...)." */
  function signersSentence(inv) {
    const d = inv.detail;
    if (!d || !Array.isArray(d.dkim) || !/^(dmarc|dkim)-/.test(inv.reason || ''))
      return null;
    const names = d.dkim.filter(function (x) { return x.result === 'pass' && x.domain; })
      .map(function (x) {
        return /\.gappssmtp\.com$/i.test(x.domain)
          ? x.domain + ' (its Google Workspace tenant domain)' : x.domain;
      });
    if (!names.length) return null;
    return 'It is DKIM-signed by ' + names.join(' and by ') + '.';
  }

  function checksDetails(detail) {
    const box = el('details', 'checks');
    box.appendChild(el('summary', null, 'Sender checks (DKIM, DMARC, SPF)'));
    if (!detail) {
      box.appendChild(el('p', 'muted', 'No details were recorded.'));
      return box;
    }
    const dkim = Array.isArray(detail.dkim) ? detail.dkim : [];
    if (dkim.length) {
      const t = el('table', 'dkim');
      const hr = el('tr');
      for (const h of ['DKIM signature by', 'selector', 'result', 'aligned with sender'])
        hr.appendChild(el('th', null, h));
      t.appendChild(el('thead')).appendChild(hr);
      const tb = el('tbody');
      for (const sgn of dkim) {
        const tr = el('tr');
        tr.appendChild(el('td', 'mono', sgn.domain || '—'));
        tr.appendChild(el('td', 'mono', sgn.selector || '—'));
        tr.appendChild(el('td', 'res res-' + (sgn.result === 'pass' ? 'ok' : 'bad'), sgn.result || '—'));
        tr.appendChild(el('td', null, sgn.aligned ? 'yes' : 'no'));
        tb.appendChild(tr);
      }
      t.appendChild(tb);
      box.appendChild(t);
    } else {
      box.appendChild(el('p', null, 'DKIM: the mail carries no DKIM signature.'));
    }
    const dl = el('dl', 'facts');
    function fact(k, v) { dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', null, v)); }
    if (detail.from_domain) fact('Sender domain', detail.from_domain);
    if (detail.dmarc) {
      fact('DMARC', (detail.dmarc.result || '—') +
        (detail.dmarc.policy ? ' (published policy: ' + detail.dmarc.policy + ')'
          : detail.dmarc.result === 'none' ? ' (no DMARC record published)' : ''));
    }
    fact('SPF', detail.spf ? (detail.spf.result || '—') +
      (detail.spf.domain ? ' for ' + detail.spf.domain : '') +
      (detail.spf.source ? ' (from ' + detail.spf.source + ')' : '')
      : 'not used (policy spf = off)');
    if (detail.itip && detail.itip.organizer) fact('Organizer', detail.itip.organizer);
    box.appendChild(dl);
    return box;
  }

  function renderInvitation(inv) {
    const card = el('article', 'card inv inv-' + inv.decision);
    card.dataset.id = inv.id;
    const head = el('div', 'card-head');
    const badge = el('span', 'decision decision-' + inv.decision,
      DECISIONS[inv.decision] || inv.decision);
    head.appendChild(badge);
    head.appendChild(el('h3', 'inv-title', inv.summary || inv.subject || '(no title)'));
    head.appendChild(el('time', 'when', fmtTime(inv.ts)));
    card.appendChild(head);

    const dl = el('dl', 'facts');
    function fact(k, v, cls) {
      if (v === undefined || v === null || v === '') return;
      dl.appendChild(el('dt', null, k));
      dl.appendChild(el('dd', cls || null, v));
    }
    if (me && me.admin) fact('For', inv.user);
    fact('From', inv.from);
    fact('Subject', inv.subject, 'subject');
    if (inv.dtstart) fact('Starts', fmtDtstart(inv.dtstart));
    if (inv.method) fact('Kind', (METHODS[inv.method] || inv.method) + ' (' + inv.method + ')');
    card.appendChild(dl);

    const why = el('div', 'why');
    const plain = reasonText(inv.reason);
    const p = el('p', 'reason');
    p.appendChild(el('strong', null, inv.decision === 'accept' ? 'Why it was accepted: ' : 'Why: '));
    p.appendChild(document.createTextNode(plain || 'Reason code ' + inv.reason + '.'));
    const signed = signersSentence(inv);
    if (signed) p.appendChild(document.createTextNode(' ' + signed));
    if (plain) p.appendChild(el('span', 'code', inv.reason));
    why.appendChild(p);
    if (inv.hint && inv.decision !== 'accept') {
      const h = el('p', 'hint');
      const none = /^none:\s*/.exec(inv.hint);
      h.appendChild(el('strong', null, none ? 'No policy setting would accept it: '
        : 'What would change it: '));
      h.appendChild(el('span', 'hint-text', none ? inv.hint.slice(none[0].length) : inv.hint));
      if (!none) {
        h.appendChild(el('span', 'small muted', me && me.admin
          ? ' (a setting in the configuration file: change it, reload, then check again)'
          : ' (a setting in the configuration file: ask your administrator)'));
      }
      why.appendChild(h);
    }
    if (inv.decision === 'defer' && inv.next_retry) {
      why.appendChild(el('p', 'small', 'calgate will try again ' + relTime(inv.next_retry) +
        ' (attempt ' + (inv.attempts + 1) + ').'));
    }
    card.appendChild(why);

    if (inv.can_recheck) {
      const row = el('div', 'actions');
      const btn = el('button', 'recheck', 'Check again');
      btn.type = 'button';
      const out = el('span', 'result');
      out.setAttribute('role', 'status');
      btn.addEventListener('click', function () { recheck(inv, card, btn, out); });
      row.appendChild(btn);
      row.appendChild(out);
      row.appendChild(el('span', 'small muted',
        'Runs the checks again with the current policy, and adds the invitation if it now passes.'));
      card.appendChild(row);
    }
    card.appendChild(checksDetails(inv.detail));
    return card;
  }

  async function recheck(inv, card, btn, out) {
    btn.disabled = true;
    out.className = 'result';
    out.textContent = 'Checking…';
    let r;
    try {
      r = await post('/api/invitations/' + encodeURIComponent(inv.id) + '/recheck');
    } catch (e) {
      r = { status: 0, body: { error: 'the server could not be reached' } };
    }
    if (r.status === 200 && r.body && r.body.invitation) {
      const fresh = renderInvitation(r.body.invitation);
      const res = el('p', 'result result-' + (r.body.invitation.decision === 'accept' ? 'ok' : 'warn'),
        r.body.invitation.decision === 'accept'
          ? 'Checked again: accepted, the invitation is now in the calendar.'
          : 'Checked again: still ' + (DECISIONS[r.body.invitation.decision] || '').toLowerCase() + '.');
      res.setAttribute('role', 'status');
      fresh.insertBefore(res, fresh.children[1]);
      card.replaceWith(fresh);
      loadStatus();
      return;
    }
    const msg = (r.body && r.body.error) || ('HTTP ' + r.status);
    out.className = 'result result-bad';
    if (r.status === 503) out.textContent = 'Not available: ' + msg + '.';
    else if (r.status === 403) out.textContent = 'Refused: ' + msg + '.';
    else out.textContent = 'Could not check again: ' + msg + '.';
    btn.disabled = false;
  }

  async function loadInvitations(append) {
    const list = $('invitations');
    let q = '/api/invitations?limit=25';
    if (filter) q += '&decision=' + encodeURIComponent(filter);
    if (append && nextBefore) q += '&before=' + encodeURIComponent(nextBefore);
    const r = await api(q);
    if (r.status !== 200 || !r.body) {
      showBanner([el('span', null, 'The invitation list could not be loaded: ' +
        ((r.body && r.body.error) || 'HTTP ' + r.status))]);
      return;
    }
    if (!append) clear(list);
    for (const inv of r.body.invitations) list.appendChild(renderInvitation(inv));
    if (!list.firstChild) {
      list.appendChild(el('p', 'muted empty', filter
        ? 'No ' + DECISIONS[filter].toLowerCase() + ' invitations.'
        : 'No invitations yet. They appear here as soon as calgate finds one in a mailbox.'));
    }
    nextBefore = r.body.next_before;
    $('more').hidden = !nextBefore;
  }

  async function loadStatus() {
    const tz = -new Date().getTimezoneOffset();
    const r = await api('/api/status?tz=' + tz);
    if (r.status !== 200 || !r.body) {
      showBanner([el('span', null, 'The status could not be loaded: ' +
        ((r.body && r.body.error) || 'HTTP ' + r.status))]);
      return false;
    }
    const s = r.body;
    me = s;
    csrf = s.csrf;
    $('who').textContent = 'Signed in as ' + s.user + (s.admin ? ' (administrator)' : '');
    if (s.reload_error) {
      const pre = el('pre', 'errors', s.reload_error);
      showBanner([el('strong', null, 'The configuration could not be reloaded. '),
        el('span', null, 'The previous configuration is still in force.'), pre]);
    } else {
      showBanner(null);
    }
    const acc = $('accounts');
    clear(acc);
    for (const a of s.accounts) acc.appendChild(renderAccount(a));
    if (!s.accounts.length) acc.appendChild(el('p', 'muted', 'No accounts.'));
    renderChart(s.daily);
    $('admin').hidden = !s.admin;
    return true;
  }

  async function reloadConfig() {
    const out = $('reload-result');
    out.className = 'result';
    out.textContent = 'Reloading…';
    const r = await post('/api/reload');
    if (r.status === 200) {
      out.className = 'result result-ok';
      out.textContent = 'Reloaded.';
    } else {
      out.className = 'result result-bad';
      out.textContent = 'Refused: ' + ((r.body && r.body.error) || 'HTTP ' + r.status);
    }
    loadStatus();
  }

  document.addEventListener('DOMContentLoaded', async function () {
    $('filter').addEventListener('change', function () {
      filter = $('filter').value;
      nextBefore = null;
      loadInvitations(false);
    });
    $('more').addEventListener('click', function () { loadInvitations(true); });
    $('reload').addEventListener('click', reloadConfig);
    if (await loadStatus()) await loadInvitations(false);
    document.body.dataset.loaded = '1';
  });
})();
