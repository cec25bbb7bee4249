#!/usr/bin/env node
// End-to-end check of the embeddable widget in headless Chromium.
//
//   cd tests/e2e && npm install
//   node tests/e2e/widget.mjs <demo page URL> <question> <expected text> <expected citation source>
//
// Opens the page, opens the chat, asks <question>, waits (≤ 30 s) for an answer containing
// <expected text> with a citation naming <expected citation source>, ends the chat with a 5/5
// rating and checks the rating was accepted. Exit 0 on success; 1 with the page's console on
// failure; 2 on bad usage. CHROMIUM overrides the browser path (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [pageUrl, question, expectedText, expectedSource] = process.argv.slice(2);
if (!pageUrl || !question || !expectedText || !expectedSource) {
  console.error('usage: node tests/e2e/widget.mjs <demo page URL> <question> <expected text> <expected citation source>');
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const ANSWER_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 120_000;

const logs = [];
const t0 = Date.now();
let context = null;
let userDataDir = null;
let finished = false;

const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const step = (msg) => console.log(`[${since()}] ${msg}`);
const isWidgetApi = (url, suffix) => {
  try {
    const p = new URL(url).pathname;
    return p.startsWith('/widget/') && (!suffix || suffix.test(p));
  } catch {
    return false;
  }
};

async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = null;
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}

async function fail(message) {
  if (finished) return;
  finished = true;
  console.error(`\nE2E FAILED after ${since()}: ${message}`);
  console.error('--- page console / network ---');
  console.error(logs.length ? logs.join('\n') : '(nothing logged)');
  console.error('------------------------------');
  await cleanup();
  process.exit(1);
}

const watchdog = setTimeout(() => fail(`the whole run took longer than ${OVERALL_TIMEOUT_MS / 1000} s`), OVERALL_TIMEOUT_MS);

/** Waits for `what` unless the widget shows an error line first; fails with that line. */
async function unlessWidgetError(page, what, label, timeout) {
  const errorLine = page.getByTestId('chatapp-error').last();
  const winner = await Promise.race([
    what.waitFor({ state: 'visible', timeout }).then(() => 'ok'),
    errorLine.waitFor({ state: 'visible', timeout }).then(() => 'error'),
  ]).catch((e) => `timeout: ${e.message.split('\n')[0]}`);
  if (winner === 'ok') return;
  if (winner === 'error') await fail(`${label}: the widget showed an error: "${(await errorLine.textContent())?.trim()}"`);
  else await fail(`${label} (${winner})`);
}

