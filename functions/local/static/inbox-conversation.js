/*! chatapp inbox — the open conversation: its header and actions (claim, release, hand back,
 * resolve), the messages and notes, the customer panel, the live updates (the conversation's
 * events, long-polled), the reply and note boxes, canned responses and the typing signals.
 *
 * Loaded after inbox.js, whose window.ChatappInbox (the API client, the signed-in agent, the
 * banner, the lists) it uses and adds to; it starts the page once both scripts are in.
 * All server text is inserted with textContent / text nodes, never innerHTML.
 */
(function () {
  'use strict';

  var ns = window.ChatappInbox;
  var EVENTS_WAIT_S = 25;
  var TYPING_EVERY_MS = 3000;
  var CUSTOMER_TYPING_MS = 4000;
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  // ---------- from inbox.js ----------
  var $ = ns.$, el = ns.el, noop = ns.noop, enc = ns.enc, str = ns.str, num = ns.num;
  var parseTime = ns.parseTime, itemsOf = ns.itemsOf, api = ns.api, signedIn = ns.signedIn, me = ns.me;
  var personName = ns.personName, showInfo = ns.showInfo, reportError = ns.reportError;
  var refreshLists = ns.refreshLists, customerName = ns.customerName, priorityOf = ns.priorityOf;

  // ---------- small helpers ----------
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
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
  // ---------- state ----------
  var cur = null;           // the open conversation (see openConversation)
  var canned = [], cannedAt = 0;

  /** Marks the open conversation's item in the lists (called by inbox.js after each render). */
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
    if (!id || !signedIn()) return;
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
      while (!loop.stopped && cur === c && signedIn()) {
        var began = Date.now(), got = 0;
        try {
          got = await pollEvents(c, loop);
          failures = 0;
        } catch (e) {
          if (loop.stopped || cur !== c || !signedIn()) break;
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
    if (!signedIn()) return;
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

  /** Forgets the canned responses (on signing out). */
  function forgetCanned() {
    canned = [];
    cannedAt = 0;
  }

  // ---------- wiring ----------
  /** This part's controls; called from inbox.js's boot. */
  function wireConversation() {
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
  }

  // ---------- what inbox.js uses ----------
  ns.openConversation = openConversation;
  ns.closeConversation = closeConversation;
  ns.markCurrent = markCurrent;
  ns.loadCanned = loadCanned;
  ns.forgetCanned = forgetCanned;
  ns.wireConversation = wireConversation;

  // Both scripts are in (deferred scripts run in order, before DOMContentLoaded): start the page.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ns.boot);
  else ns.boot();
})();
