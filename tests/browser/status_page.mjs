// tests/browser/status_page.mjs: drives Debian's chromium (playwright-core)
// through the status page. Run by tests/integration/test_status_page.sh,
// which starts calgate and seeds the store; this script only browses.
//
// Environment: CALGATE_URL, CALGATE_USER, CALGATE_PASS, GOOGLE_ID (the
// seeded skipped Google-style invitation), XSS_SUBJECT, SCREENSHOT,
// RECHECK_EXPECT.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';

// What "Check again" must lead to. 'unavailable' while serve has no recheck
// hook (503); 'accepted' once the lead wires the gate and merge behind it.
const RECHECK_EXPECT = process.env.RECHECK_EXPECT || 'unavailable';
const EXPECT_TEXT = {
  unavailable: /Not available/i,
  accepted: /accepted, the invitation is now in the calendar/i,
}[RECHECK_EXPECT];

const URL = process.env.CALGATE_URL;
const GOOGLE_ID = process.env.GOOGLE_ID;
const XSS_SUBJECT = process.env.XSS_SUBJECT;
const SHOT = process.env.SCREENSHOT;
const STATES = ['new', 'connecting', 'idle', 'polling', 'backoff',
  'auth-failed', 'tls-error', 'no-mailbox'];

let passed = 0, failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else { failed++; console.log('FAIL: ' + what); }
}

// A fresh chromium with its own profile (--user-data-dir), logged in as user.
function launch(dir, user) {
  return chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    httpCredentials: { username: user, password: process.env.CALGATE_PASS },
    viewport: { width: 1100, height: 900 },
    timeout: 30000,
  });
}

const profile = mkdtempSync(join(tmpdir(), 'calgate-chromium-'));
let ctx;
const consoleLines = [];
const dialogs = [];
try {
  ctx = await launch(profile, process.env.CALGATE_USER);
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => consoleLines.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => consoleLines.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  // Runs before the page's own scripts: records CSP violations and
  // whether the injected onerror ever ran.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
    });
  });

  const resp = await page.goto(URL + '/', { waitUntil: 'load' });
  check(resp && resp.status() === 200, 'page loads with credentials');
  check(/default-src 'self'/.test(resp.headers()['content-security-policy'] || ''),
    'page served with a strict CSP');
  await page.waitForSelector('body[data-loaded="1"]');

  // account state
  const state = await page.$eval('.account .state', (e) =>
    ({ text: e.textContent, state: e.dataset.state }));
  check(state.text.length > 0 && STATES.includes(state.state),
    'account state shown: ' + JSON.stringify(state));
  const mailbox = await page.textContent('.account .mailbox');
  check(/INBOX on 127\.0\.0\.1/.test(mailbox || ''), 'mailbox shown');
  check(await page.locator('.account .calendars li').count() >= 1,
    'calendars listed');
  check(await page.locator('#chart svg rect').count() >= 30, 'chart drawn');

  // the skipped Google-style invitation, with its hint in plain words
  const card = page.locator(`.inv[data-id="${GOOGLE_ID}"]`);
  check(await card.count() === 1, 'Google-style invitation listed');
  const text = await card.innerText();
  check(/Skipped/.test(text), 'shown as skipped');
  check(/publishes no DMARC record/.test(text), 'reason in plain words');
  check(/DKIM-signed by google\.com and by .*gappssmtp\.com/.test(text),
    'signers explained');
  check(/dkim_signers=google-workspace/.test(text), 'hint shown');
  await card.locator('details.checks summary').click();
  check(await card.locator('table.dkim tbody tr').count() === 2,
    'DKIM signatures listed');

  // a subject with markup is text: no element, no script
  const subjects = await page.$$eval('#invitations dd.subject',
    (l) => l.map((e) => e.textContent));
  check(subjects.includes(XSS_SUBJECT), 'markup subject rendered as text');
  check(await page.locator('#invitations img').count() === 0,
    'no img element created');
  check(await page.evaluate(() => window.__xss) === undefined,
    'injected handler never ran');

  // Check again
  await card.locator('button.recheck').click();
  let got = '';
  try {
    await page.waitForFunction(([id, re]) => {
      const c = document.querySelector(`.inv[data-id="${id}"]`);
      if (!c) return false;
      return [...c.querySelectorAll('.result')].some((r) =>
        new RegExp(re, 'i').test(r.textContent));
    }, [GOOGLE_ID, EXPECT_TEXT.source], { timeout: 10000 });
    got = 'ok';
  } catch (e) {
    got = await page.locator(`.inv[data-id="${GOOGLE_ID}"] .result`)
      .allTextContents().catch(() => []);
  }
  check(got === 'ok', `Check again -> ${RECHECK_EXPECT}: ${JSON.stringify(got)}`);

  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, 'no CSP violations: ' + JSON.stringify(csp));
  const bad = consoleLines.filter((l) =>
    /Content Security Policy|Refused to|pageerror|Uncaught/i.test(l));
  check(bad.length === 0, 'clean console: ' + JSON.stringify(bad));
  check(dialogs.length === 0, 'no dialogs: ' + JSON.stringify(dialogs));

  if (SHOT) {
    mkdirSync(dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
  }
  check(await page.locator('#admin').isHidden(), 'no admin section for alice');

  // The administrator's view: every account, whose invitation, reload.
  if (process.env.ADMIN_USER) {
    const aprofile = mkdtempSync(join(tmpdir(), 'calgate-chromium-'));
    const actx = await launch(aprofile, process.env.ADMIN_USER);
    try {
      const apage = actx.pages()[0] || await actx.newPage();
      apage.setDefaultTimeout(10000);
      await apage.goto(URL + '/');
      await apage.waitForSelector('body[data-loaded="1"]');
      check(await apage.locator('.account').count() === 2,
        'admin sees both accounts');
      check(await apage.locator('#admin').isVisible(), 'admin section shown');
      check(/For\s*alice/.test(await apage.locator(
        `.inv[data-id="${GOOGLE_ID}"]`).innerText()), 'admin sees whose it is');
      if (SHOT) {
        await apage.screenshot({ path: SHOT.replace(/\.png$/, '-admin.png'),
          fullPage: true });
      }
    } finally {
      await actx.close().catch(() => {});
      rmSync(aprofile, { recursive: true, force: true });
    }
  }
} catch (e) {
  check(false, 'browser run: ' + (e && e.stack ? e.stack : e));
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