async function run() {
  try {
    await access(CHROMIUM, fsc.X_OK);
  } catch {
    await fail(`no Chromium at ${CHROMIUM} (install it, e.g. apt-get install chromium, or set CHROMIUM)`);
  }
  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'chatapp-e2e-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.method()} ${r.url()} — ${r.failure()?.errorText}`));
  page.on('response', async (r) => {
    if (!isWidgetApi(r.url()) && !r.url().endsWith('/widget.js')) return;
    let line = `[http ${since()}] ${r.status()} ${r.request().method()} ${r.url()}`;
    if (r.status() >= 400) line += ` ${(await r.text().catch(() => '')).slice(0, 300)}`;
    logs.push(line);
  });

  step(`loading ${pageUrl}`);
  const nav = await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT_MS }).catch((e) => e);
  if (nav instanceof Error) return fail(`could not load the demo page: ${nav.message.split('\n')[0]}`);
  if (nav && !nav.ok()) return fail(`the demo page answered HTTP ${nav.status()}`);

  const launcher = page.getByTestId('chatapp-launcher');
  try {
    await launcher.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  } catch {
    return fail('the launcher button never appeared (widget.js not loaded, or the config request failed)');
  }
  const label = await launcher.getAttribute('aria-label');
  if (label !== 'Open chat') return fail(`launcher aria-label is "${label}", expected "Open chat"`);

  step('opening the chat');
  const sessionResponse = page
    .waitForResponse((r) => isWidgetApi(r.url(), /\/sessions$/) && r.request().method() === 'POST', { timeout: STEP_TIMEOUT_MS })
    .catch(() => null);
  await launcher.click();
  try {
    await page.getByTestId('chatapp-window').waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  } catch {
    return fail('the chat window did not open');
  }
  await unlessWidgetError(page, page.locator('.chatapp-msg-assistant.chatapp-welcome').first(), 'waiting for the welcome message', STEP_TIMEOUT_MS);
  const session = await sessionResponse;
  if (!session) return fail('no POST …/sessions request was made when the chat opened');
  if (session.status() !== 201 && session.status() !== 200) return fail(`starting the session returned HTTP ${session.status()}`);
  step(`welcome shown: "${(await page.locator('.chatapp-welcome').first().textContent())?.trim()}"`);

  // Record, inside the page, whether the typing indicator showed or a delta arrived: either
  // may be too brief for polling to catch.
  await page.evaluate(() => {
    const host = [...document.querySelectorAll('*')].find((e) => e.shadowRoot?.querySelector('[data-testid="chatapp-messages"]'));
    if (!host) throw new Error('the widget does not use an open shadow root');
    const root = host.shadowRoot;
    const list = root.querySelector('[data-testid="chatapp-messages"]');
    const typing = root.querySelector('[data-testid="chatapp-typing"]');
    const before = list.querySelectorAll('.chatapp-msg-assistant').length;
    window.__chatappE2E = { typing: false, delta: false };
    const check = () => {
      if (typing && !typing.hidden) window.__chatappE2E.typing = true;
      const all = list.querySelectorAll('.chatapp-msg-assistant');
      if (all.length > before && all[all.length - 1].textContent.trim()) window.__chatappE2E.delta = true;
    };
    new MutationObserver(check).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
  });

  step(`asking: ${question}`);
  const input = page.getByTestId('chatapp-input');
  await input.click();
  await input.fill(question);
  const turnResponse = page
    .waitForResponse((r) => isWidgetApi(r.url(), /\/conversations\/[^/]+\/messages$/) && r.request().method() === 'POST', { timeout: ANSWER_TIMEOUT_MS })
    .catch(() => null);
  const sentAt = Date.now();
  await input.press('Enter');
  const left = () => Math.max(1000, ANSWER_TIMEOUT_MS - (Date.now() - sentAt));

  if ((await input.inputValue()) !== '') return fail('Enter did not send the message (the input was not cleared)');
  const userMsg = page.locator('.chatapp-msg-user', { hasText: question.slice(0, 60) }).last();
  try {
    await userMsg.waitFor({ state: 'visible', timeout: 5000 });
  } catch {
    return fail('the customer message did not appear in the message list');
  }
  try {
    await page.waitForFunction(() => window.__chatappE2E?.typing || window.__chatappE2E?.delta, null, { timeout: left() });
  } catch {
    return fail('neither the typing indicator nor any streamed text appeared');
  }
  const seen = await page.evaluate(() => window.__chatappE2E);
  step(`typing indicator shown: ${seen.typing}; streamed text seen: ${seen.delta}`);

  const turn = await turnResponse;
  if (!turn) return fail('no POST …/messages request was made');
  const ctype = turn.headers()['content-type'] || '';
  if (turn.status() !== 200) return fail(`the chat turn returned HTTP ${turn.status()}`);
  // Deployed, turns go to the streaming function's URL (the config's stream_url), another origin.
  const expectedTurnOrigin = process.env.EXPECT_TURN_ORIGIN;
  if (expectedTurnOrigin && new URL(turn.url()).origin !== expectedTurnOrigin) {
    return fail(`the chat turn went to ${turn.url()}, expected the stream URL ${expectedTurnOrigin}`);
  }
  if (!ctype.includes('text/event-stream')) return fail(`the chat turn answered ${ctype || 'no content-type'}, expected text/event-stream`);

  const answer = page.locator('.chatapp-msg-assistant:not(.chatapp-welcome)', { hasText: expectedText }).last();
  await unlessWidgetError(page, answer, `waiting ${ANSWER_TIMEOUT_MS / 1000} s for an answer containing "${expectedText}"`, left());
  step(`answer: "${(await answer.locator('.bubble').textContent().catch(() => ''))?.trim().slice(0, 200)}"`);

  const citation = answer.getByTestId('chatapp-citations').filter({ hasText: expectedSource });
  try {
    await citation.waitFor({ state: 'visible', timeout: left() });
  } catch {
    const got = await answer.getByTestId('chatapp-citations').textContent({ timeout: 500 }).catch(() => null);
    return fail(`the answer has no citation naming "${expectedSource}" (citations: ${got ? `"${got.trim()}"` : 'none'})`);
  }
  step(`citations: "${(await citation.textContent())?.replace(/\s+/g, ' ').trim()}"`);

  step('ending the chat with a 5/5 rating');
  await page.getByTestId('chatapp-end').click();
  const csat = page.getByTestId('chatapp-csat');
  try {
    await csat.waitFor({ state: 'visible', timeout: 5000 });
  } catch {
    return fail('the CSAT prompt did not appear after "End chat"');
  }
  const endResponse = page
    .waitForResponse((r) => isWidgetApi(r.url(), /\/conversations\/[^/]+\/end$/) && r.request().method() === 'POST', { timeout: STEP_TIMEOUT_MS })
    .catch(() => null);
  await csat.getByTestId('chatapp-rate-5').click();
  const ended = await endResponse;
  if (!ended) return fail('no POST …/end request was made after rating');
  const sent = ended.request().postDataJSON?.() ?? null;
  if (!sent || sent.rating !== 5) return fail(`the end request sent ${JSON.stringify(sent)}, expected {"rating":5}`);
  if (ended.status() !== 200) return fail(`ending the chat returned HTTP ${ended.status()}: ${(await ended.text().catch(() => '')).slice(0, 300)}`);
  await unlessWidgetError(page, page.getByTestId('chatapp-notice').filter({ hasText: 'Thanks for your feedback' }), 'waiting for the thank-you note', 5000);

  step('OK: welcome, streamed answer with citation, and CSAT all worked');
  finished = true;
  clearTimeout(watchdog);
  await cleanup();
  process.exit(0);
}

run().catch((e) => fail(`unexpected error: ${e?.stack || e}`));
