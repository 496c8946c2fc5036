// tests/browser/status_page.mjs: drives Debian's chromium (playwright-core)
// through the status page. Run by tests/integration/status_page.py (from
// test_status_page.sh), which starts the real stack and delivers the mail;
// this script browses, and plays the operator who edits the file.
//
// Environment: CALGATE_URL, CALGATE_USER, CALGATE_PASS, ADMIN_USER,
// GOOGLE_ID (the skipped Google-style invitation), XSS_SUBJECT,
// CONF_PATH (calgate's configuration file) and CONF_RELAXED (the relaxed
// one to put there), SCREENSHOT, RECHECK_EXPECT.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync, copyFileSync, renameSync }
  from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';

// What "Check again" after the reload must lead to.
const RECHECK_EXPECT = process.env.RECHECK_EXPECT || 'accepted';
const EXPECT_TEXT = {
  unavailable: /Not available/i,
  skipped: /Checked again: still skipped/i,
  accepted: /accepted, the invitation is now in the calendar/i,
}[RECHECK_EXPECT];

const URL = process.env.CALGATE_URL;
const GOOGLE_ID = process.env.GOOGLE_ID;
const XSS_SUBJECT = process.env.XSS_SUBJECT;
const SHOT = process.env.SCREENSHOT;

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

// Opens the page in ctx; records console errors, dialogs, CSP violations.
async function open(ctx, log) {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => log.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => log.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { log.push('dialog: ' + d.message()); d.dismiss(); });
  // Runs before the page's own scripts: records CSP violations and
  // whether an injected onerror ever ran.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  const resp = await page.goto(URL + '/', { waitUntil: 'load' });
  await page.waitForSelector('body[data-loaded="1"]');
  return { page, resp };
}

// Clicks "Check again" on the card and waits for a result matching re.
async function checkAgain(page, re) {
  const card = page.locator(`.inv[data-id="${GOOGLE_ID}"]`);
  await card.locator('button.recheck').click();
  try {
    await page.waitForFunction(([id, src]) => {
      const c = document.querySelector(`.inv[data-id="${id}"]`);
      return c && [...c.querySelectorAll('.result')].some((r) =>
        new RegExp(src, 'i').test(r.textContent));
    }, [GOOGLE_ID, re.source], { timeout: 10000 });
    return 'ok';
  } catch (e) {
    return await page.locator(`.inv[data-id="${GOOGLE_ID}"] .result`)
      .allTextContents().catch(() => []);
  }
}

async function clean(page, log, who) {
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, who + ': no CSP violations: ' + JSON.stringify(csp));
  const bad = log.filter((l) =>
    /^error|Content Security Policy|Refused to|pageerror|Uncaught|dialog/i
      .test(l));
  check(bad.length === 0, who + ': clean console: ' + JSON.stringify(bad));
}

const profiles = [];
const contexts = [];
try {
  // ---- alice: the account and the skipped invitation
  profiles.push(mkdtempSync(join(tmpdir(), 'calgate-chromium-')));
  const ctx = await launch(profiles[0], process.env.CALGATE_USER);
  contexts.push(ctx);
  const log = [];
  const { page, resp } = await open(ctx, log);
  check(resp && resp.status() === 200, 'page loads with credentials');
  check(/default-src 'self'/.test(resp.headers()['content-security-policy'] || ''),
    'page served with a strict CSP');

  // The poller has run: the account state is real, and said in words.
  const state = await page.$eval('.account .state', (e) =>
    ({ text: e.textContent, state: e.dataset.state }));
  check(state.state === 'idle' && state.text === 'Connected, waiting for new mail',
    'account state in words: ' + JSON.stringify(state));
  const acct = await page.locator('.account').innerText();
  check(/Mailbox INBOX on 127\.0\.0\.1/.test(acct), 'mailbox shown');
  check(/Last successful check\s*(just now|\d+ s ago)/i.test(acct),
    'last successful check is recent: ' + JSON.stringify(acct));
  check(await page.locator('.account .calendars li').count() >= 1,
    'calendars listed');
  check(/1 event\b/.test(await page.locator('.account .calendars').innerText()),
    'the accepted invitation counted in the calendar');
  check(await page.locator('#chart svg rect').count() >= 30, 'chart drawn');

  // the skipped Google-style invitation, with its hint in plain words
  const card = page.locator(`.inv[data-id="${GOOGLE_ID}"]`);
  check(await card.count() === 1, 'Google-style invitation listed');
  const text = await card.innerText();
  check(/Skipped/.test(text), 'shown as skipped');
  check(/publishes no DMARC record/.test(text), 'reason in plain words');
  check(/DKIM-signed by google\.com and by .*gappssmtp\.com/.test(text),
    'signers explained');
  check(/require\s*=\s*dkim/.test(text) &&
    /dkim_signers\s*=\s*google-workspace/.test(text), 'hint shown: ' + text);
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
  check(await page.locator('#admin').isHidden(), 'no admin section for alice');

  // Before the policy changes, checking again changes nothing.
  let got = await checkAgain(page, /Checked again: still skipped/);
  check(got === 'ok', 'Check again before the reload -> still skipped: ' +
    JSON.stringify(got));

  // ---- the operator: edits the file, reloads from the admin section
  profiles.push(mkdtempSync(join(tmpdir(), 'calgate-chromium-')));
  const actx = await launch(profiles[1], process.env.ADMIN_USER);
  contexts.push(actx);
  const alog = [];
  const { page: apage } = await open(actx, alog);
  check(await apage.locator('.account').count() >= 2,
    'admin sees every account');
  check(/For\s*alice/.test(await apage.locator(
    `.inv[data-id="${GOOGLE_ID}"]`).innerText()), 'admin sees whose it is');
  check(/change it, reload, then check again/.test(await apage.locator(
    `.inv[data-id="${GOOGLE_ID}"] .hint`).innerText()),
  'admin is told to change the file and reload');
  if (process.env.CONF_PATH && process.env.CONF_RELAXED) {
    const tmp = process.env.CONF_PATH + '.edit';
    copyFileSync(process.env.CONF_RELAXED, tmp);
    renameSync(tmp, process.env.CONF_PATH);
  }
  await apage.click('#reload');
  await apage.waitForFunction(() =>
    /Reloaded|Refused/.test(document.getElementById('reload-result').textContent));
  check(await apage.textContent('#reload-result') === 'Reloaded.',
    'admin reload: ' + await apage.textContent('#reload-result'));
  check(await apage.locator('#banner').isHidden(), 'no reload error banner');

  // ---- alice: Check again now accepts it
  got = await checkAgain(page, EXPECT_TEXT);
  check(got === 'ok', `Check again -> ${RECHECK_EXPECT}: ${JSON.stringify(got)}`);
  if (RECHECK_EXPECT === 'accepted') {
    const after = await card.innerText();
    check(/Accepted/.test(after) && !/What would change it/.test(after),
      'card now shows the accept');
    check(await card.locator('button.recheck').count() === 0,
      'no Check again on an accepted invitation');
    await page.waitForFunction(() => /2 events/.test(
      document.querySelector('.account .calendars').textContent));
    check(true, 'calendar event count updated');
  }
  await clean(page, log, 'alice');

  if (SHOT) {
    mkdirSync(dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
  }
  await apage.reload();
  await apage.waitForSelector('body[data-loaded="1"]');
  await clean(apage, alog, 'admin');
  if (SHOT) {
    await apage.screenshot({ path: SHOT.replace(/\.png$/, '-admin.png'),
      fullPage: true });
  }
} catch (e) {
  check(false, 'browser run: ' + (e && e.stack ? e.stack : e));
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
