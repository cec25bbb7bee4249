/*! chatapp embeddable chat widget — self-contained, no dependencies.
 *
 *   <script src="https://HOST/widget.js" data-agent-id="UUID" data-api-base="https://HOST" async></script>
 *
 * Optional, set by the site before the script loads:
 *   window.ChatappIdentity = { identifier, hash, name, email }   (hash = hex HMAC-SHA256 of identifier)
 * Exposes window.Chatapp = { open(), close(), toggle() } once loaded.
 * All server text is inserted with textContent / text nodes, never innerHTML.
 */
(function () {
  'use strict';

  var script = document.currentScript ||
    document.querySelector('script[data-agent-id][src*="widget.js"]');
  if (!script) return;
  var agentId = (script.getAttribute('data-agent-id') || '').trim();
  if (!agentId) { console.warn('[chatapp] data-agent-id is missing'); return; }
  var apiBase = (script.getAttribute('data-api-base') || '').trim();
  if (!apiBase) {
    try { apiBase = new URL(script.src, location.href).origin; } catch (e) { apiBase = location.origin; }
  }
  apiBase = apiBase.replace(/\/+$/, '');
  var loaded = window.__chatappLoaded = window.__chatappLoaded || {};
  if (loaded[agentId]) return;
  loaded[agentId] = true;

  var STORE_KEY = 'chatapp:session:' + agentId;
  var CLOSED_KEY = 'chatapp:closed:' + agentId;
  var DEFAULT_WELCOME = 'Hi! How can we help you today?';

  // ---------- small helpers ----------
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
    (kids || []).forEach(function (c) { if (c) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return n;
  }
  function store(key, val) {
    try {
      if (val == null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, JSON.stringify(val));
    } catch (e) { /* storage unavailable: the session lasts for this page only */ }
  }
  function load(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch (e) { return null; }
  }
  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function safeColor(c) {
    c = String(c || '').trim();
    if (/^#([0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(c)) return c;
    if (window.CSS && CSS.supports && /^[a-z0-9#(),.%\s-]{1,40}$/i.test(c) && CSS.supports('color', c)) return c;
    return '#007bff';
  }
  function textOn(c) {
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c);
    if (!m) return '#fff';
    var h = m[1].length === 3 ? m[1].replace(/./g, '$&$&') : m[1];
    var rgb = [0, 2, 4].map(function (i) {
      var v = parseInt(h.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return lum > 0.45 ? '#111' : '#fff';
  }
  function ApiErr(status, code, message, network) {
    this.status = status; this.code = code; this.message = message; this.network = !!network;
  }
  async function readError(res) {
    var body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    var e = body && body.error;
    var msg = (e && e.message) || ('Something went wrong (' + res.status + ').');
    if (res.status === 429) {
      var ra = res.headers.get('retry-after');
      msg = (e && e.message) || 'Too many messages.';
      if (ra) msg += ' Please try again in ' + ra + ' s.';
    }
    return new ApiErr(res.status, (e && e.code) || 'http_' + res.status, msg);
  }
  // `base` overrides apiBase: chat turns go to the streaming function's URL when the config names one.
  async function api(method, path, body, token, accept, base) {
    var headers = { Accept: accept || 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    var res;
    try {
      res = await fetch((base || apiBase) + path, {
        method: method, headers: headers, mode: 'cors', credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (e) {
      throw new ApiErr(0, 'network', 'We could not reach the chat service. Check your connection.', true);
    }
    if (!res.ok) throw await readError(res);
    return res;
  }

  // ---------- state ----------
  var cfg = null;          // widget settings
  var session = null;      // {conversation_id, session_token, identifier}
  var started = false;     // history/welcome rendered
  var starting = null;     // in-flight session promise
  var busy = false;        // a turn is in flight
  var pending = null;      // {text, id, bubble} — the last send, kept for a retry
  var seen = {};           // message ids already rendered
  var handoff = false, pollTimer = null, ended = false;
  var ui = {};
  // Live updates (the conversation's events, long-polled; see "live updates" below).
  var convStatus = null;   // who owns the conversation, as last heard: active, waiting_human, with_human, resolved
  var lastSeq = 0;         // the largest event seq handled
  var events = null;       // the running long-poll loop: {conv, token, ctrl, stopped}
  var eventsMissing = false; // the server has no events route: fall back to polling the history
  var deferred = [];       // customer/assistant message events that arrived while a turn was in flight
  var agentNames = {};     // support agents' names by user id, from assignment events
  var agentName = null;    // the current assignee's name
  var queueTimer = null, queueGen = 0;
  var sseOff = false;      // the event stream failed here: long-poll instead
  var asking = false, contactSending = false; // a request for a person / a left message in flight
  var agentTypingTimer = null, lastTypingSent = 0;
  var EVENTS_WAIT_S = 25;
  var QUEUE_EVERY_MS = 10000;
  var AGENT_TYPING_MS = 4000;
  var TYPING_EVERY_MS = 3000;
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  function identity() {
    var i = window.ChatappIdentity;
    return i && typeof i === 'object' ? i : null;
  }

  // ---------- styles ----------
  var CSS_TEXT = [
    ':host{all:initial}',
    '[hidden]{display:none!important}',
    '*{box-sizing:border-box;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}',
    '.root{--bg:#fff;--fg:#1f2328;--muted:#6b7280;--bubble:#f1f3f5;--border:#e5e7eb;position:fixed;bottom:20px;z-index:2147483000;font-size:14px;line-height:1.45;color:var(--fg)}',
    '.root.right{right:20px}.root.left{left:20px}',
    '.root.dark{--bg:#1e1f24;--fg:#eceef1;--muted:#9aa0aa;--bubble:#2c2e35;--border:#3a3d45}',
    '.launcher{width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;background:var(--primary);color:var(--on-primary);box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}',
    '.launcher svg{width:26px;height:26px;fill:currentColor}',
    '.launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid var(--primary);outline-offset:2px}',
    '.window{position:absolute;bottom:70px;width:370px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 110px);background:var(--bg);border:1px solid var(--border);border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.22);display:flex;flex-direction:column;overflow:hidden}',
    '.right .window{right:0}.left .window{left:0}',
    '.header{background:var(--primary);color:var(--on-primary);padding:12px 14px;display:flex;align-items:center;gap:10px}',
    '.header img{width:34px;height:34px;border-radius:50%;object-fit:cover;background:rgba(255,255,255,.3)}',
    '.titles{flex:1;min-width:0}.title{font-weight:600;font-size:15px}.subtitle{font-size:12px;opacity:.85}',
    '.hbtn{background:transparent;border:1px solid currentColor;color:inherit;border-radius:6px;padding:3px 8px;font-size:12px;cursor:pointer;opacity:.9}',
    '.hbtn.x{border:0;font-size:20px;line-height:1;padding:0 4px}',
    '.messages{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px}',
    '.chatapp-msg{max-width:85%;display:flex;flex-direction:column}',
    '.chatapp-msg-user{align-self:flex-end}.chatapp-msg-assistant{align-self:flex-start}',
    '.bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}',
    '.chatapp-msg-user .bubble{background:var(--primary);color:var(--on-primary);border-bottom-right-radius:4px}',
    '.chatapp-msg-assistant .bubble{background:var(--bubble);color:var(--fg);border-bottom-left-radius:4px}',
    '.chatapp-msg-human .who{font-size:11px;color:var(--muted);margin:0 0 2px 4px}',
    '.chatapp-msg.failed .bubble{opacity:.6}',
    '.citations{margin:4px 0 0 4px;font-size:12px;color:var(--muted)}',
    '.citations ol{margin:2px 0 0;padding-left:18px}',
    '.system{align-self:center;font-size:12px;color:var(--muted);text-align:center;max-width:90%}',
    '.system.error{color:#b42318}.dark .system.error{color:#ff8a80}',
    '.system button{margin-left:6px;font-size:12px;background:none;border:1px solid currentColor;border-radius:5px;color:inherit;cursor:pointer}',
    '.typing{align-self:flex-start;background:var(--bubble);border-radius:14px;padding:10px 12px;display:flex;gap:4px}',
    '.typing span{width:6px;height:6px;border-radius:50%;background:var(--muted);animation:b 1.2s infinite ease-in-out}',
    '.typing span:nth-child(2){animation-delay:.15s}.typing span:nth-child(3){animation-delay:.3s}',
    '@keyframes b{0%,80%,100%{transform:translateY(0);opacity:.5}40%{transform:translateY(-4px);opacity:1}}',
    '@media (prefers-reduced-motion:reduce){.typing span{animation:none}}',
    '.composer{display:flex;gap:8px;padding:10px;border-top:1px solid var(--border);align-items:flex-end}',
    'textarea{flex:1;resize:none;border:1px solid var(--border);border-radius:10px;padding:8px 10px;font-size:14px;max-height:120px;background:var(--bg);color:var(--fg)}',
    '.send{background:var(--primary);color:var(--on-primary);border:0;border-radius:10px;padding:8px 14px;cursor:pointer;font-weight:600}',
    '.send:disabled,textarea:disabled{opacity:.5;cursor:not-allowed}',
    '.csat{padding:12px;border-top:1px solid var(--border);text-align:center}',
    '.csat .q{margin-bottom:8px;font-weight:600}',
    '.csat .rates button{width:36px;height:36px;margin:0 3px;border-radius:50%;border:1px solid var(--border);background:var(--bubble);color:var(--fg);cursor:pointer;font-weight:600}',
    '.csat .rates button:hover{background:var(--primary);color:var(--on-primary)}',
    '.csat .skip{margin-top:8px;background:none;border:0;color:var(--muted);cursor:pointer;text-decoration:underline;font-size:12px}',
    '.queue{padding:8px 12px;font-size:12px;text-align:center;color:var(--fg);background:var(--bubble);border-top:1px solid var(--border)}',
    '.talk{padding:6px 10px 0;text-align:center}',
    '.talk button{background:none;border:1px solid var(--border);border-radius:999px;padding:3px 12px;font-size:12px;color:var(--fg);cursor:pointer}',
    '.talk button:disabled{opacity:.5;cursor:not-allowed}',
    '.contact{padding:10px;border-top:1px solid var(--border);display:flex;flex-direction:column;gap:6px}',
    '.contact .why{font-size:13px}',
    '.contact input,.contact textarea{flex:none;width:100%;border:1px solid var(--border);border-radius:8px;padding:6px 8px;font-size:14px;background:var(--bg);color:var(--fg)}',
    '.contact textarea{min-height:56px}',
    '.contact .err{color:#b42318;font-size:12px}.dark .contact .err{color:#ff8a80}',
    '.contact .row{display:flex;gap:8px;justify-content:flex-end}',
    '.contact .cancel{background:none;border:0;color:var(--muted);cursor:pointer;text-decoration:underline;font-size:12px}',
    '.brand{font-size:11px;color:var(--muted);text-align:center;padding:0 0 6px}',
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    '@media (max-width:480px){.window{position:fixed;inset:0;width:100vw;max-width:none;height:100%;max-height:none;border-radius:0}}'
  ].join('\n');

  var ICON_CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z';
  var ICON_CLOSE = 'M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z';
  function icon(d) {
    var ns = 'http://www.w3.org/2000/svg';
    var s = document.createElementNS(ns, 'svg'); s.setAttribute('viewBox', '0 0 24 24'); s.setAttribute('aria-hidden', 'true');
    var p = document.createElementNS(ns, 'path'); p.setAttribute('d', d); s.appendChild(p);
    return s;
  }

  // ---------- rendering ----------
  function build() {
    var w = cfg.widget || {};
    var host = el('div', { id: 'chatapp-widget-' + agentId, 'data-chatapp': 'widget' });
    var shadow = host.attachShadow({ mode: 'open' });
    shadow.appendChild(el('style', { text: CSS_TEXT }));
    var primary = safeColor(w.primary_color);
    var dark = w.theme === 'dark' ||
      (w.theme === 'auto' && window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches);
    var root = el('div', { class: 'root ' + (w.position === 'bottom-left' ? 'left' : 'right') + (dark ? ' dark' : '') });
    root.style.setProperty('--primary', primary);
    root.style.setProperty('--on-primary', textOn(primary));

    var winId = 'chatapp-window-' + agentId;
    ui.launcher = el('button', {
      type: 'button', class: 'launcher', 'aria-label': 'Open chat', 'aria-expanded': 'false',
      'aria-controls': winId, 'data-testid': 'chatapp-launcher', onclick: toggle
    }, [icon(ICON_CHAT)]);

    var avatar = null;
    if (w.avatar_url && /^https?:\/\//i.test(w.avatar_url)) avatar = el('img', { src: w.avatar_url, alt: '' });
    ui.title = el('div', { class: 'title', id: winId + '-title', text: w.title || 'Chat with us' });
    ui.endBtn = el('button', { type: 'button', class: 'hbtn', 'data-testid': 'chatapp-end', text: 'End chat', onclick: askRating });
    var header = el('div', { class: 'header' }, [
      avatar,
      el('div', { class: 'titles' }, [ui.title, w.subtitle ? el('div', { class: 'subtitle', text: w.subtitle }) : null]),
      ui.endBtn,
      el('button', { type: 'button', class: 'hbtn x', 'aria-label': 'Close chat', text: '\u00d7', onclick: close })
    ]);

    ui.typing = el('div', { class: 'typing', 'data-testid': 'chatapp-typing', role: 'status', 'aria-label': 'Assistant is typing', hidden: '' },
      [el('span'), el('span'), el('span')]);
    ui.messages = el('div', {
      class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions text',
      'aria-label': 'Chat messages', 'data-testid': 'chatapp-messages', tabindex: '0'
    }, [ui.typing]);

    ui.input = el('textarea', {
      rows: '1', 'aria-label': 'Type your message', placeholder: w.placeholder_text || 'Type your message…',
      'data-testid': 'chatapp-input', maxlength: '4000'
    });
    ui.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submit(); }
    });
    ui.input.addEventListener('input', grow);
    ui.input.addEventListener('input', customerTyping);
    ui.send = el('button', { type: 'button', class: 'send', 'data-testid': 'chatapp-send', text: 'Send', onclick: submit });
    ui.composer = el('div', { class: 'composer' }, [ui.input, ui.send]);

    var rates = el('div', { class: 'rates', role: 'group', 'aria-label': 'Rate this conversation from 1 to 5' });
    for (var i = 1; i <= 5; i++) {
      rates.appendChild(el('button', {
        type: 'button', 'data-rating': String(i), 'data-testid': 'chatapp-rate-' + i,
        'aria-label': 'Rate ' + i + ' out of 5', text: String(i), onclick: rateHandler(i)
      }));
    }
    ui.csat = el('div', { class: 'csat', 'data-testid': 'chatapp-csat', hidden: '' }, [
      el('div', { class: 'q', text: 'How did we do?' }), rates,
      el('button', { type: 'button', class: 'skip', text: 'Skip', onclick: rateHandler(null) })
    ]);

    ui.queue = el('div', { class: 'queue', 'data-testid': 'queue-status', role: 'status', 'aria-live': 'polite', hidden: '' });

    // Talk to a person (when the agent's settings offer it), or leave an email and a message
    // when nobody can answer now.
    if (cfg.human_handoff && cfg.human_handoff.enabled) {
      ui.talkBtn = el('button', { type: 'button', 'data-testid': 'talk-to-human', text: 'Talk to a person', onclick: askForPerson });
      ui.talk = el('div', { class: 'talk' }, [ui.talkBtn]);
      ui.contactWhy = el('div', { class: 'why', 'data-testid': 'contact-why' });
      ui.contactEmail = el('input', {
        type: 'email', autocomplete: 'email', maxlength: '254', placeholder: 'Your email',
        'aria-label': 'Your email', 'data-testid': 'contact-email'
      });
      ui.contactMessage = el('textarea', {
        rows: '3', maxlength: '2000', placeholder: 'Your message (optional)',
        'aria-label': 'Your message (optional)', 'data-testid': 'contact-message'
      });
      ui.contactError = el('div', { class: 'err', role: 'alert', hidden: '' });
      ui.contactSend = el('button', { type: 'button', class: 'send', 'data-testid': 'contact-send', text: 'Send', onclick: sendContact });
      ui.contact = el('div', { class: 'contact', 'data-testid': 'contact-form', hidden: '' }, [
        ui.contactWhy, ui.contactEmail, ui.contactMessage, ui.contactError,
        el('div', { class: 'row' }, [
          el('button', { type: 'button', class: 'cancel', text: 'Not now', onclick: hideContact }), ui.contactSend
        ])
      ]);
    }

    ui.window = el('div', {
      class: 'window', id: winId, role: 'dialog', 'aria-labelledby': winId + '-title',
      'data-testid': 'chatapp-window', hidden: ''
    }, [header, ui.messages, ui.queue, ui.talk || null, ui.contact || null, ui.csat, ui.composer,
      w.show_branding === false ? null : el('div', { class: 'brand', text: 'Powered by Chatapp' })]);
    ui.window.addEventListener('keydown', function (e) { if (e.key === 'Escape') { close(); ui.launcher.focus(); } });

    root.appendChild(ui.window);
    root.appendChild(ui.launcher);
    shadow.appendChild(root);
    document.body.appendChild(host);
  }

  function grow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight, 120) + 'px';
  }
  function scroll() { ui.messages.scrollTop = ui.messages.scrollHeight; }
  function add(node) { ui.messages.insertBefore(node, ui.typing); scroll(); return node; }
  function setTyping(on) { if (on) ui.typing.removeAttribute('hidden'); else ui.typing.setAttribute('hidden', ''); if (on) scroll(); }

  function addMessage(role, text, id, extraClass, who) {
    var assistant = role !== 'user';
    var node = el('div', {
      class: 'chatapp-msg ' + (assistant ? 'chatapp-msg-assistant' : 'chatapp-msg-user') + (extraClass ? ' ' + extraClass : ''),
      'data-role': role, 'data-id': id || null
    });
    if (role === 'human_agent') node.appendChild(el('div', { class: 'who', text: who || agentName || 'Support' }));
    node.bubble = el('div', { class: 'bubble' });
    node.textNode = document.createTextNode(text || '');
    node.bubble.appendChild(node.textNode);
    node.appendChild(node.bubble);
    if (id) seen[id] = true;
    return add(node);
  }
  function addSystem(text, isError, action) {
    var node = el('div', {
      class: 'system' + (isError ? ' error' : ''), role: isError ? 'alert' : null,
      'data-testid': isError ? 'chatapp-error' : 'chatapp-notice'
    }, [text]);
    if (action) node.appendChild(el('button', { type: 'button', text: action.label, onclick: action.run }));
    return add(node);
  }
  function addCitations(msgNode, citations) {
    if (!msgNode || !Array.isArray(citations) || !citations.length) return;
    var old = msgNode.querySelector('.citations');
    if (old) old.remove();
    var list = el('ol'), keys = {};
    citations.forEach(function (c, i) {
      if (!c || !c.source) return;
      var key = c.source + '|' + (c.page == null ? '' : c.page);
      if (keys[key]) return;
      keys[key] = true;
      var label = String(c.source) + (c.page != null ? ' (p. ' + c.page + ')' : '') +
        (c.section ? ' \u2014 ' + c.section : '');
      list.appendChild(el('li', { value: String(c.n || i + 1), class: 'chatapp-citation', title: label, text: label }));
    });
    if (!list.children.length) return;
    msgNode.appendChild(el('div', { class: 'citations', 'data-testid': 'chatapp-citations' },
      [el('span', { text: 'Sources:' }), list]));
    scroll();
  }
  function setBusy(b) {
    busy = b;
    ui.send.disabled = b;
    ui.send.setAttribute('aria-busy', b ? 'true' : 'false');
  }

  // ---------- session ----------
  async function createSession() {
    var id = identity(), body = {};
    if (id) {
      if (id.identifier) body.identifier = String(id.identifier);
      if (id.identifier && id.hash) body.identity_hash = String(id.hash);
      if (id.name) body.name = String(id.name);
      if (id.email) body.email = String(id.email);
    }
    var res = await api('POST', '/widget/agents/' + encodeURIComponent(agentId) + '/sessions', body);
    var s = await res.json();
    session = { conversation_id: s.conversation_id, session_token: s.session_token, identifier: body.identifier || null };
    store(STORE_KEY, session);
    ended = false;
    lastSeq = 0;
    convStatus = 'active';
    return s;
  }
  function dropSession() {
    session = null; store(STORE_KEY, null); stopPolling(); handoff = false;
    stopEvents(); stopQueue(); hideAgentTyping();
    lastSeq = 0; deferred = []; convStatus = null; agentName = null;
    hideContact();
  }

  function ensureSession() {
    if (session) return Promise.resolve(session);
    if (!starting) starting = createSession().finally(function () { starting = null; });
    return starting.then(function () { return session; });
  }

  async function loadHistory(render) {
    var res = await api('GET', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/messages',
      undefined, session.session_token);
    var data = await res.json();
    if (!render && busy) return; // a turn in flight renders its own reply
    (data.messages || []).forEach(function (m) {
      if (!m || seen[m.id] || !m.content) return;
      if (!render && m.role === 'user') { seen[m.id] = true; return; }
      var n = addMessage(m.role, m.content, m.id, m.role === 'human_agent' ? 'chatapp-msg-human' : null);
      if (m.role === 'assistant') addCitations(n, m.citations);
    });
  }

  async function start() {
    if (started) return;
    started = true;
    var w = cfg.widget || {};
    addMessage('assistant', w.welcome_message || DEFAULT_WELCOME, null, 'chatapp-welcome');
    var stored = load(STORE_KEY), id = identity();
    if (stored && stored.conversation_id && stored.session_token &&
        (stored.identifier || null) === ((id && id.identifier && String(id.identifier)) || null)) {
      session = stored;
      lastSeq = typeof stored.last_seq === 'number' ? stored.last_seq : 0;
      try {
        await loadHistory(true);
        // Pick up where the last page left off, and show the queue if the team has not taken it yet.
        startEvents();
        refreshQueue();
        return;
      } catch (e) {
        if (e.status === 401 || e.status === 404) dropSession();
        else { addSystem(e.message, true); return; }
      }
    }
    try { await ensureSession(); } catch (e) {
      // Not fatal: the next send tries again.
      addSystem(e.message, true);
    }
  }

  // ---------- sending ----------
  function submit() {
    if (busy || ended) return;
    var text = ui.input.value.trim();
    if (!text) { ui.input.focus(); return; }
    ui.input.value = '';
    grow();
    var bubble = addMessage('user', text);
    // The same text re-sent after a failure is the same message: keep its id so it is not doubled.
    if (!pending || pending.text !== text) pending = { text: text, id: randomId() };
    pending.bubble = bubble;
    deliver(pending);
  }

  async function deliver(p) {
    setBusy(true);
    hideAgentTyping();
    ui.typing.setAttribute('aria-label', 'Assistant is typing');
    setTyping(true);
    p.bubble.classList.remove('failed');
    var answer = null, gotDone = false;
    try {
      await ensureSession();
      var res = await api('POST', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/messages',
        { content: p.text, client_message_id: p.id }, session.session_token, 'text/event-stream',
        cfg && cfg.stream_url);
      var ctype = res.headers.get('content-type') || '';
      var onEvent = function (name, data) {
        if (name === 'message') {
          if (data && data.id) { p.bubble.setAttribute('data-id', data.id); seen[data.id] = true; }
        } else if (name === 'delta') {
          if (!data || typeof data.text !== 'string') return;
          setTyping(false);
          if (!answer) answer = addMessage('assistant', '');
          answer.textNode.appendData(data.text);
          scroll();
        } else if (name === 'escalated') {
          addSystem('Connecting you to a person\u2026');
        } else if (name === 'done') {
          gotDone = true;
          finish(data || {});
        }
      };
      if (ctype.indexOf('text/event-stream') !== -1 && res.body && res.body.getReader) {
        await readSse(res.body.getReader(), onEvent);
      } else {
        onEvent('done', await res.json());
      }
      if (!gotDone) throw new ApiErr(0, 'network', 'The connection dropped before the answer finished.', true);
      pending = null;
    } catch (e) {
      setTyping(false);
      if (!(e instanceof ApiErr)) { console.error('[chatapp]', e); e = new ApiErr(0, 'network', 'Something went wrong.', true); }
      if (e.status === 401 && e.code === 'invalid_session') {
        dropSession();
        pending = null;
        addSystem('Your chat session has expired. Send your message again to start a new chat.', true);
      } else if (e.network || e.status >= 500 || e.status === 429) {
        p.bubble.classList.add('failed');
        var retry = addSystem(e.message, true, {
          label: 'Retry', run: function () {
            if (busy) return;
            retry.remove();
            if (answer) answer.remove();
            deliver(p);
          }
        });
      } else {
        pending = null;
        p.bubble.classList.add('failed');
        addSystem(e.message, true);
      }
    } finally {
      setTyping(false);
      setBusy(false);
      // Live updates from here on: the team's replies, notices, and what this turn missed.
      if (session) startEvents();
      flushDeferred();
    }

    function finish(d) {
      setTyping(false);
      if (d.message && d.message.id) { p.bubble.setAttribute('data-id', d.message.id); seen[d.message.id] = true; }
      var reply = d.reply;
      if (reply && reply.content) {
        if (!answer) answer = addMessage('assistant', reply.content, reply.id);
        else {
          if (answer.textNode.data !== reply.content) answer.textNode.data = reply.content;
          if (reply.id) { answer.setAttribute('data-id', reply.id); seen[reply.id] = true; }
        }
        var cites = Array.isArray(d.citations) ? d.citations : (reply.metadata && reply.metadata.citations);
        addCitations(answer, cites);
      } else if (d.handoff) {
        // No reply stored: a person took the chat while the answer streamed, so what streamed
        // was never sent; it goes.
        if (answer) answer.remove();
        addSystem('A member of our team will reply here.');
      }
      if (d.handoff) {
        if (convStatus !== 'with_human') setStatus('waiting_human');
        if (eventsMissing) startPolling();
      } else if (convStatus === 'waiting_human' || convStatus === 'with_human') {
        setStatus('active'); // the assistant answered: it has the conversation again
      }
    }
  }

  /** Incremental server-sent events: blocks split on a blank line, `event:` and `data:` lines. */
  async function readSse(reader, onEvent) {
    var decoder = new TextDecoder('utf-8'), buf = '';
    function dispatch(block) {
      var name = 'message', data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (!line || line.charAt(0) === ':') return;
        var i = line.indexOf(':');
        var field = i === -1 ? line : line.slice(0, i);
        var value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      });
      if (!data.length) return;
      var parsed;
      try { parsed = JSON.parse(data.join('\n')); } catch (e) { parsed = data.join('\n'); }
      onEvent(name, parsed);
    }
    for (;;) {
      var chunk;
      try { chunk = await reader.read(); } catch (e) {
        throw new ApiErr(0, 'network', 'The connection dropped before the answer finished.', true);
      }
      if (chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      var m;
      while ((m = /\r?\n\r?\n/.exec(buf))) {
        var block = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        dispatch(block);
      }
    }
    buf += decoder.decode();
    if (buf.trim()) dispatch(buf);
  }

  // ---------- live updates: the conversation's events, long-polled ----------
  // One loop per conversation: GET …/events?after=<lastSeq>&wait=25 answers every event after
  // lastSeq (at once, or as soon as one happens), so a reconnect gets each missed event once.
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  var AI_IDLE_MS = 30000;
  function humanInvolved() { return convStatus === 'waiting_human' || convStatus === 'with_human'; }
  /** Sleeps `ms`, or until something (a handoff) calls `me.wake()`. */
  function nap(me, ms) {
    return new Promise(function (r) {
      var t = setTimeout(done, ms);
      function done() { clearTimeout(t); me.wake = null; r(); }
      me.wake = done;
    });
  }

  function startEvents() {
    if (!session || events || eventsMissing) return;
    // Server-sent events only when the site's configuration asks for them (config.live = "sse")
    // and the browser has EventSource; long-polling otherwise, and after the stream fails.
    if (cfg && cfg.live === 'sse' && window.EventSource && !sseOff) { startEventStream(); return; }
    var me = events = { conv: session.conversation_id, token: session.session_token, ctrl: null, stopped: false };
    (async function loop() {
      var failures = 0;
      while (!me.stopped && session && session.conversation_id === me.conv) {
        var began = Date.now(), got = 0;
        try {
          got = await pollEvents(me);
          failures = 0;
        } catch (e) {
          if (me.stopped) break;
          if (e.status === 401) { me.stopped = true; break; } // the chat ended: nothing more to hear
          if (e.status === 404 && e.code !== 'invalid_session') {
            // A server without live updates: poll the history while a person has the chat.
            me.stopped = true;
            eventsMissing = true;
            if (convStatus === 'waiting_human' || convStatus === 'with_human') startPolling();
            break;
          }
          failures++;
          var wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1];
          await sleep(wait + Math.floor(Math.random() * 500));
          continue;
        }
        if (convStatus === 'resolved' || convStatus === 'abandoned') break; // nothing more will come
        if (!humanInvolved()) {
          // The assistant has the chat: no request held open (on Lambda each one holds a
          // function instance); a quick look now and then catches a person taking over, and a
          // handoff wakes the loop at once.
          if (!got) await nap(me, AI_IDLE_MS);
        } else if (!got && Date.now() - began < 1000) {
          // A server (or proxy) that answers at once without waiting must not make this spin.
          await sleep(1000);
        }
      }
      if (events === me) events = null;
    })();
  }
  function stopEvents() {
    if (!events) return;
    events.stopped = true;
    if (events.ctrl) { try { events.ctrl.abort(); } catch (e) { /* already done */ } }
    if (events.source) { try { events.source.close(); } catch (e) { /* already closed */ } }
    events = null;
  }

  // The event types a customer may get; EventSource dispatches named events by name only.
  var EVENT_TYPES = ['message.created', 'typing', 'conversation.escalated', 'conversation.queued',
    'conversation.assigned', 'conversation.transferred', 'conversation.handed_back', 'conversation.resolved',
    'conversation.reopened', 'conversation.snoozed'];

  /**
   * The same events as server-sent events (GET …/events/stream). EventSource cannot send an
   * Authorization header, so the session token goes in the query (the server accepts it there on
   * this route only). It reconnects by itself with Last-Event-ID; a refused stream (the chat
   * ended, or no such route) closes it, and the long poll takes over.
   */
  function startEventStream() {
    var me = events = { conv: session.conversation_id, token: session.session_token, ctrl: null, stopped: false, source: null };
    var url = ((cfg && cfg.stream_url) || apiBase) + '/widget/conversations/' + encodeURIComponent(me.conv) +
      '/events/stream?after=' + encodeURIComponent(String(lastSeq)) + '&token=' + encodeURIComponent(me.token);
    var src;
    try { src = new EventSource(url); } catch (e) {
      events = null;
      sseOff = true;
      startEvents();
      return;
    }
    me.source = src;
    function onStreamEvent(msg) {
      if (me.stopped || !session || session.conversation_id !== me.conv) return;
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (!ev || typeof ev.seq !== 'number' || ev.seq <= lastSeq) return; // seen already
      lastSeq = ev.seq;
      try { onServerEvent(ev); } catch (e) { console.error('[chatapp]', e); }
      if (session.last_seq !== lastSeq) { session.last_seq = lastSeq; store(STORE_KEY, session); }
    }
    EVENT_TYPES.forEach(function (t) { src.addEventListener(t, onStreamEvent); });
    src.onerror = function () {
      if (me.stopped || src.readyState !== 2) return; // 2 = CLOSED; otherwise it is reconnecting
      me.stopped = true;
      if (events === me) events = null;
      sseOff = true;
      if (session && session.conversation_id === me.conv) startEvents();
    };
  }

  /** One long poll; handles its events and returns how many were new. */
  async function pollEvents(me) {
    var ctrl = me.ctrl = window.AbortController ? new AbortController() : null;
    // A connection that hangs well past the server's wait is given up on and retried.
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, (EVENTS_WAIT_S + 15) * 1000) : null;
    var data;
    try {
      var res;
      try {
        res = await fetch(apiBase + '/widget/conversations/' + encodeURIComponent(me.conv) + '/events?after=' +
          encodeURIComponent(String(lastSeq)) + '&wait=' + (humanInvolved() ? EVENTS_WAIT_S : 0), {
          method: 'GET', mode: 'cors', credentials: 'omit', cache: 'no-store',
          headers: { Accept: 'application/json', Authorization: 'Bearer ' + me.token },
          signal: ctrl ? ctrl.signal : undefined
        });
      } catch (e) {
        throw new ApiErr(0, 'network', 'We could not reach the chat service.', true);
      }
      if (!res.ok) throw await readError(res);
      try { data = await res.json(); } catch (e) {
        throw new ApiErr(0, 'network', 'The connection dropped.', true);
      }
    } finally {
      if (timer) clearTimeout(timer);
      me.ctrl = null;
    }
    if (me.stopped || !session || session.conversation_id !== me.conv) return 0;
    var list = data && Array.isArray(data.events) ? data.events : [];
    var fresh = 0;
    list.forEach(function (ev) {
      if (!ev || typeof ev.seq !== 'number' || ev.seq <= lastSeq) return; // seen already
      lastSeq = ev.seq;
      fresh++;
      try { onServerEvent(ev); } catch (e) { console.error('[chatapp]', e); }
    });
    // Nothing for the customer, yet the sequence moved on (team-only events): skip past them.
    if (!list.length && data && typeof data.last_seq === 'number' && data.last_seq > lastSeq) lastSeq = data.last_seq;
    // The answer also says who owns the conversation now, whichever event said so.
    if (data && typeof data.status === 'string' && data.status !== convStatus) setStatus(data.status);
    if (session.last_seq !== lastSeq) { session.last_seq = lastSeq; store(STORE_KEY, session); }
    return fresh;
  }

  function onServerEvent(ev) {
    var d = ev.data && typeof ev.data === 'object' ? ev.data : {};
    switch (ev.type) {
      case 'message.created':
        onMessageEvent(d);
        break;
      case 'typing':
        if (d.by === 'agent') showAgentTyping();
        break;
      case 'conversation.escalated':
      case 'conversation.queued':
        setStatus('waiting_human');
        break;
      case 'conversation.assigned':
      case 'conversation.transferred':
        if (d.user_id && d.user_name) agentNames[d.user_id] = String(d.user_name);
        agentName = d.user_name ? String(d.user_name) : null;
        setStatus('with_human');
        break;
      case 'conversation.handed_back':
        agentName = null;
        setStatus('active');
        break;
      case 'conversation.resolved':
        agentName = null;
        hideAgentTyping();
        setStatus('resolved');
        break;
      case 'conversation.reopened':
        setStatus(typeof d.status === 'string' ? d.status : 'active');
        break;
      default:
        break;
    }
  }

  function onMessageEvent(m) {
    if (!m || !m.id || seen[m.id]) return;
    if (typeof m.content !== 'string' || !m.content) { seen[m.id] = true; return; }
    var role = m.role;
    if (role === 'user' || role === 'assistant') {
      // A turn in flight renders its own message and answer; what else arrived meanwhile is
      // handled once it finished and their ids are known.
      if (busy) { deferred.push(m); return; }
      if (role === 'user' && claimUserBubble(m)) return;
      addMessage(role, m.content, m.id);
    } else if (role === 'human_agent') {
      hideAgentTyping();
      addMessage('human_agent', m.content, m.id, 'chatapp-msg-human', agentNames[m.sender_id] || agentName);
    } else if (role === 'system') {
      var n = addSystem(m.content);
      n.setAttribute('data-role', 'system');
      n.setAttribute('data-id', m.id);
      if (typeof m.kind === 'string') n.setAttribute('data-kind', m.kind);
      seen[m.id] = true;
    }
    // Other roles (tool traffic) are not for the customer.
  }

  /** A customer message shown without its id (its send failed or is unanswered): the event names it. */
  function claimUserBubble(m) {
    var mine = ui.messages.querySelectorAll('.chatapp-msg-user:not([data-id])');
    for (var i = 0; i < mine.length; i++) {
      if (mine[i].textNode && mine[i].textNode.data === m.content) {
        mine[i].setAttribute('data-id', m.id);
        seen[m.id] = true;
        return true;
      }
    }
    return false;
  }

  function flushDeferred() {
    var list = deferred;
    deferred = [];
    list.forEach(onMessageEvent);
  }

  function setStatus(s) {
    convStatus = s;
    if (s === 'waiting_human' || s === 'with_human') {
      handoff = true;
      if (events && events.wake) events.wake(); // long-poll from now on
      if (eventsMissing) startPolling();
    } else {
      handoff = false;
      stopPolling();
    }
    if (s === 'waiting_human') startQueue();
    else stopQueue();
    updateTalk();
  }

  function showAgentTyping() {
    if (busy || !ui.typing) return;
    ui.typing.setAttribute('aria-label', (agentName || 'Support') + ' is typing');
    setTyping(true);
    if (agentTypingTimer) clearTimeout(agentTypingTimer);
    agentTypingTimer = setTimeout(hideAgentTyping, AGENT_TYPING_MS);
  }
  function hideAgentTyping() {
    if (!agentTypingTimer) return;
    clearTimeout(agentTypingTimer);
    agentTypingTimer = null;
    if (!busy && ui.typing) setTyping(false);
  }

  /** Tells the team the customer is typing: at most every few seconds, only while a person has the chat. */
  function customerTyping() {
    if (!session || busy || !ui.input.value.trim()) return;
    if (convStatus !== 'waiting_human' && convStatus !== 'with_human') return;
    var now = Date.now();
    if (now - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = now;
    api('POST', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/typing',
      undefined, session.session_token).catch(function () { /* only a hint */ });
  }

  // ---------- the queue while waiting for a person ----------
  function startQueue() {
    if (queueTimer || !session) return;
    queueTimer = setInterval(refreshQueue, QUEUE_EVERY_MS);
    refreshQueue();
  }
  function stopQueue() {
    queueGen++;
    if (queueTimer) clearInterval(queueTimer);
    queueTimer = null;
    if (ui.queue) ui.queue.hidden = true;
  }
  /** Asks where the conversation stands; shows the queue notice while it waits for a person. */
  async function refreshQueue() {
    if (!session) return;
    var gen = queueGen, conv = session.conversation_id, q;
    try {
      var res = await api('GET', '/widget/conversations/' + encodeURIComponent(conv) + '/queue',
        undefined, session.session_token);
      q = await res.json();
    } catch (e) {
      if (gen === queueGen && (e.status === 401 || e.status === 404)) stopQueue();
      return; // otherwise the notice stays as it was and the next tick asks again
    }
    if (gen !== queueGen || !session || session.conversation_id !== conv || !q) return;
    if (q.status === 'waiting_human' && !queueTimer) queueTimer = setInterval(refreshQueue, QUEUE_EVERY_MS);
    if (typeof q.status === 'string' && q.status !== convStatus) setStatus(q.status);
    if (q.status === 'waiting_human') renderQueue(q);
    else stopQueue();
  }
  function renderQueue(q) {
    var text;
    if (typeof q.position === 'number' && q.position > 0) {
      text = 'You are number ' + q.position + ' in the queue';
      if (q.agents_online !== 0 && typeof q.estimated_wait_seconds === 'number' && q.estimated_wait_seconds >= 0) {
        text += ' \u2014 estimated wait about ' + Math.max(1, Math.round(q.estimated_wait_seconds / 60)) + ' min';
      }
      text += '.';
    } else {
      text = 'Waiting for the next available agent\u2026';
    }
    if (q.agents_online === 0) text += ' Nobody from our team is online right now; we will reply here as soon as someone is.';
    ui.queue.textContent = text;
    ui.queue.hidden = false;
    scroll();
  }

  // ---------- the customer's choice: a person instead of the assistant ----------
  // Shown when the agent's settings offer it. Within business hours the chat is queued for a
  // person (the queue notice takes over); outside them the server says so (409 outside_hours,
  // with the agent's message) and the customer may leave an email and a message instead.
  function updateTalk() {
    if (!ui.talk) return;
    var taken = convStatus === 'waiting_human' || convStatus === 'with_human' ||
      convStatus === 'resolved' || convStatus === 'abandoned';
    ui.talk.hidden = taken || ended || !ui.contact.hidden;
  }

  async function askForPerson() {
    if (asking || busy || ended) return;
    asking = true;
    ui.talkBtn.disabled = true;
    try {
      await ensureSession();
      var res = await api('POST', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/handoff',
        {}, session.session_token);
      var d = await res.json();
      var n = d && d.notice;
      // The notice also comes as a message event; whichever arrives first is shown, once.
      if (n && n.id && typeof n.content === 'string' && !seen[n.id]) {
        var node = addSystem(n.content);
        node.setAttribute('data-role', 'system');
        node.setAttribute('data-id', n.id);
        node.setAttribute('data-kind', 'handoff');
        seen[n.id] = true;
      }
      setStatus(d && typeof d.status === 'string' ? d.status : 'waiting_human');
      startEvents();
    } catch (e) {
      if (!(e instanceof ApiErr)) { console.error('[chatapp]', e); e = new ApiErr(0, 'network', 'Something went wrong.', true); }
      if (e.status === 409 && e.code === 'outside_hours') showContact(e.message);
      else if (e.status === 401 && e.code === 'invalid_session') {
        dropSession();
        addSystem('Your chat session has expired. Send a message to start a new chat.', true);
      } else addSystem(e.message, true);
    } finally {
      asking = false;
      ui.talkBtn.disabled = false;
      updateTalk();
    }
  }

  function showContact(why) {
    if (!ui.contact) return;
    addSystem(why);
    ui.contactWhy.textContent = 'Leave your email and a message, and we will get back to you.';
    ui.contactError.hidden = true;
    ui.contact.hidden = false;
    updateTalk();
    ui.contactEmail.focus();
  }
  function hideContact() {
    if (!ui.contact) return;
    ui.contact.hidden = true;
    updateTalk();
  }
  function contactError(text) {
    ui.contactError.textContent = text;
    ui.contactError.hidden = false;
  }

  async function sendContact() {
    if (contactSending || !session) return;
    var email = ui.contactEmail.value.trim(), message = ui.contactMessage.value.trim();
    if (!email) { contactError('Please enter your email address.'); ui.contactEmail.focus(); return; }
    contactSending = true;
    ui.contactSend.disabled = true;
    ui.contactError.hidden = true;
    try {
      var body = { email: email };
      if (message) body.message = message;
      var res = await api('POST', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/contact',
        body, session.session_token);
      var d = await res.json();
      ui.contactMessage.value = '';
      hideContact();
      // The message also comes as a message event; whichever arrives first is shown, once.
      var m = d && d.message;
      if (m && m.id && typeof m.content === 'string' && !seen[m.id]) addMessage('user', m.content, m.id);
      addSystem('Thanks \u2014 we\'ll reply by email or here.');
      setStatus(d && typeof d.status === 'string' ? d.status : 'waiting_human');
      startEvents();
    } catch (e) {
      if (!(e instanceof ApiErr)) { console.error('[chatapp]', e); e = new ApiErr(0, 'network', 'Something went wrong.', true); }
      if (e.status === 401 && e.code === 'invalid_session') {
        dropSession();
        addSystem('Your chat session has expired. Send a message to start a new chat.', true);
      } else contactError(e.message);
    } finally {
      contactSending = false;
      ui.contactSend.disabled = false;
    }
  }

  // ---------- fallback without live updates: poll the history for the team's replies ----------
  function startPolling() {
    handoff = true;
    if (pollTimer) return;
    pollTimer = setInterval(function () {
      if (!session || ui.window.hidden || busy) return;
      loadHistory(false).catch(function (e) { if (e.status === 401) dropSession(); });
    }, 5000);
  }
  function stopPolling() { if (pollTimer) clearInterval(pollTimer); pollTimer = null; }

  // ---------- ending + CSAT ----------
  function askRating() {
    if (!session) { addSystem('There is no open conversation to end.'); return; }
    ui.composer.hidden = true;
    ui.csat.hidden = false;
    ended = true;
    hideContact();
    var first = ui.csat.querySelector('button');
    if (first) first.focus();
  }
  function rateHandler(n) {
    return async function () {
      if (!session) return;
      var buttons = ui.csat.querySelectorAll('button');
      buttons.forEach(function (b) { b.disabled = true; });
      try {
        await api('POST', '/widget/conversations/' + encodeURIComponent(session.conversation_id) + '/end',
          n ? { rating: n } : {}, session.session_token);
        dropSession();
        ui.csat.hidden = true;
        addSystem(n ? 'Thanks for your feedback!' : 'Chat ended.', false, {
          label: 'Start a new chat', run: function (ev) { ev.target.remove(); resume(); }
        });
        ui.endBtn.hidden = true;
      } catch (e) {
        if (e.status === 401) { dropSession(); ui.csat.hidden = true; addSystem('This chat has already ended.'); }
        else addSystem(e.message, true);
      } finally {
        buttons.forEach(function (b) { b.disabled = false; });
      }
    };
  }
  function resume() {
    ended = false;
    ui.csat.hidden = true;
    ui.composer.hidden = false;
    ui.endBtn.hidden = false;
    updateTalk();
    ui.input.focus();
    ensureSession().catch(function (e) { addSystem(e.message, true); });
  }

  // ---------- open / close ----------
  function open() {
    if (!ui.window) return;
    ui.window.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    store(CLOSED_KEY, null);
    start();
    setTimeout(function () { if (!ui.composer.hidden) ui.input.focus(); }, 0);
  }
  function close() {
    if (!ui.window) return;
    ui.window.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    store(CLOSED_KEY, true);
  }
  function toggle() { if (ui.window && ui.window.hidden) open(); else close(); }

  async function init() {
    try {
      var res = await api('GET', '/widget/agents/' + encodeURIComponent(agentId) + '/config');
      cfg = await res.json();
    } catch (e) {
      console.warn('[chatapp] widget disabled: ' + (e && e.message ? e.message : e));
      return;
    }
    build();
    window.Chatapp = { open: open, close: close, toggle: toggle };
    var w = cfg.widget || {};
    // Reopen after a reload when a chat was going on, or auto-open unless the visitor closed it.
    if ((load(STORE_KEY) && !load(CLOSED_KEY)) || (w.auto_open && !load(CLOSED_KEY))) open();
  }

  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
