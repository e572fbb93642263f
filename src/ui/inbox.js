'use strict';
// The inbox page. Everything it shows comes from the service's public JSON API, requested relative to the
// page (so it works below an API Gateway stage too), with the read token when the service asked for one.
// Text from messages is only ever set as text (text nodes, textContent, attributes), never parsed as HTML.

const PAGE_SIZE = 50;
const POLL_MS = 5000;
// sessionStorage: the token lives as long as this browser tab, and never in the URL or localStorage.
const TOKEN_KEY = 'webhook-ingest.read-token';
const SVG = 'http://www.w3.org/2000/svg';
const VIEWS = ['inbox', 'message', 'statuses', 'stats'];

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; a string child becomes a text node. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== undefined && child !== null));
  return node;
}

/** A query string of the parameters that have a value. */
function query(params) {
  const pairs = Object.entries(params).filter(([, value]) => value !== '' && value !== undefined && value !== 0);
  return new URLSearchParams(pairs.map(([name, value]) => [name, String(value)])).toString();
}

class NeedsToken extends Error {}

class Refused extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** A 422's field errors, or an error's detail, in words. */
function describe(body) {
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  }
  return body && typeof body.detail === 'string' ? body.detail : 'no detail';
}

/** GETs `path` (relative to the page) as JSON, with the read token if one was given. */
async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) {
    throw new NeedsToken(token
      ? 'That token was refused. Enter the read token again.'
      : 'This service keeps its messages behind a read token. Enter it to see them.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new Refused(response.status, describe(body));
  return body;
}

/** The window of a listing of `total` items that is page `page` counted from the newest, as offset and limit. */
function newestWindow(total, page) {
  const end = Math.max(0, total - page * PAGE_SIZE);
  const start = Math.max(0, end - PAGE_SIZE);
  return { offset: start, limit: end - start };
}

/** One page of a listing the API orders oldest first, newest first: the total, then the page's window. */
async function newestFirst(path, filters, page) {
  const head = await api(`${path}?${query({ ...filters, limit: 1 })}`);
  const { offset, limit } = newestWindow(head.total, page);
  if (limit === 0) return { total: head.total, data: [] };
  const body = await api(`${path}?${query({ ...filters, limit, offset })}`);
  return { total: body.total, data: body.data.slice().reverse() };
}

/** What the URL asks to see. */
function state() {
  const params = new URLSearchParams(location.search);
  const asked = params.get('view') || (params.has('message') ? 'message' : 'inbox');
  return {
    view: VIEWS.includes(asked) ? asked : 'inbox',
    message: params.get('message') || '',
    q: params.get('q') || '',
    from: params.get('from') || '',
    since: params.get('since') || '',
    messageId: params.get('message_id') || '',
    page: Math.max(0, Number.parseInt(params.get('page') || '0', 10) || 0),
  };
}

const filtersOf = (s) => ({ q: s.q, from: s.from, since: s.since });

/** A time in the browser's zone, with the stored UTC value on hover. */
function time(ts) {
  const when = new Date(ts);
  const shown = Number.isNaN(when.getTime()) ? ts : when.toLocaleString();
  return el('time', { datetime: ts, title: `${ts} (as stored, UTC)` }, shown);
}

const count = (n) => Number(n).toLocaleString();

/** Term and description pairs. */
function pairs(entries) {
  return entries.flatMap(([term, description]) => [el('dt', {}, term), el('dd', {}, description)]);
}

// Answers for a view no longer shown are dropped: each render has its number.
let generation = 0;
let shownTotal = null;

async function render({ refresh = false } = {}) {
  const s = state();
  const mine = ++generation;
  for (const view of VIEWS) $(view).hidden = view !== s.view;
  for (const link of document.querySelectorAll('header nav a')) {
    const current = link.dataset.view === s.view || (s.view === 'message' && link.dataset.view === 'inbox');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  $('token-form').hidden = true;
  try {
    if (s.view === 'message') await showMessage(s, mine);
    else if (s.view === 'statuses') await showStatuses(s, mine);
    else if (s.view === 'stats') await showStats(mine);
    else await showInbox(s, mine, refresh);
    if (mine === generation) $('error').hidden = true;
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof NeedsToken) askForToken(error.message);
    else showError(error);
  }
}

function showError(error) {
  $('error').textContent = error instanceof Refused
    ? `The service answered ${error.status}: ${error.message}`
    : `The service could not be reached (${error.message}). It is tried again on the next action.`;
  $('error').hidden = false;
}

function askForToken(reason) {
  for (const view of VIEWS) $(view).hidden = true;
  $('token-reason').textContent = reason;
  $('token-form').hidden = false;
  $('token').focus();
}

/** Shows `href` (a query of this page) and remembers where it came from, for Back. */
function open(href) {
  history.pushState({ back: location.search }, '', href);
  return render();
}

function back() {
  if (history.state && 'back' in history.state) history.back();
  else open('?');
}

async function showInbox(s, mine, refresh) {
  if (!refresh) {
    $('q').value = s.q;
    $('from').value = s.from;
    $('since').value = s.since;
  }
  const filters = filtersOf(s);
  const { total, data } = await newestFirst('messages', filters, s.page);
  if (mine !== generation) return;
  shownTotal = total;
  const filtered = Boolean(s.q || s.from || s.since);
  $('summary').textContent = filtered
    ? `${count(total)} ${total === 1 ? 'message matches' : 'messages match'}`
    : `${count(total)} ${total === 1 ? 'message' : 'messages'}`;
  const list = $('messages');
  const focused = document.activeElement && document.activeElement.dataset.id;
  list.replaceChildren(...data.map(messageRow));
  if (total === 0) {
    list.append(el('li', { class: 'empty' }, filtered
      ? 'No message matches these filters.'
      : 'No messages yet. Send one (make send, or make send-whatsapp) and it appears here.'));
  } else if (data.length === 0) {
    list.append(el('li', { class: 'empty' }, 'No messages on this page: go to newer ones.'));
  }
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  $('page-of').textContent = `Page ${count(s.page + 1)} of ${count(pages)}`;
  $('newer').disabled = s.page === 0;
  $('older').disabled = s.page + 1 >= pages;
  const again = focused && [...list.querySelectorAll('a.row')].find((a) => a.dataset.id === focused);
  if (again) again.focus();
}

function messageRow(m) {
  const text = m.text === null ? el('span', { class: 'text none' }, '(no text)') : el('span', { class: 'text' }, m.text);
  const link = el('a', { href: `?${query({ message: m.message_id })}`, class: 'row', 'data-id': m.message_id },
    el('span', { class: 'who' }, el('span', { class: 'from' }, m.from), ' to ', el('span', { class: 'to' }, m.to)),
    time(m.ts),
    text);
  return el('li', {}, link);
}

async function showMessage(s, mine) {
  let m = null;
  try {
    m = await api(`messages/${encodeURIComponent(s.message)}`);
  } catch (error) {
    if (!(error instanceof Refused && error.status === 404)) throw error;
  }
  if (mine !== generation) return;
  $('copied').textContent = '';
  if (m === null) {
    $('message-title').textContent = 'No such message';
    $('fields').replaceChildren(...pairs([['message_id', s.message], ['', 'No message is stored under this id.']]));
    $('raw').textContent = '';
    $('received-parts').replaceChildren();
    return;
  }
  $('message-title').textContent = m.type ? `Message (${m.type})` : 'Message';
  $('fields').replaceChildren(...pairs([
    ['message_id', el('code', {}, m.message_id)],
    ['from', m.from],
    ['to', m.to],
    ['ts', el('span', {}, time(m.ts), ' ', el('code', {}, m.ts))],
    ['type', m.type || '(none: a POST /webhook message)'],
    ['text', m.text === null ? '(no text)' : el('span', { class: 'text' }, m.text)],
  ]));
  $('raw').textContent = m.raw === null
    ? '(not kept: this message was stored before the service kept messages as received)'
    : JSON.stringify(m.raw, null, 2);
  const parts = [];
  for (const [name, title] of [['contact', 'Sender (contacts entry)'], ['metadata', 'Metadata of the change']]) {
    if (m[name] !== undefined) parts.push(el('h3', {}, title), el('pre', { tabindex: '0' }, JSON.stringify(m[name], null, 2)));
  }
  $('received-parts').replaceChildren(...parts);
}

async function copyRaw() {
  const text = $('raw').textContent;
  try {
    await navigator.clipboard.writeText(text);
    $('copied').textContent = 'Copied.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('raw'));
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    $('copied').textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
  }
}

async function showStatuses(s, mine) {
  $('status-message-id').value = s.messageId;
  const filters = { message_id: s.messageId };
  const { total, data } = await newestFirst('statuses', filters, s.page);
  if (mine !== generation) return;
  // One timeline per outgoing message, the most recently active first, its steps in time order.
  const timelines = new Map();
  for (const status of data) {
    if (!timelines.has(status.message_id)) timelines.set(status.message_id, []);
    timelines.get(status.message_id).unshift(status);
  }
  $('status-summary').textContent = `${count(total)} ${total === 1 ? 'status' : 'statuses'}`;
  const list = $('timelines');
  list.replaceChildren(...[...timelines].map(([id, steps]) => el('li', { class: 'timeline' },
    el('p', {}, el('code', {}, id), steps[0].recipient_id ? ` to ${steps[0].recipient_id}` : ''),
    el('ol', { class: 'steps' }, ...steps.map(statusStep)))));
  if (total === 0) {
    list.append(el('li', { class: 'empty' }, s.messageId
      ? 'No statuses for this message id.'
      : 'No delivery statuses yet: WhatsApp sends them for the messages the business sends.'));
  }
  $('status-newer').disabled = s.page === 0;
  $('status-older').disabled = (s.page + 1) * PAGE_SIZE >= total;
}

function statusStep(status) {
  const step = el('li', { class: status.status === 'failed' ? 'step failed' : 'step' },
    el('strong', {}, status.status), ' ', time(status.ts));
  for (const error of Array.isArray(status.errors) ? status.errors : []) {
    step.append(' ', el('span', { class: 'why' }, [error.code, error.title].filter((part) => part !== undefined).join(' ')));
  }
  return step;
}

async function showStats(mine) {
  const stats = await api('stats');
  if (mine !== generation) return;
  const when = (ts) => (ts === null ? '(none yet)' : time(ts));
  $('totals').replaceChildren(...pairs([
    ['Messages', count(stats.total_messages)],
    ['Senders', count(stats.senders_count)],
    ['First message', when(stats.first_message_ts)],
    ['Last message', when(stats.last_message_ts)],
  ]));
  $('chart').replaceChildren(chart(stats.messages_per_sender));
  const statuses = Object.entries(stats.statuses_by_status || {});
  $('status-counts').replaceChildren(...(statuses.length
    ? pairs(statuses.map(([status, n]) => [status, count(n)]))
    : pairs([['', 'No delivery statuses yet.']])));
}

/** Messages per sender as horizontal bars, drawn here as SVG. */
function chart(senders) {
  if (senders.length === 0) return el('p', { class: 'empty' }, 'No messages yet.');
  const row = 28;
  const label = 150;
  const bars = 280;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${label + bars + 80} ${senders.length * row}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Messages per sender');
  const most = Math.max(...senders.map((s) => s.count));
  const shape = (name, attributes, text) => {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  senders.forEach((sender, i) => {
    const width = Math.max(2, (sender.count / most) * bars);
    shape('text', { x: 0, y: i * row + 19, class: 'label' }, sender.from);
    shape('rect', { x: label, y: i * row + 6, width, height: row - 10, class: 'bar' });
    shape('text', { x: label + width + 6, y: i * row + 19, class: 'value' }, count(sender.count));
  });
  return svg;
}

// Links to this page's own views are followed here, without a reload.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="?"]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  if (link.id === 'back') back();
  else open(link.getAttribute('href'));
});

