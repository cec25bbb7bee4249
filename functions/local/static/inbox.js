/*! chatapp inbox — the support agents' page. Plain script, no dependencies, no build step.
 *
 * Two scripts, loaded in this order: this one (the API client, signing in, the agent's status
 * and heartbeats, the two conversation lists) and inbox-conversation.js (the open conversation).
 * They share one object, window.ChatappInbox, which this script creates; the second adds to it
 * and starts the page (boot, below) once both are loaded.
 * The local runner serves the page at /agent (and the scripts at /agent/inbox.js and
 * /agent/inbox-conversation.js); deployed, the three files (inbox.html, inbox.js,
 * inbox-conversation.js) can be uploaded side by side to a bucket as they are.
 * The API base: <meta name="chatapp-api-base" content="…"> when set (a deployment fills it in),
 * else the page's own origin. Never from the URL: a crafted link must not make this page send
 * an agent's password elsewhere.
 * All server text is inserted with textContent / text nodes, never innerHTML.
 */
(function () {
  'use strict';

  var ns = window.ChatappInbox = {};
  var LIST_EVERY_MS = 3000;
  var HEARTBEAT_MS = 30000;
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
    ns.closeConversation();
    listSig = { queue: '', mine: '' };
    $('queue-list').textContent = '';
    $('mine-list').textContent = '';
    ns.forgetCanned();
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
    ns.loadCanned(true);
    syncHeartbeat();
    var wanted = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (/^[0-9a-f-]{36}$/i.test(wanted)) ns.openConversation(wanted);
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
    if (sig === listSig[kind]) { ns.markCurrent(); return; }
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
    ns.markCurrent();
  }
  function listItem(kind, r) {
    return el('button', {
      type: 'button', class: 'item', 'data-testid': kind + '-item', 'data-id': r.id,
      onclick: function () { ns.openConversation(r.id); }
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

  // ---------- wiring ----------
  /** Started by inbox-conversation.js once both scripts are loaded (it wires its own controls). */
  function boot() {
    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('status').addEventListener('change', changeStatus);
    $('banner-close').addEventListener('click', hideBanner);
    ns.wireConversation();
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

  // ---------- what inbox-conversation.js uses ----------
  ns.$ = $;
  ns.el = el;
  ns.noop = noop;
  ns.enc = enc;
  ns.str = str;
  ns.num = num;
  ns.parseTime = parseTime;
  ns.itemsOf = itemsOf;
  ns.api = api;
  ns.signedIn = function () { return !!auth; };
  ns.me = me; // the same object throughout: only its fields change
  ns.personName = personName;
  ns.showInfo = showInfo;
  ns.reportError = reportError;
  ns.refreshLists = refreshLists;
  ns.customerName = customerName;
  ns.priorityOf = priorityOf;
  ns.boot = boot;
})();
