#!/usr/bin/env node
// End-to-end check of the human handoff in headless Chromium: a customer on the demo page and
// a support agent in the inbox page, each in their own browser context.
//
//   cd tests/e2e && npm install
//   node tests/e2e/handoff.mjs <demo page URL> <agent page URL> <agent email> <agent password>
//
// The customer asks for a human and sees the handoff message and their place in the queue; the
// agent signs in and, still offline (so the escalation worker gives it to nobody), finds it in
// the Queue and claims it with the button, then goes online and replies; the customer sees the reply live
// (≤ 15 s, no reload); the agent adds an internal note the customer never sees, then hands the
// conversation back to the AI; the customer sees the assistant is back and gets an AI answer.
// Exit 0 on success; 1 with both pages' console and network logs on failure; 2 on bad usage.
// CHROMIUM overrides the browser path (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { access } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';

const [demoUrl, agentUrl, agentEmail, agentPassword] = process.argv.slice(2);
if (!demoUrl || !agentUrl || !agentEmail || !agentPassword) {
  console.error('usage: node tests/e2e/handoff.mjs <demo page URL> <agent page URL> <agent email> <agent password>');
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const ANSWER_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;
const LIVE_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 240_000;

const ASK_FOR_HUMAN = 'I want to talk to a human';
const AGENT_REPLY = 'Hello from Dana in support';
const SECRET_NOTE = 'secret-note-xyz';
// The demo help centre's refunds article answers this (tests/widget_e2e.rs asks the same).
const QUESTION = 'How long do refunds take?';
const EXPECTED = 'five business days';

const logs = [];
const t0 = Date.now();
let browser = null;
let finished = false;
let noteLeaked = null; // the customer-side response that carried the internal note, if any

const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const step = (msg) => console.log(`[${since()}] ${msg}`);
const apiPath = (url) => {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
};
const isWidgetApi = (url, suffix) => {
  const p = apiPath(url);
  return p.startsWith('/widget/') && (!suffix || suffix.test(p));
};
const isInboxApi = (url, suffix) => {
  const p = apiPath(url);
  return (p.startsWith('/inbox/') || p.startsWith('/auth/')) && (!suffix || suffix.test(p));
};
const first = (e) => (e?.message || String(e)).split('\n')[0];

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
}

async function fail(message) {
  if (finished) return;
  finished = true;
  console.error(`\nE2E FAILED after ${since()}: ${message}`);
  console.error('--- console / network of both pages ---');
  console.error(logs.length ? logs.join('\n') : '(nothing logged)');
  console.error('---------------------------------------');
  await cleanup();
  process.exit(1);
}

const watchdog = setTimeout(() => fail(`the whole run took longer than ${OVERALL_TIMEOUT_MS / 1000} s`), OVERALL_TIMEOUT_MS);

/** Console, page errors, failed requests and API responses of `page`, tagged with `who`. */
function record(page, who, isApi) {
  page.on('console', (m) => logs.push(`[${who} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[${who} pageerror] ${e.message}`));
  page.on('requestfailed', (r) => {
    // Long polls cut short when a page closes a conversation are expected.
    logs.push(`[${who} requestfailed] ${r.method()} ${r.url()} — ${r.failure()?.errorText}`);
  });
  page.on('response', async (r) => {
    if (!isApi(r.url())) return;
    let line = `[${who} http ${since()}] ${r.status()} ${r.request().method()} ${r.url()}`;
    if (r.status() >= 400) line += ` ${(await r.text().catch(() => '')).slice(0, 300)}`;
    logs.push(line);
  });
}

/** Waits for `what` unless the widget shows an error line first; fails with that line. */
async function unlessWidgetError(page, what, label, timeout) {
  const errorLine = page.getByTestId('chatapp-error').last();
  const winner = await Promise.race([
    what.waitFor({ state: 'visible', timeout }).then(() => 'ok'),
    errorLine.waitFor({ state: 'visible', timeout }).then(() => 'error'),
  ]).catch((e) => `timeout: ${first(e)}`);
  if (winner === 'ok') return true;
  if (winner === 'error') await fail(`${label}: the widget showed an error: "${(await errorLine.textContent())?.trim()}"`);
  else await fail(`${label} (${winner})`);
  return false;
}

/** The inbox's error banner, for failure messages. */
async function inboxBanner(page) {
  if (!(await page.getByTestId('error').isVisible().catch(() => false))) return '';
  return ` (the inbox showed: "${(await page.locator('#banner-text').textContent().catch(() => ''))?.trim()}")`;
}