document.addEventListener('keydown', (event) => {
  if (event.target.matches('input')) {
    if (event.key === 'Escape') event.target.blur();
    return;
  }
  if (event.key === '/') {
    event.preventDefault();
    const ready = state().view === 'inbox' ? Promise.resolve() : open('?');
    ready.then(() => $('q').focus());
  } else if (event.key === 'Escape' && state().view === 'message') {
    back();
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    const rows = [...document.querySelectorAll('section:not([hidden]) a.row')];
    if (rows.length === 0) return;
    event.preventDefault();
    const at = rows.indexOf(document.activeElement);
    const next = event.key === 'ArrowDown' ? Math.min(rows.length - 1, at + 1) : Math.max(0, at - 1);
    rows[at === -1 ? 0 : next].focus();
  }
});

$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  open(`?${query({ q: $('q').value, from: $('from').value.trim(), since: $('since').value.trim() })}`);
});
$('clear').addEventListener('click', () => open('?'));
$('status-filters').addEventListener('submit', (event) => {
  event.preventDefault();
  open(`?${query({ view: 'statuses', message_id: $('status-message-id').value.trim() })}`);
});
const turn = (by) => () => {
  const s = state();
  const params = s.view === 'statuses'
    ? { view: 'statuses', message_id: s.messageId }
    : filtersOf(s);
  open(`?${query({ ...params, page: s.page + by })}`);
};
$('newer').addEventListener('click', turn(-1));
$('older').addEventListener('click', turn(1));
$('status-newer').addEventListener('click', turn(-1));
$('status-older').addEventListener('click', turn(1));
$('copy-raw').addEventListener('click', copyRaw);
$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value);
  $('token').value = '';
  render();
});
addEventListener('popstate', () => render());

// New arrivals: the newest page asks for its total every few seconds and is drawn again when it changed.
setInterval(async () => {
  const s = state();
  if (document.hidden || s.view !== 'inbox' || s.page !== 0 || !$('token-form').hidden) return;
  try {
    const head = await api(`messages?${query({ ...filtersOf(s), limit: 1 })}`);
    if (head.total !== shownTotal) await render({ refresh: true });
  } catch {
    // The next poll tries again; a failure a person should see shows on their next action.
  }
}, POLL_MS);

render();
