/*! chatapp inbox — the support agents' page. Plain script, no dependencies, no build step.
 *
 * The local runner serves it at /agent (and this script at /agent/inbox.js); deployed, the two
 * files (inbox.html, inbox.js) can be uploaded side by side to a bucket as they are.
 * The API base: <meta name="chatapp-api-base" content="…"> when set (a deployment fills it in),
 * else the page's own origin. Never from the URL: a crafted link must not make this page send
 * an agent's password elsewhere.
 * All server text is inserted with textContent / text nodes, never innerHTML.
 */
(function () {
  'use strict';

  var LIST_EVERY_MS = 3000;
  var HEARTBEAT_MS = 30000;
  var EVENTS_WAIT_S = 25;
  var TYPING_EVERY_MS = 3000;
  var CUSTOMER_TYPING_MS = 4000;
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  var AUTH_KEY = 'chatapp:inbox:auth';
  var STATUSES = ['online', 'away', 'busy', 'offline'];
  var API = apiBase();

  // ---------- small helpers ----------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] == null) continue;
        if (k === 'text') n.textContent = attrs[k];
        else if (k === 'class') n.className = attrs[k];
        else if (k.slice(0, 2) === 'on') n.addEventListener(k.slice(2), attrs[k]);
        else n.setAttribute(k, attrs[k]);
      }
    }
    (kids || []).forEach(function (c) {
      if (c != null && c !== '') n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return n;
  }
  function noop() {}
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function enc(s) { return encodeURIComponent(String(s)); }
  function str(v) { return v == null ? '' : String(v); }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function save(v) {
    try {
      if (v == null) sessionStorage.removeItem(AUTH_KEY);
      else sessionStorage.setItem(AUTH_KEY, JSON.stringify(v));
    } catch (e) { /* storage unavailable: signed in for this page only */ }
  }
  function loadSaved() {
    try { return JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null'); } catch (e) { return null; }
  }

  /** The API base: fixed by the page's meta tag, else this page's origin. */
  function apiBase() {
    var meta = document.querySelector('meta[name="chatapp-api-base"]');
    var fixed = meta ? str(meta.getAttribute('content')).trim() : '';
    var base = fixed || location.origin;
    try {
      var u = new URL(base, location.href);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http');
      base = u.origin + u.pathname;
    } catch (e) {
      base = location.origin;
    }
    return base.replace(/\/+$/, '');
  }
  function apiOrigin() {
    try { return new URL(API).origin; } catch (e) { return API; }
  }

  function parseTime(ts) {
    var t = ts ? Date.parse(ts) : NaN;
    return isNaN(t) ? null : t;
  }
  function ago(ts) {
    var t = parseTime(ts);
    if (t == null) return '';
    var s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 60) return 'now';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return new Date(t).toLocaleDateString();
  }
  function clock(ts) {
    var t = parseTime(ts);
    if (t == null) return '';
    var d = new Date(t);
    var sameDay = new Date().toDateString() === d.toDateString();
    return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString();
  }
  function when(ts) {
    var t = parseTime(ts);
    return t == null ? '' : new Date(t).toLocaleString();
  }
  function duration(seconds) {
    var s = num(seconds);
    if (s == null) return '';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function humanize(key) {
    var k = str(key).replace(/_/g, ' ');
    return k.charAt(0).toUpperCase() + k.slice(1);
  }
  /** A list out of a list answer, whatever it is wrapped in. */
  function itemsOf(body, key) {
    if (Array.isArray(body)) return body;
    if (!body || typeof body !== 'object') return [];
    var list = (key && body[key]) || body.items || body.data || body.results || body.conversations || body.canned_responses;
    return Array.isArray(list) ? list : [];
  }

  // ---------- HTTP ----------
  function ApiErr(status, code, message) { this.status = status; this.code = code; this.message = message; }
  async function readError(res) {
    var body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    var e = body && body.error;
    var msg = (e && e.message) || ('The server answered ' + res.status + '.');
    if (res.status === 429) {
      var ra = res.headers.get('retry-after');
      if (ra) msg += ' Try again in ' + ra + ' s.';
    }
    return new ApiErr(res.status, (e && e.code) || 'http_' + res.status, msg);
  }
  async function raw(method, path, body, token, signal) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    try {
      return await fetch(API + path, {
        method: method, headers: headers, credentials: 'omit', cache: 'no-store', signal: signal,
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (e) {
      if (e && e.name === 'AbortError') throw new ApiErr(0, 'aborted', 'The request was cancelled.');
      throw new ApiErr(0, 'network', 'Could not reach the server. Check your connection.');
    }
  }
  var EXPIRED = 'Your session has expired. Please sign in again.';
  /** A signed-in call: refreshes the token pair once on 401; if that fails, back to the sign-in form. */
  async function api(method, path, body, signal) {
    if (!auth) throw new ApiErr(401, 'signed_out', 'Please sign in.');
    var used = auth.access_token;
    var res = await raw(method, path, body, used, signal);
    if (res.status === 401) {
      var ok = auth && auth.access_token !== used ? true : await refreshTokens();
      if (ok === null) throw new ApiErr(0, 'network', 'Could not reach the server. Check your connection.');
      if (!ok || !auth) {
        signedOut(EXPIRED);
        throw new ApiErr(401, 'session_expired', EXPIRED);
      }
      res = await raw(method, path, body, auth.access_token, signal);
      if (res.status === 401) {
        signedOut(EXPIRED);
        throw new ApiErr(401, 'session_expired', EXPIRED);
      }
    }
    if (!res.ok) throw await readError(res);
    if (res.status === 204) return null;
    var text = await res.text();
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) {
      throw new ApiErr(res.status, 'bad_response', 'The server sent an answer this page cannot read.');
    }
  }

  // ---------- tokens ----------
  var auth = null;          // {access_token, refresh_token, expires_at (ms), user_id}
  var refreshing = null;    // the refresh in flight: resolves true, false (refused) or null (unreachable)
  var refreshTimer = null;

  function setAuth(t, userId) {
    auth = {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      expires_at: Date.now() + (num(t.expires_in) || 900) * 1000,
      user_id: userId || (auth && auth.user_id) || null
    };
    save(auth);
    scheduleRefresh();
  }
  function scheduleRefresh() {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = null;
    if (!auth) return;
    var inMs = Math.max(1000, (auth.expires_at || 0) - Date.now() - 60000);
    refreshTimer = setTimeout(function () {
      refreshTokens().then(function (ok) {
        if (ok === false) signedOut(EXPIRED);
        else if (ok === null && auth) { refreshTimer = setTimeout(scheduleRefresh, 15000); }
      });
    }, Math.min(inMs, 2147483000));
  }
  function refreshTokens() {
    if (!auth || !auth.refresh_token) return Promise.resolve(false);
    if (refreshing) return refreshing;
    var used = auth.refresh_token;
    refreshing = (async function () {
      var res;
      try { res = await raw('POST', '/auth/refresh', { refresh_token: used }); } catch (e) { return null; }
      if (res.status >= 500) return null;
      if (!res.ok) return false;
      var t = null;
      try { t = await res.json(); } catch (e) { return false; }
      if (!t || !t.access_token) return false;
      if (!auth || auth.refresh_token !== used) return !!auth; // signed out (or in again) meanwhile
      setAuth(t, auth.user_id);
      return true;
    })();
    refreshing.then(function () { refreshing = null; }, function () { refreshing = null; });
    return refreshing;
  }

  // ---------- page state ----------
  var me = { id: null, name: '', role: null };
  var myStatus = 'offline';
  var listTimer = null, heartbeatTimer = null;
  var listsBusy = false, listsAgain = false, listsFailing = false;
  var listSig = { queue: '', mine: '' };
  var canned = [], cannedAt = 0;
  var cur = null;           // the open conversation (see openConversation)
  var people = {};          // colleagues' display names by user id (GET /inbox/agents)
  var peopleAt = 0;
  var bannerTimer = null;

  // ---------- banner ----------
  function showBanner(message, info) {
    var b = $('banner');
    $('banner-text').textContent = message;
    b.className = 'banner' + (info ? ' info' : '');
    b.setAttribute('role', info ? 'status' : 'alert');
    b.hidden = false;
    if (bannerTimer) clearTimeout(bannerTimer);
    bannerTimer = setTimeout(hideBanner, info ? 6000 : 12000);
  }
  function showError(message) { showBanner(message, false); }
  function showInfo(message) { showBanner(message, true); }
  function hideBanner() {
    if (bannerTimer) clearTimeout(bannerTimer);
    bannerTimer = null;
    $('banner').hidden = true;
  }
  function reportError(e) {
    if (!auth || !e || e.code === 'aborted') return; // signed out: the sign-in form says why
    showError(e.message || 'Something went wrong.');
  }

  // ---------- sign in / out ----------
  function showSignIn(message, info) {
    $('workspace').hidden = true;
    $('me').hidden = true;
    $('signin').hidden = false;
    var server = $('signin-server');
    if (apiOrigin() !== location.origin) {
      server.textContent = 'You are signing in to ' + API + ' (not this page\u2019s own server).';
      server.className = 'server elsewhere';
    } else {
      server.textContent = '';
      server.className = 'server muted';
    }
    var err = $('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    err.style.color = info ? 'var(--muted)' : '';
    var email = $('email');
    setTimeout(function () { (email.value ? $('password') : email).focus(); }, 0);
  }

  async function signIn(ev) {
    ev.preventDefault();
    var email = $('email').value.trim(), password = $('password').value;
    var err = $('signin-error');
    if (!email || !password) {
      err.textContent = 'Enter your email and password.';
      err.style.color = '';
      err.hidden = false;
      return;
    }
    var button = $('sign-in');
    button.disabled = true;
    err.hidden = true;
    try {
      var res = await raw('POST', '/auth/login', { email: email, password: password });
      if (!res.ok) throw await readError(res);
      var t = await res.json();
      if (!t || !t.access_token) throw new ApiErr(res.status, 'bad_response', 'The server did not sign you in.');
      setAuth(t, t.user_id);
      $('password').value = '';
      await enter();
    } catch (e) {
      if (!auth) {
        err.textContent = e.message || 'Could not sign in.';
        err.style.color = '';
        err.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  }

  /** Back to the sign-in form: every timer and the open conversation stop. */
  function signedOut(message, info) {
    auth = null;
    save(null);
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = null;
    if (listTimer) clearTimeout(listTimer);
    listTimer = null;
    listGen++;
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
    closeConversation();
    listSig = { queue: '', mine: '' };
    $('queue-list').textContent = '';
    $('mine-list').textContent = '';
    canned = [];
    cannedAt = 0;
    hideBanner();
    showSignIn(message, info);
  }

  async function signOut() {
    var a = auth;
    if (a) {
      // Not assignable once gone (best effort: the server also notices the missing heartbeats).
      if (myStatus !== 'offline') await api('PUT', '/inbox/me/status', { status: 'offline' }).catch(noop);
      if (auth) await raw('POST', '/auth/logout', { refresh_token: auth.refresh_token }, auth.access_token).catch(noop);
    }
    signedOut('You are signed out.', true);
  }

  /** The workspace after signing in (or on a reload with a stored session). */
  async function enter() {
    me.id = auth.user_id || null;
    $('signin').hidden = true;
    $('workspace').hidden = false;
    try {
      applyMe(await api('GET', '/inbox/me'));
    } catch (e) {
      if (!auth) return;
      if (e.status === 403) { signedOut(e.message); return; } // not someone who works the inbox
      reportError(e);
    }
    if (!auth) return;
    // The status control appears once it shows the stored status (a change made before that
    // would be overwritten by the late answer).
    $('me').hidden = false;
    api('GET', '/auth/me').then(applyUser, noop);
    loadPeople(true);
    startLists();
    loadCanned(true);
    syncHeartbeat();
    var wanted = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (/^[0-9a-f-]{36}$/i.test(wanted)) openConversation(wanted);
  }

  function statusOf(m) {
    if (!m || typeof m !== 'object') return null;
    var candidates = [m.status, m.agent_status, m.availability, m.presence, m.user && m.user.status];
    for (var i = 0; i < candidates.length; i++) {
      var v = candidates[i];
      if (typeof v === 'string' && STATUSES.indexOf(v) !== -1) return v;
      if (v && typeof v === 'object' && typeof v.status === 'string' && STATUSES.indexOf(v.status) !== -1) return v.status;
    }
    return null;
  }
  function applyMe(m) {
    if (!m || typeof m !== 'object') return;
    var u = m.user && typeof m.user === 'object' ? m.user : m;
    me.id = u.id || m.user_id || me.id;
    if (u.name || u.email) {
      me.name = str(u.name || u.email);
      $('me-name').textContent = me.name;
    }
    setStatusUi(statusOf(m) || 'offline');
  }
  function applyUser(m) {
    var u = m && m.user && typeof m.user === 'object' ? m.user : null;
    if (!u) return;
    me.id = u.id || me.id;
    me.name = str(u.name || u.email);
    me.role = u.role || me.role;
    $('me-name').textContent = me.name;
  }
  /** Colleagues' names, for note authors and assignees (at most every 30 s unless forced). */
  async function loadPeople(force) {
    if (!auth || (!force && Date.now() - peopleAt < 30000)) return;
    peopleAt = Date.now();
    try {
      itemsOf(await api('GET', '/inbox/agents?limit=100')).forEach(function (a) {
        if (a && a.user_id) people[a.user_id] = str(a.display_name || a.name || a.email);
      });
    } catch (e) { /* names are a nicety */ }
  }
  function personName(id) {
    if (!id) return '';
    if (!people[id]) loadPeople(false);
    return people[id] || '';
  }
  function setStatusUi(s) {
    myStatus = s;
    $('status').value = s;
    $('me-dot').className = 'dot ' + s;
  }

  // ---------- my status + heartbeat ----------
  async function changeStatus() {
    var select = $('status');
    var want = select.value, before = myStatus;
    select.disabled = true;
    try {
      var r = await api('PUT', '/inbox/me/status', { status: want });
      setStatusUi(statusOf(r) || want);
    } catch (e) {
      reportError(e);
      if (auth) setStatusUi(before);
    } finally {
      select.disabled = false;
      syncHeartbeat();
      refreshLists();
    }
  }
  function syncHeartbeat() {
    var on = !!auth && (myStatus === 'online' || myStatus === 'busy');
    if (on && !heartbeatTimer) heartbeatTimer = setInterval(heartbeat, HEARTBEAT_MS);
    if (!on && heartbeatTimer) { clearInterval(heartbeatTimer); heartbeatTimer = null; }
  }
  function heartbeat() {
    if (!auth || (myStatus !== 'online' && myStatus !== 'busy')) return;
    api('POST', '/inbox/me/heartbeat').catch(function (e) {
      if (e.status && e.status !== 401) reportError(e);
    });
  }

  // ---------- the two lists ----------
  var listGen = 0;
  function startLists() {
    var gen = ++listGen; // a chain left from before a sign-out ends at its next turn
    if (listTimer) clearTimeout(listTimer);
    (async function tick() {
      listTimer = null;
      await refreshLists();
      if (auth && gen === listGen) listTimer = setTimeout(tick, LIST_EVERY_MS);
    })();
  }
  async function refreshLists() {
    if (!auth) return;
    if (listsBusy) { listsAgain = true; return; }
    listsBusy = true;
    try {
      var r = await Promise.all([
        api('GET', '/inbox/conversations?view=unassigned&status=waiting_human&limit=50'),
        api('GET', '/inbox/conversations?view=mine&limit=50')
      ]);
      if (!auth) return;
      renderList('queue', itemsOf(r[0], 'conversations'));
      renderList('mine', itemsOf(r[1], 'conversations'));
      listsFailing = false;
    } catch (e) {
      // Said once, not every 3 s; cleared by the next success.
      if (auth && !listsFailing && e.code !== 'aborted') {
        listsFailing = true;
        showError('Could not refresh the conversation lists: ' + e.message);
      }
    } finally {
      listsBusy = false;
      if (listsAgain && auth) { listsAgain = false; refreshLists(); }
    }
  }

  function customerName(c, customer) {
    c = c || {};
    customer = customer || (c.customer && typeof c.customer === 'object' ? c.customer : {});
    return str(c.customer_name || customer.name || c.customer_email || customer.email) ||
      ('Visitor ' + str(c.id).slice(0, 8));
  }
  function previewOf(c) {
    var m = c.last_message;
    if (m && typeof m === 'object') m = m.content;
    var esc = c.escalation && typeof c.escalation === 'object' ? c.escalation : {};
    return str(m || c.preview || c.last_message_preview || c.escalation_reason || esc.reason || c.summary)
      .replace(/\s+/g, ' ').slice(0, 140);
  }
  function priorityOf(c) {
    var esc = c.escalation && typeof c.escalation === 'object' ? c.escalation : {};
    return str(c.priority || c.escalation_priority || esc.priority) || null;
  }
  function lastActivity(c, kind) {
    var m = c.last_message && typeof c.last_message === 'object' ? c.last_message : {};
    if (kind === 'queue' && c.waiting_since) return c.waiting_since; // how long they have waited
    return c.last_message_at || m.created_at || c.updated_at || c.waiting_since || c.created_at;
  }

  function renderList(kind, items) {
    var list = $(kind + '-list');
    $(kind + '-count').textContent = String(items.length);
    $(kind + '-empty').hidden = items.length > 0;
    if (kind === 'queue') document.title = (items.length ? '(' + items.length + ') ' : '') + 'Inbox \u2014 chatapp';
    var rows = items.filter(function (c) { return c && c.id; }).map(function (c) {
      return { id: str(c.id), who: customerName(c), preview: previewOf(c), at: ago(lastActivity(c, kind)), prio: priorityOf(c), status: str(c.status) };
    });
    var sig = JSON.stringify(rows);
    if (sig === listSig[kind]) { markCurrent(); return; }
    listSig[kind] = sig;
    // Keyed by conversation: an item that did not change stays the same element (a click or
    // the keyboard focus on it survives the refresh), others are replaced in place.
    var old = {};
    Array.prototype.forEach.call(list.children, function (li) { old[li.getAttribute('data-id')] = li; });
    rows.forEach(function (r, i) {
      var rowSig = JSON.stringify(r);
      var li = old[r.id];
      delete old[r.id];
      if (!li) {
        li = el('li', { 'data-id': r.id });
      }
      if (li.getAttribute('data-sig') !== rowSig) {
        var hadFocus = li.contains(document.activeElement);
        li.textContent = '';
        li.appendChild(listItem(kind, r));
        li.setAttribute('data-sig', rowSig);
        if (hadFocus) li.firstChild.focus();
      }
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    Object.keys(old).forEach(function (id) { old[id].remove(); });
    markCurrent();
  }
  function listItem(kind, r) {
    return el('button', {
      type: 'button', class: 'item', 'data-testid': kind + '-item', 'data-id': r.id,
      onclick: function () { openConversation(r.id); }
    }, [
      el('span', { class: 'who', text: r.who }),
      el('span', { class: 'when', text: r.at }),
      el('span', { class: 'preview' }, [
        r.prio ? el('span', { class: 'badge p-' + r.prio, text: r.prio }) : null,
        r.prio ? ' ' : null,
        r.preview || (kind === 'queue' ? 'Waiting for an agent' : r.status.replace(/_/g, ' '))
      ])
    ]);
  }
  function markCurrent() {
    var items = document.querySelectorAll('.item[data-id]');
    for (var i = 0; i < items.length; i++) {
      if (cur && items[i].getAttribute('data-id') === cur.id) items[i].setAttribute('aria-current', 'true');
      else items[i].removeAttribute('aria-current');
    }
  }

  // ---------- one conversation ----------
  function closeConversation() {
    var c = cur;
    cur = null;
    if (c) {
      if (c.loop) {
        c.loop.stopped = true;
        if (c.loop.ctrl) { try { c.loop.ctrl.abort(); } catch (e) { /* done already */ } }
      }
      if (c.typingTimer) clearTimeout(c.typingTimer);
      if (c.reloadTimer) clearTimeout(c.reloadTimer);
    }
    $('conversation').hidden = true;
    $('placeholder').hidden = false;
    $('customer-typing').hidden = true;
    markCurrent();
  }

  async function openConversation(id) {
    if (!id || !auth) return;
    if (cur && cur.id === id) { reload(cur); return; }
    closeConversation();
    var c = cur = {
      id: id, conv: { id: id }, customer: null, escalation: null, seen: {}, names: {},
      lastSeq: 0, detailSeq: 0, loop: null, typingSentAt: 0, typingTimer: null, reloadTimer: null,
      acting: false, sending: false, noting: false, gone: false
    };
    markCurrent();
    try { history.replaceState(null, '', location.pathname + location.search + '#' + enc(id)); } catch (e) { /* file:// */ }
    $('placeholder').hidden = true;
    var pane = $('conversation');
    pane.hidden = false;
    pane.setAttribute('data-id', id);
    pane.removeAttribute('data-status');
    pane.setAttribute('data-mine', 'false');
    $('timeline').textContent = '';
    $('details').textContent = '';
    $('conv-title').textContent = 'Loading\u2026';
    $('conv-meta').textContent = '';
    $('reply-box').value = '';
    $('note-box').value = '';
    updateActions(c);
    var d;
    try {
      d = await api('GET', '/inbox/conversations/' + enc(id));
    } catch (e) {
      if (cur !== c) return;
      $('conv-title').textContent = 'This conversation could not be opened';
      c.gone = true;
      updateActions(c);
      reportError(e);
      return;
    }
    if (cur !== c) return;
    applyDetail(c, d);
    // Live from the event the detail already holds, with a small overlap: whatever it showed
    // is recognised by id, so nothing appears twice and nothing committed meanwhile is missed.
    var seq = num(c.conv.last_event_seq) || 0;
    c.detailSeq = seq;
    c.lastSeq = Math.max(0, seq - 20);
    startEvents(c);
  }

  async function reload(c) {
    var d;
    try {
      d = await api('GET', '/inbox/conversations/' + enc(c.id));
    } catch (e) {
      if (cur !== c) return;
      if (e.status === 403 || e.status === 404) {
        c.gone = true;
        updateActions(c);
        showInfo('You no longer have access to this conversation (it may have been transferred).');
      } else {
        reportError(e);
      }
      return;
    }
    if (cur === c) applyDetail(c, d);
  }
  function scheduleReload(c) {
    if (c.reloadTimer) clearTimeout(c.reloadTimer);
    c.reloadTimer = setTimeout(function () { c.reloadTimer = null; if (cur === c) reload(c); }, 250);
  }

  function applyDetail(c, d) {
    d = d || {};
    var conv = d.conversation && typeof d.conversation === 'object' ? d.conversation : d;
    c.conv = conv;
    c.conv.id = c.conv.id || c.id;
    c.customer = d.customer && typeof d.customer === 'object' ? d.customer : c.customer;
    c.escalation = d.escalation && typeof d.escalation === 'object' ? d.escalation : null;
    renderHead(c);
    renderDetails(c);
    var entries = [];
    (Array.isArray(d.messages) ? d.messages : []).forEach(function (m) { entries.push({ note: false, m: m }); });
    (Array.isArray(d.notes) ? d.notes : []).forEach(function (n) { entries.push({ note: true, m: n }); });
    entries.sort(function (a, b) { return (parseTime(a.m && a.m.created_at) || 0) - (parseTime(b.m && b.m.created_at) || 0); });
    entries.forEach(function (x) { if (x.note) addNote(c, x.m); else addMessage(c, x.m); });
  }

  function isMine(c) {
    return !!c && !!me.id && c.conv.status === 'with_human' && str(c.conv.assigned_agent_id) === str(me.id);
  }
  function assigneeName(c) {
    var id = c.conv.assigned_agent_id;
    if (!id) return null;
    if (str(id) === str(me.id)) return 'you';
    return str(c.conv.assigned_agent_name || c.names[id] || personName(id)) || 'a colleague';
  }

  function renderHead(c) {
    var conv = c.conv, pane = $('conversation');
    $('conv-title').textContent = customerName(conv, c.customer);
    var meta = $('conv-meta');
    meta.textContent = '';
    var status = str(conv.status) || 'unknown';
    meta.appendChild(el('span', { class: 'badge s-' + status, 'data-testid': 'conv-status', text: status.replace(/_/g, ' ') }));
    var prio = priorityOf(conv) || (c.escalation && c.escalation.priority);
    if (prio) meta.appendChild(el('span', { class: 'badge p-' + prio, text: prio + ' priority' }));
    if (conv.channel) meta.appendChild(el('span', { class: 'muted', text: 'via ' + conv.channel }));
    var who = assigneeName(c);
    meta.appendChild(el('span', { class: 'muted', text: who ? 'assigned to ' + who : 'unassigned' }));
    if (conv.snoozed_until) meta.appendChild(el('span', { class: 'muted', text: 'snoozed until ' + when(conv.snoozed_until) }));
    pane.setAttribute('data-status', status);
    pane.setAttribute('data-mine', isMine(c) ? 'true' : 'false');
    updateActions(c);
  }

  function updateActions(c) {
    var open = !!c && cur === c && !c.gone && !!c.conv.status;
    var mine = open && isMine(c);
    var status = open ? c.conv.status : null;
    var busy = !!c && c.acting;
    var closed = status === 'resolved' || status === 'abandoned';
    $('claim').disabled = !open || busy || mine || closed;
    $('release').disabled = !open || busy || !mine;
    $('handback').disabled = !open || busy || !(mine || status === 'waiting_human');
    $('resolve').disabled = !open || busy || !(mine || status === 'waiting_human');
    $('reply-send').disabled = !open || !mine || (!!c && c.sending);
    $('note-send').disabled = !open || (!!c && c.noting);
    $('canned').disabled = !open;
    var hint = '';
    if (open && !mine) {
      hint = status === 'with_human' ? 'Assigned to ' + assigneeName(c) + '.' : 'Claim the conversation to reply.';
    }
    $('reply-hint').textContent = hint;
  }

  function renderDetails(c) {
    var box = $('details');
    box.textContent = '';
    var conv = c.conv, cust = c.customer || {};
    function section(title, testid, rows) {
      var dl = el('dl');
      rows.forEach(function (r) {
        if (r[1] == null || r[1] === '') return;
        dl.appendChild(el('dt', { text: r[0] }));
        dl.appendChild(el('dd', { text: str(r[1]) }));
      });
      if (!dl.children.length) dl.appendChild(el('dd', { class: 'muted', text: 'Nothing known.' }));
      box.appendChild(el('section', { 'data-testid': testid }, [el('h3', { text: title }), dl]));
    }
    var customerRows = [
      ['Name', cust.name || conv.customer_name],
      ['Email', cust.email || conv.customer_email],
      ['Phone', cust.phone],
      ['Customer id', cust.external_id || cust.identifier]
    ];
    var shown = { id: 1, company_id: 1, name: 1, email: 1, phone: 1, external_id: 1, identifier: 1, metadata: 1,
      created_at: 1, updated_at: 1, deleted_at: 1, last_seen_at: 1 };
    Object.keys(cust).forEach(function (k) {
      var v = cust[k];
      if (shown[k] || v == null || typeof v === 'object') return;
      customerRows.push([humanize(k), v]);
    });
    customerRows.push(['First seen', when(cust.created_at)], ['Last seen', when(cust.last_seen_at)]);
    section('Customer', 'customer-details', customerRows);

    var meta = cust.metadata && typeof cust.metadata === 'object' ? cust.metadata
      : (conv.metadata && typeof conv.metadata === 'object' ? conv.metadata : {});
    var convRows = [
      ['Started', when(conv.created_at)],
      ['Channel', conv.channel],
      ['Identity', meta.verified === true ? 'verified' : (meta.verified === false ? 'not verified' : null)],
      ['Labels', Array.isArray(conv.labels) && conv.labels.length ? conv.labels.join(', ') : null],
      ['Messages', num(conv.message_count) != null ? conv.message_count : (num(conv.total_messages) != null ? conv.total_messages : null)]
    ];
    var site = meta.site && typeof meta.site === 'object' ? meta.site : {};
    Object.keys(site).slice(0, 12).forEach(function (k) {
      var v = site[k];
      if (v != null && typeof v !== 'object') convRows.push([humanize(k), v]);
    });
    section('Conversation', 'conversation-details', convRows);

    if (c.escalation) {
      var e = c.escalation;
      section('Escalation', 'escalation', [
        ['Reason', e.reason],
        ['Priority', e.priority],
        ['Trigger', e.trigger_type ? str(e.trigger_type).replace(/_/g, ' ') : null],
        ['Status', e.status ? str(e.status).replace(/_/g, ' ') : null],
        ['Since', when(e.queued_at || e.created_at)],
        ['Waited', duration(e.wait_time)],
        ['First reply after', duration(e.first_response_time)],
        ['Handled in', duration(e.handle_time)],
        ['Handed over', num(e.reassign_count) ? e.reassign_count + ' time(s) again' : null]
      ]);
    }
  }

  // ---------- the timeline ----------
  function appendEntry(node) {
    var list = $('timeline');
    var nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.appendChild(node);
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }
  function roleLabel(c, m) {
    switch (m.role) {
      case 'user': return customerName(c.conv, c.customer);
      case 'assistant': return 'AI assistant';
      case 'human_agent':
        if (m.sender_id && str(m.sender_id) === str(me.id)) return 'You';
        return str(m.sender_name || c.names[m.sender_id] || personName(m.sender_id)) || 'Support agent';
      default: return '';
    }
  }
  function addMessage(c, m) {
    if (!m || !m.id || c.seen[m.id]) return;
    c.seen[m.id] = true;
    if (m.role === 'tool' || typeof m.content !== 'string') return;
    var label = roleLabel(c, m), at = clock(m.created_at);
    appendEntry(el('li', { class: 'msg', 'data-role': str(m.role), 'data-id': str(m.id), 'data-testid': 'message' }, [
      m.role === 'system' ? null : el('span', { class: 'label', text: label + (at ? ' \u00b7 ' + at : '') }),
      el('div', { class: 'text', text: m.content })
    ]));
  }
  function addNote(c, n) {
    if (!n || !n.id || c.seen['note:' + n.id]) return;
    c.seen['note:' + n.id] = true;
    var author = n.user_id && str(n.user_id) === str(me.id) ? 'you'
      : str(n.user_name || c.names[n.user_id] || personName(n.user_id)) || 'a colleague';
    var at = clock(n.created_at);
    appendEntry(el('li', { class: 'msg', 'data-role': 'note', 'data-id': str(n.id), 'data-testid': 'note' }, [
      el('span', { class: 'label', text: 'Internal note by ' + author + (at ? ' \u00b7 ' + at : '') }),
      el('div', { class: 'text', text: str(n.content) })
    ]));
  }
  function showCustomerTyping(c) {
    $('customer-typing').hidden = false;
    if (c.typingTimer) clearTimeout(c.typingTimer);
    c.typingTimer = setTimeout(function () { c.typingTimer = null; if (cur === c) $('customer-typing').hidden = true; },
      CUSTOMER_TYPING_MS);
  }
  function hideCustomerTyping(c) {
    if (c.typingTimer) clearTimeout(c.typingTimer);
    c.typingTimer = null;
    $('customer-typing').hidden = true;
  }

  // ---------- live updates: the conversation's events, long-polled ----------
  function startEvents(c) {
    var loop = c.loop = { stopped: false, ctrl: null };
    (async function () {
      var failures = 0;
      while (!loop.stopped && cur === c && auth) {
        var began = Date.now(), got = 0;
        try {
          got = await pollEvents(c, loop);
          failures = 0;
        } catch (e) {
          if (loop.stopped || cur !== c || !auth) break;
          if (e.status === 401) break; // signed out: the sign-in form is showing
          if (e.status === 403 || e.status === 404) {
            c.gone = true;
            updateActions(c);
            showInfo('You no longer have access to this conversation (it may have been transferred).');
            break;
          }
          failures++;
          await sleep(BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1] + Math.floor(Math.random() * 500));
          continue;
        }
        if (!got && Date.now() - began < 1000) await sleep(1000); // a server that does not wait
      }
    })();
  }

  async function pollEvents(c, loop) {
    var ctrl = loop.ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, (EVENTS_WAIT_S + 15) * 1000) : null;
    var data;
    try {
      data = await api('GET', '/inbox/conversations/' + enc(c.id) + '/events?after=' + enc(c.lastSeq) +
        '&wait=' + EVENTS_WAIT_S, undefined, ctrl ? ctrl.signal : undefined);
    } finally {
      if (timer) clearTimeout(timer);
      loop.ctrl = null;
    }
    if (loop.stopped || cur !== c) return 0;
    var list = data && Array.isArray(data.events) ? data.events : [];
    var fresh = 0;
    list.forEach(function (ev) {
      if (!ev || typeof ev.seq !== 'number' || ev.seq <= c.lastSeq) return;
      c.lastSeq = ev.seq;
      fresh++;
      try { onEvent(c, ev); } catch (e) { console.error('[inbox]', e); }
    });
    if (!list.length && data && typeof data.last_seq === 'number' && data.last_seq > c.lastSeq) c.lastSeq = data.last_seq;
    // The answer also says the conversation's status now, whichever event changed it.
    if (data && typeof data.status === 'string' && data.status !== c.conv.status) {
      patch(c, { status: data.status });
      scheduleReload(c);
      refreshLists();
    }
    return fresh;
  }

  function onEvent(c, ev) {
    var d = ev.data && typeof ev.data === 'object' ? ev.data : {};
    var type = str(ev.type);
    var isNew = ev.seq > c.detailSeq; // older ones are only the overlap with what the detail showed
    switch (type) {
      case 'message.created':
        if (d.role === 'user') hideCustomerTyping(c);
        addMessage(c, d);
        break;
      case 'note.created':
        addNote(c, d);
        break;
      case 'typing':
        if (isNew && d.by === 'customer' && Date.now() - (parseTime(ev.created_at) || Date.now()) < 30000) showCustomerTyping(c);
        break;
      case 'conversation.assigned':
      case 'conversation.transferred':
        if (d.user_id && d.user_name) c.names[d.user_id] = str(d.user_name);
        if (isNew) patch(c, { status: str(d.status) || 'with_human', assigned_agent_id: d.user_id || null, assigned_agent_name: d.user_name || null });
        break;
      case 'conversation.escalated':
      case 'conversation.queued':
        if (isNew) patch(c, { status: str(d.status) || 'waiting_human', assigned_agent_id: null });
        break;
      case 'conversation.resolved':
        if (isNew) patch(c, { status: str(d.status) || 'resolved', assigned_agent_id: null });
        break;
      case 'conversation.handed_back':
        if (isNew) patch(c, { status: str(d.status) || 'active', assigned_agent_id: null });
        break;
      case 'conversation.reopened':
        if (isNew) patch(c, { status: str(d.status) || 'active' });
        break;
      case 'conversation.snoozed':
        if (isNew) patch(c, { snoozed_until: d.until || d.snoozed_until || null });
        break;
      default:
        break;
    }
    if (isNew && type.indexOf('conversation.') === 0) {
      // The event said what changed; the detail (escalation times, names) is read again to be sure.
      scheduleReload(c);
      refreshLists();
    }
  }
  function patch(c, fields) {
    for (var k in fields) if (Object.prototype.hasOwnProperty.call(fields, k)) c.conv[k] = fields[k];
    renderHead(c);
  }

  // ---------- actions ----------
  async function act(name) {
    var c = cur;
    if (!c || c.acting || c.gone) return;
    c.acting = true;
    updateActions(c);
    try {
      await api('POST', '/inbox/conversations/' + enc(c.id) + '/' + name);
    } catch (e) {
      if (cur === c) reportError(e);
    } finally {
      c.acting = false;
      if (cur === c) {
        updateActions(c);
        await reload(c); // the server's word on who has it now, whether or not that worked
      }
      refreshLists();
    }
  }

  async function sendReply() {
    var c = cur, box = $('reply-box');
    if (!c || c.sending || $('reply-send').disabled) return;
    var text = box.value.trim();
    if (!text) { box.focus(); return; }
    c.sending = true;
    updateActions(c);
    // The same text sent again after a failure is the same reply: the server answers the stored one.
    if (!c.pendingReply || c.pendingReply.text !== text) c.pendingReply = { text: text, id: clientId() };
    try {
      var r = await api('POST', '/inbox/conversations/' + enc(c.id) + '/messages',
        { content: text, client_message_id: c.pendingReply.id });
      c.pendingReply = null;
      if (cur === c) {
        if (box.value.trim() === text) box.value = '';
        var m = r && r.message && typeof r.message === 'object' ? r.message : r;
        if (m && m.id) {
          if (!m.role) m.role = 'human_agent';
          if (!m.sender_id) m.sender_id = me.id;
          if (m.content == null) m.content = text;
          addMessage(c, m);
        }
      }
    } catch (e) {
      if (cur === c) reportError(e);
    } finally {
      c.sending = false;
      if (cur === c) updateActions(c);
    }
  }

  async function sendNote() {
    var c = cur, box = $('note-box');
    if (!c || c.noting || c.gone) return;
    var text = box.value.trim();
    if (!text) { box.focus(); return; }
    c.noting = true;
    updateActions(c);
    try {
      var r = await api('POST', '/inbox/conversations/' + enc(c.id) + '/notes', { content: text });
      if (cur === c) {
        if (box.value.trim() === text) box.value = '';
        var n = r && r.note && typeof r.note === 'object' ? r.note : r;
        if (n && n.id) {
          if (n.content == null) n.content = text;
          if (!n.user_id) n.user_id = me.id;
          addNote(c, n);
        }
      }
    } catch (e) {
      if (cur === c) reportError(e);
    } finally {
      c.noting = false;
      if (cur === c) updateActions(c);
    }
  }

  /** Tells the customer an agent is typing: at most every few seconds, only in one's own conversation. */
  function agentTyping() {
    var c = cur;
    if (!c || !isMine(c) || !$('reply-box').value.trim()) return;
    var now = Date.now();
    if (now - c.typingSentAt < TYPING_EVERY_MS) return;
    c.typingSentAt = now;
    api('POST', '/inbox/conversations/' + enc(c.id) + '/typing').catch(noop);
  }

  // ---------- canned responses ----------
  async function loadCanned(force) {
    if (!auth) return;
    if (!force && canned.length && Date.now() - cannedAt < 60000) return;
    try {
      var r = await api('GET', '/inbox/canned-responses?limit=100');
      canned = itemsOf(r, 'canned_responses').filter(function (x) { return x && x.id && x.is_active !== false; });
      cannedAt = Date.now();
      renderCanned();
    } catch (e) {
      if (e.status && e.status !== 401 && e.status !== 404) reportError(e);
    }
  }
  function shortcutOf(x) { return str(x.shortcut).trim().replace(/^\//, '').toLowerCase(); }
  function renderCanned() {
    var select = $('canned');
    var keep = select.value;
    select.textContent = '';
    select.appendChild(el('option', { value: '', text: canned.length ? 'Canned responses\u2026' : 'No canned responses' }));
    canned.forEach(function (x) {
      var sc = shortcutOf(x);
      select.appendChild(el('option', { value: str(x.id), text: str(x.title || x.name || sc || 'Untitled') + (sc ? '  (/' + sc + ')' : '') }));
    });
    select.value = keep;
  }
  /** The canned response rendered for this conversation, put into the reply box (in place of `replacing`). */
  async function insertCanned(id, replacing) {
    var c = cur;
    if (!c || !id) return;
    var r;
    try {
      r = await api('POST', '/inbox/canned-responses/' + enc(id) + '/render', { conversation_id: c.id });
    } catch (e) {
      if (cur === c) reportError(e);
      return;
    }
    if (cur !== c) return;
    var text = r && typeof r.content === 'string' ? r.content : '';
    var box = $('reply-box');
    var start = box.selectionStart, end = box.selectionEnd;
    if (replacing && box.value.slice(replacing.start, replacing.start + replacing.token.length) === replacing.token) {
      start = replacing.start;
      end = replacing.start + replacing.token.length;
    }
    if (start == null || end == null) start = end = box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    var pos = start + text.length;
    box.focus();
    try { box.setSelectionRange(pos, pos); } catch (e) { /* not focusable */ }
  }
  function onReplyKey(e) {
    var box = $('reply-box');
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendReply();
      return;
    }
    if (e.key === 'Tab' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      var end = box.selectionEnd;
      if (box.selectionStart !== end) return;
      var m = /(^|\s)\/([^\s/]{1,60})$/.exec(box.value.slice(0, end));
      if (!m) return; // an ordinary Tab: on to the next control
      var word = m[2].toLowerCase();
      var hit = null;
      for (var i = 0; i < canned.length; i++) if (shortcutOf(canned[i]) === word) { hit = canned[i]; break; }
      if (!hit) return;
      e.preventDefault();
      var token = '/' + m[2];
      insertCanned(str(hit.id), { start: end - token.length, token: token });
    }
  }

  // ---------- wiring ----------
  function boot() {
    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('status').addEventListener('change', changeStatus);
    $('banner-close').addEventListener('click', hideBanner);
    $('claim').addEventListener('click', function () { act('claim'); });
    $('release').addEventListener('click', function () { act('release'); });
    $('handback').addEventListener('click', function () { act('handback'); });
    $('resolve').addEventListener('click', function () { act('resolve'); });
    $('reply-send').addEventListener('click', sendReply);
    $('note-send').addEventListener('click', sendNote);
    var reply = $('reply-box');
    reply.addEventListener('keydown', onReplyKey);
    reply.addEventListener('input', agentTyping);
    reply.addEventListener('focus', function () { loadCanned(false); });
    $('note-box').addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); sendNote(); }
    });
    var select = $('canned');
    select.addEventListener('focus', function () { loadCanned(false); });
    select.addEventListener('change', function () {
      var id = select.value;
      select.value = '';
      if (id) insertCanned(id, null);
    });
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible' && auth) { heartbeat(); refreshLists(); }
    });

    var stored = loadSaved();
    if (stored && stored.access_token && stored.refresh_token) {
      auth = stored;
      scheduleRefresh();
      enter();
    } else {
      showSignIn();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