/** Waits for `what` in the inbox; on timeout fails with `label` and whatever the inbox's banner says. */
async function inboxWait(page, what, label, timeout = STEP_TIMEOUT_MS) {
  try {
    await what.waitFor({ state: 'visible', timeout });
    return true;
  } catch (e) {
    await fail(`${label} (${first(e)})${await inboxBanner(page)}`);
    return false;
  }
}

/** The POST to a path matching `suffix`, started before `action` runs; fails unless it answered 2xx. */
async function expectPost(page, isApi, suffix, action, label, timeout = STEP_TIMEOUT_MS) {
  const response = page
    .waitForResponse((r) => isApi(r.url(), suffix) && r.request().method() === 'POST', { timeout })
    .catch(() => null);
  await action();
  const r = await response;
  if (!r) {
    await fail(`${label}: no request was made`);
    return null;
  }
  if (r.status() < 200 || r.status() > 299) {
    await fail(`${label}: HTTP ${r.status()} ${(await r.text().catch(() => '')).slice(0, 300)}`);
    return null;
  }
  return r;
}

/** Everything the widget shows, read from its shadow root. */
async function widgetText(page) {
  return page.evaluate(() => {
    const host = [...document.querySelectorAll('*')].find((e) => e.shadowRoot?.querySelector('[data-testid="chatapp-messages"]'));
    return host ? host.shadowRoot.textContent : '';
  });
}

async function run() {
  try {
    await access(CHROMIUM, fsc.X_OK);
  } catch {
    return fail(`no Chromium at ${CHROMIUM} (install it, e.g. apt-get install chromium, or set CHROMIUM)`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const customerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const agentContext = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const customer = await customerContext.newPage();
  const agent = await agentContext.newPage();
  record(customer, 'customer', (url) => isWidgetApi(url) || url.endsWith('/widget.js'));
  record(agent, 'agent', (url) => isInboxApi(url) || /\/inbox(-conversation)?\.js$/.test(url));
  // The internal note must never reach the customer's browser, in any response.
  customer.on('response', async (r) => {
    if (!isWidgetApi(r.url()) || !(r.headers()['content-type'] || '').includes('json')) return;
    const body = await r.text().catch(() => '');
    if (body.includes(SECRET_NOTE) && !noteLeaked) noteLeaked = `${r.request().method()} ${r.url()}`;
  });

  // ---- the customer asks for a person ----
  step(`customer: loading ${demoUrl}`);
  const nav = await customer.goto(demoUrl, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT_MS }).catch((e) => e);
  if (nav instanceof Error) return fail(`could not load the demo page: ${first(nav)}`);
  if (nav && !nav.ok()) return fail(`the demo page answered HTTP ${nav.status()}`);
  const launcher = customer.getByTestId('chatapp-launcher');
  try {
    await launcher.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  } catch {
    return fail('the launcher button never appeared (widget.js not loaded, or the config request failed)');
  }
  const sessionResponse = customer
    .waitForResponse((r) => isWidgetApi(r.url(), /\/sessions$/) && r.request().method() === 'POST', { timeout: STEP_TIMEOUT_MS })
    .catch(() => null);
  await launcher.click();
  if (!(await unlessWidgetError(customer, customer.locator('.chatapp-welcome').first(), 'waiting for the welcome message', STEP_TIMEOUT_MS))) return;
  const session = await sessionResponse;
  if (!session) return fail('no POST …/sessions request was made when the chat opened');
  const conversationId = (await session.json().catch(() => null))?.conversation_id;
  if (!conversationId) return fail(`starting the session returned HTTP ${session.status()} without a conversation_id`);
  step(`customer: conversation ${conversationId}`);

  step(`customer: asking "${ASK_FOR_HUMAN}"`);
  const input = customer.getByTestId('chatapp-input');
  await input.click();
  await input.fill(ASK_FOR_HUMAN);
  const turn = customer
    .waitForResponse((r) => isWidgetApi(r.url(), /\/conversations\/[^/]+\/messages$/) && r.request().method() === 'POST', { timeout: ANSWER_TIMEOUT_MS })
    .catch(() => null);
  await input.press('Enter');
  const turnResponse = await turn;
  if (!turnResponse) return fail('no POST …/messages request was made');
  if (turnResponse.status() !== 200) return fail(`the chat turn returned HTTP ${turnResponse.status()}`);
  const handoffShown = customer
    .locator('.chatapp-msg-assistant:not(.chatapp-welcome)', { hasText: /support team/i })
    .or(customer.getByTestId('chatapp-notice').filter({ hasText: /connecting you|member of our team/i }))
    .first();
  if (!(await unlessWidgetError(customer, handoffShown, 'waiting for the handoff message', ANSWER_TIMEOUT_MS))) return;
  step(`customer: handoff shown: "${(await handoffShown.textContent())?.trim().slice(0, 120)}"`);

  const queue = customer.getByTestId('queue-status');
  if (!(await unlessWidgetError(customer, queue, 'waiting for the queue notice (GET …/queue every 10 s while waiting)', STEP_TIMEOUT_MS))) return;
  const queueText = (await queue.textContent())?.trim() ?? '';
  if (!/queue|waiting/i.test(queueText)) return fail(`the queue notice says "${queueText}"`);
  step(`customer: queue notice: "${queueText}"`);

  // ---- the agent signs in, goes online and takes the conversation ----
  step(`agent: loading ${agentUrl}`);
  const agentNav = await agent.goto(agentUrl, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT_MS }).catch((e) => e);
  if (agentNav instanceof Error) return fail(`could not load the agent page: ${first(agentNav)}`);
  if (agentNav && !agentNav.ok()) return fail(`the agent page answered HTTP ${agentNav.status()}`);
  if (!(await inboxWait(agent, agent.getByTestId('email'), 'the sign-in form never appeared (inbox.js not loaded?)'))) return;
  await agent.getByTestId('email').fill(agentEmail);
  await agent.getByTestId('password').fill(agentPassword);
  const login = await expectPost(agent, isInboxApi, /^\/auth\/login$/, () => agent.getByTestId('sign-in').click(), 'signing in');
  if (!login) return;
  const status = agent.getByTestId('status');
  const signedIn = await Promise.race([
    status.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS }).then(() => 'ok'),
    agent.getByTestId('sign-in-error').waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS }).then(() => 'error'),
  ]).catch((e) => `timeout: ${first(e)}`);
  if (signedIn === 'error') return fail(`signing in failed: "${(await agent.getByTestId('sign-in-error').textContent())?.trim()}"`);
  if (signedIn !== 'ok') return fail(`the inbox did not open after signing in (${signedIn})${await inboxBanner(agent)}`);
  step('agent: signed in, offline: the conversation waits in the Queue');

  // Offline, the escalation worker assigns nothing to this agent: the claim is the button's.
  const inQueue = agent.locator(`[data-testid="queue-item"][data-id="${conversationId}"]`);
  if (!(await inboxWait(agent, inQueue, 'the conversation did not appear in the Queue', 20_000))) return;
  await inQueue.click();
  const pane = agent.locator(`[data-testid="conversation"][data-id="${conversationId}"][data-status]`);
  if (!(await inboxWait(agent, pane, 'the conversation did not open'))) return;
  const claim = agent.getByTestId('claim');
  if (!(await claim.isEnabled().catch(() => false))) return fail('the claim button is not enabled on a waiting conversation');
  step('agent: claiming');
  const claimed = agent
    .waitForResponse((r) => isInboxApi(r.url(), /\/claim$/) && r.request().method() === 'POST', { timeout: STEP_TIMEOUT_MS })
    .catch(() => null);
  await claim.click();
  const claimResponse = await claimed;
  if (!claimResponse) return fail('clicking claim made no POST .../claim request');
  if (!claimResponse.ok()) return fail(`claiming returned HTTP ${claimResponse.status()}: ${(await claimResponse.text().catch(() => '')).slice(0, 300)}`);
  step(`agent: claim answered HTTP ${claimResponse.status()}`);

  const mine = agent.locator(`[data-testid="conversation"][data-id="${conversationId}"][data-mine="true"]`);
  if (!(await inboxWait(agent, mine, 'the conversation never became the agent\u2019s own (claim or assignment)'))) return;
  step('agent: the conversation is mine; going online');
  const online = agent
    .waitForResponse((r) => isInboxApi(r.url(), /^\/inbox\/me\/status$/) && r.request().method() === 'PUT', { timeout: STEP_TIMEOUT_MS })
    .catch(() => null);
  await status.selectOption('online');
  const onlineResponse = await online;
  if (!onlineResponse) return fail('choosing "online" made no PUT /inbox/me/status request');
  if (!onlineResponse.ok()) return fail(`going online returned HTTP ${onlineResponse.status()}: ${(await onlineResponse.text().catch(() => '')).slice(0, 300)}`);

  // The customer hears that a person joined, and the queue notice goes.
  const joined = customer.locator('[data-role="system"]', { hasText: /joined the conversation/i }).first();
  if (!(await unlessWidgetError(customer, joined, 'the customer never saw that an agent joined', LIVE_TIMEOUT_MS))) return;
  try {
    await queue.waitFor({ state: 'hidden', timeout: 5000 });
  } catch {
    return fail(`the queue notice stayed after an agent joined: "${(await queue.textContent())?.trim()}"`);
  }
  step(`customer: "${(await joined.textContent())?.trim()}"`);

  // ---- a reply, live on the customer's page ----
  step(`agent: replying "${AGENT_REPLY}"`);
  await agent.getByTestId('reply-box').fill(AGENT_REPLY);
  const send = agent.getByTestId('reply-send');
  // (No waitForFunction here: the inbox page's CSP allows no eval.)
  if (!(await inboxWait(agent, agent.locator('[data-testid="reply-send"]:not([disabled])'), 'the reply button stayed disabled', 5000))) return;
  if (!(await expectPost(agent, isInboxApi, /\/conversations\/[^/]+\/messages$/, () => send.click(), 'sending the reply'))) return;
  const repliedAt = Date.now();
  const reply = customer.locator('[data-role="human_agent"]', { hasText: AGENT_REPLY });
  if (!(await unlessWidgetError(customer, reply.first(), `the customer did not see the agent's reply within ${LIVE_TIMEOUT_MS / 1000} s`, LIVE_TIMEOUT_MS))) return;
  step(`customer: saw the reply after ${((Date.now() - repliedAt) / 1000).toFixed(1)} s, labelled "${(await reply.first().locator('.who').textContent().catch(() => ''))?.trim()}"`);

  // ---- an internal note ----
  step(`agent: adding the note "${SECRET_NOTE}"`);
  await agent.getByTestId('note-box').fill(SECRET_NOTE);
  if (!(await expectPost(agent, isInboxApi, /\/conversations\/[^/]+\/notes$/, () => agent.getByTestId('note-send').click(), 'adding the note'))) return;
  if (!(await inboxWait(agent, agent.locator('[data-role="note"]', { hasText: SECRET_NOTE }).first(), 'the note did not show in the agent\u2019s timeline'))) return;

  // ---- back to the AI ----
  step('agent: handing back to the AI');
  if (!(await expectPost(agent, isInboxApi, /\/handback$/, () => agent.getByTestId('handback').click(), 'handing back'))) return;
  const back = customer
    .locator('[data-role="system"][data-kind="assistant_back"]')
    .or(customer.locator('[data-role="system"]', { hasText: /assistant/i }))
    .first();
  if (!(await unlessWidgetError(customer, back, 'the customer never saw that the assistant is back', LIVE_TIMEOUT_MS))) return;
  step(`customer: "${(await back.textContent())?.trim()}"`);
  if ((await widgetText(customer)).includes(SECRET_NOTE)) return fail('the customer\u2019s widget shows the internal note');

  step(`customer: asking "${QUESTION}"`);
  await input.click();
  await input.fill(QUESTION);
  await input.press('Enter');
  const answer = customer.locator('[data-role="assistant"]:not(.chatapp-welcome)', { hasText: EXPECTED });
  if (!(await unlessWidgetError(customer, answer.first(), `waiting ${ANSWER_TIMEOUT_MS / 1000} s for an AI answer containing "${EXPECTED}"`, ANSWER_TIMEOUT_MS))) return;
  step(`customer: AI answer: "${(await answer.first().locator('.bubble').textContent().catch(() => ''))?.trim().slice(0, 160)}"`);

  // ---- every event exactly once, and the note nowhere ----
  await customer.waitForTimeout(1500); // a late duplicate from the live updates would show by now
  const counts = {
    'the request for a human': await customer.locator('[data-role="user"]', { hasText: ASK_FOR_HUMAN }).count(),
    'the agent\u2019s reply': await reply.count(),
    'the AI answer': await answer.count(),
    'the joined notice': await customer.locator('[data-role="system"]', { hasText: /joined the conversation/i }).count(),
  };
  for (const [what, n] of Object.entries(counts)) {
    if (n !== 1) return fail(`the customer sees ${what} ${n} times, expected once`);
  }
  if ((await widgetText(customer)).includes(SECRET_NOTE)) return fail('the customer\u2019s widget shows the internal note');
  if (noteLeaked) return fail(`the internal note reached the customer's browser in ${noteLeaked}`);

  step('OK: handoff, queue notice, live reply, private note, handback and AI answer all worked');
  finished = true;
  clearTimeout(watchdog);
  await cleanup();
  process.exit(0);
}

run().catch((e) => fail(`unexpected error: ${e?.stack || e}`));
