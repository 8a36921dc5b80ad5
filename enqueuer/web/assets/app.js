// blobferry's operator page: polls the JSON of `blobferry web`, draws it, and posts the operator's actions.
'use strict';

const POLL_MS = 2000;
const PAGE_SIZE = 50;
const state = {
  token: sessionStorage.getItem('blobferry-token') || '',
  selected: decodeURIComponent((location.pathname.match(/^\/migrations\/(.+)$/) || [])[1] || ''),
  offset: 0,
  search: '',
  reason: '',
  detail: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

const number = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Number(n), unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return (unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)) + ' ' + units[unit];
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return 'unknown';
  seconds = Math.round(seconds);
  if (seconds < 60) return seconds + ' s';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min ' + (seconds % 60) + ' s';
  if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
  return Math.floor(seconds / 86400) + ' d ' + Math.floor((seconds % 86400) / 3600) + ' h';
}

function rate(m) {
  if (m.rate_objects_per_second === null) return 'unknown yet';
  const ops = m.rate_objects_per_second;
  return (ops < 10 ? ops.toFixed(2) : ops.toFixed(1)) + ' obj/s · ' + bytes(m.rate_bytes_per_second) + '/s';
}

function routeText(m) {
  const r = m.route || {};
  if (!r.from) return '';
  return r.from + ' → ' + r.to + (r.source ? ' (' + r.source + ')' : '');
}

const jobsFraction = (m) => (m.total > 0 ? m.finished_jobs / m.total : 0);

function setConnection(kind, text) {
  const pill = $('connection');
  pill.dataset.state = kind;
  pill.textContent = text;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers['X-Blobferry-Token'] = state.token;
  if (options.method === 'POST') {
    headers['X-Blobferry-Action'] = '1';
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
  } catch (e) {
    setConnection('down', 'blobferry web unreachable · retrying');
    throw e;
  }
  if (response.status === 403 && !options.method) {
    $('token-form').hidden = false;
    setConnection('down', 'token needed');
  }
  if (response.status === 503) {
    const body = await response.json().catch(() => ({}));
    setConnection('down', 'Redis unavailable · retrying');
    throw new Error(body.error || 'Redis unavailable');
  }
  return response;
}

function badge(node, stateName) {
  node.className = 'badge ' + stateName;
  node.textContent = stateName;
}

function progressBar(fraction) {
  const bar = el('div', { class: 'bar thin' });
  const fill = el('div', { class: 'fill' });
  fill.style.width = (100 * Math.min(1, fraction)).toFixed(1) + '%';
  bar.append(fill);
  return bar;
}

function renderList(migrations) {
  const body = $('migrations').querySelector('tbody');
  body.replaceChildren();
  $('empty').hidden = migrations.length > 0;
  for (const m of migrations) {
    const link = el('a', { href: '/migrations/' + encodeURIComponent(m.migration), text: m.migration });
    const stateCell = el('td');
    badge(stateCell.appendChild(el('span')), m.state);
    const bar = el('td', {}, progressBar(jobsFraction(m)), el('div', { class: 'muted', text: (100 * jobsFraction(m)).toFixed(1) + '% of ' + number(m.total) + ' jobs' }));
    const row = el('tr', { 'data-migration': m.migration },
      el('td', {}, link), el('td', { text: routeText(m) }), stateCell, bar,
      el('td', { text: number(m.copied + m.skipped) }), el('td', { text: number(m.failed) }),
      el('td', { text: rate(m) }), el('td', { text: duration(m.eta_seconds) }));
    body.append(row);
  }
}

// The last hour, or less while the page has watched for less (at least two
// minutes), so a short run is a curve rather than a spike at the right edge.
function renderChart(history) {
  const chart = $('chart');
  chart.replaceChildren();
  const width = 640, height = 180, top = 14, bottom = 18;
  const now = Date.now() / 1000;
  const recent = history.filter((p) => p.t >= now - 3600);
  const span = Math.min(3600, Math.max(120, recent.length ? now - recent[0].t : 3600));
  const start = now - span;
  const points = recent.filter((p) => p.t >= start);
  const max = Math.max(1, ...points.map((p) => p.objects_per_second));
  const x = (t) => ((t - start) / span) * width;
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  chart.append(svg('line', { class: 'axis', x1: 0, y1: y(0), x2: width, y2: y(0) }));
  chart.append(svg('line', { class: 'axis', x1: 0, y1: y(max), x2: width, y2: y(max) }));
  const label = svg('text', { x: 4, y: top - 3 });
  label.textContent = (max < 10 ? max.toFixed(2) : max.toFixed(0)) + ' obj/s';
  chart.append(label);
  const ago = (seconds) => (seconds >= 120 ? '-' + Math.round(seconds / 60) + ' min' : '-' + Math.round(seconds) + ' s');
  for (const [fraction, anchor] of [[1, 'start'], [0.5, 'middle'], [0, 'end']]) {
    const tick = svg('text', { x: x(now - fraction * span), y: height - 4, 'text-anchor': anchor });
    tick.textContent = fraction === 0 ? 'now' : ago(fraction * span);
    chart.append(tick);
  }
  const period = span >= 3600 ? 'last hour' : 'last ' + ago(span).slice(1);
  if (points.length === 0) {
    $('chart-legend').textContent = '· ' + period + ', no samples yet';
    return;
  }
  const line = points.map((p, i) => (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.objects_per_second).toFixed(1)).join(' ');
  const first = points[0], last = points[points.length - 1];
  chart.append(svg('path', { class: 'area', d: line + ' L' + x(last.t).toFixed(1) + ' ' + y(0) + ' L' + x(first.t).toFixed(1) + ' ' + y(0) + ' Z' }));
  chart.append(svg('path', { class: 'line', d: line }));
  const peakBytes = Math.max(...points.map((p) => p.bytes_per_second));
  $('chart-legend').textContent = '· objects per second, ' + period + ', peak ' + bytes(peakBytes) + '/s';
}

function renderWorkers(workers) {
  const body = $('workers').querySelector('tbody');
  body.replaceChildren();
  for (const w of workers) {
    body.append(el('tr', {}, el('td', { class: 'key', text: w.id }),
      el('td', { text: number(w.in_flight) + (w.info.concurrency ? ' / ' + w.info.concurrency : '') }),
      el('td', { text: (w.seen_ms_ago / 1000).toFixed(0) + ' s ago' })));
  }
  $('no-workers').hidden = workers.length > 0;
}

function renderReasons(m) {
  const box = $('reasons');
  box.replaceChildren();
  const select = $('reason-filter');
  const keep = select.value;
  select.replaceChildren(el('option', { value: '', text: 'every reason' }));
  for (const [reason, count] of Object.entries(m.failed_by_reason)) {
    const button = el('button', { type: 'button', class: 'secondary', 'data-reason': reason, text: 'Requeue' });
    button.addEventListener('click', () => requeue(reason, count));
    box.append(el('div', { class: 'reason' }, el('span', { text: reason }), el('b', { text: number(count) }), button));
    select.append(el('option', { value: reason, text: reason }));
  }
  select.value = keep;
  $('requeue-all').disabled = m.failed === 0;
}

// The shared budgets as the workers left them (status --json's "budgets"):
// shown once a worker has used one, so an operator sees a throttled
// provider's rate being cut and climbing back.
function renderBudgets(budgets) {
  const body = $('budgets').querySelector('tbody');
  body.replaceChildren();
  const perSecond = (n) => (n === null ? null : (n < 10 ? n.toFixed(1) : n.toFixed(0)));
  for (const b of budgets || []) {
    const rate = perSecond(b.requests_per_second);
    const ceiling = perSecond(b.max_requests_per_second);
    body.append(el('tr', {},
      el('td', { class: 'key', text: b.service }),
      el('td', { text: b.direction === 'read' ? 'read (source)' : 'write (target)' }),
      el('td', { class: 'budget-rate', text: rate === null ? 'unlimited' : rate + ' req/s' }),
      el('td', { class: 'budget-ceiling', text: ceiling === null ? 'none' : ceiling + ' req/s' }),
      el('td', { text: number(b.cuts) + (b.cuts === 1 ? ' time' : ' times') }),
      el('td', { text: b.max_bandwidth === null ? 'unlimited' : bytes(b.max_bandwidth) + '/s' })));
  }
  $('budgets-panel').hidden = !budgets || budgets.length === 0;
}

function renderDetail(m) {
  state.detail = m;
  $('detail').hidden = false;
  $('d-name').textContent = m.migration;
  badge($('d-state'), m.state);
  $('d-route').textContent = routeText(m) + (m.started_at ? ' · started ' + new Date(m.started_at * 1000).toLocaleString() : '');
  for (const node of document.querySelectorAll('[data-field]')) {
    const value = m[node.dataset.field];
    node.textContent = number(value);
    if (value === 0) node.dataset.zero = ''; else delete node.dataset.zero;
  }
  const fraction = jobsFraction(m);
  $('d-jobs-bar').style.width = (100 * fraction).toFixed(1) + '%';
  $('d-jobs-text').textContent = number(m.finished_jobs) + ' of ' + number(m.total) + ' jobs · ' + (100 * fraction).toFixed(1) + '%';
  // Only bytes done are known (no table says every size up front): the total is estimated from the jobs done.
  const done = m.bytes_copied + m.bytes_skipped;
  const estimate = fraction > 0 ? done / fraction : 0;
  $('d-bytes-bar').style.width = (estimate > 0 ? (100 * done) / estimate : 0).toFixed(1) + '%';
  $('d-bytes-text').textContent = bytes(done) + (fraction > 0 && fraction < 1 ? ' of about ' + bytes(estimate) : '');
  $('d-rate').textContent = rate(m);
  $('d-eta').textContent = m.state === 'paused' ? 'paused' : duration(m.eta_seconds);
  $('pause').hidden = m.paused;
  $('resume').hidden = !m.paused;
  renderPhases(m);
  renderBudgets(m.budgets);
  renderChart(m.history);
  renderWorkers(m.workers_detail);
  renderReasons(m);
}

const clock = (epoch) => new Date(epoch * 1000).toLocaleTimeString();

function phaseWhen(p) {
  if (p.running) return 'running since ' + clock(p.started_at);
  return (p.interrupted ? 'interrupted at ' : 'finished at ') + clock(p.finished_at || p.started_at);
}

// What validate and switch recorded (counts in Redis) and, with a database,
// the verified rows counted there: shown only when one of them exists.
function renderPhases(m) {
  const v = m.validation, s = m.switch;
  $('phases').hidden = m.verified_rows === null && !v && !s;
  // The rows counted now, else what the last validate round recorded; a
  // source that records no verification (listing, manifest) checks every
  // object each round, so that round's counts are the progress.
  let verified = m.verified_rows !== null ? m.verified_rows : (v && v.verified_total !== undefined ? v.verified_total : null);
  let total = v && v.to_verify !== undefined ? Math.max(v.to_verify, verified || 0) : null;
  let label = 'Verified rows';
  if (v && verified === null) { verified = v.verified; total = v.checked; label = 'Verified by the last validate'; }
  $('d-verified-label').textContent = label;
  $('d-verified').textContent = number(verified);
  $('d-to-verify').textContent = total === null ? 'unknown (no validate yet)' : number(total);
  $('d-verified-bar').style.width = (total ? (100 * Math.min(1, (verified || 0) / total)) : 0).toFixed(1) + '%';
  // A first round still running has no counts yet.
  $('d-validate').textContent = !v ? 'not run yet' : phaseWhen(v) + (v.checked === undefined ? '' : ' · ' +
    number(v.checked) + ' checked: ' + number(v.verified) + ' verified, ' + number(v.missing) + ' missing, ' +
    number(v.mismatched) + ' differ, ' + number(v.unverifiable) + ' unverifiable');
  $('d-switch').textContent = !s ? 'not run yet' : phaseWhen(s) + (s.switched === undefined ? '' : ' · ' + number(s.switched) +
    ' rows switched, ' + number(s.unverified) + ' not verified yet');
}

async function loadFailures() {
  const params = new URLSearchParams({ offset: state.offset, limit: PAGE_SIZE });
  if (state.search) params.set('q', state.search);
  if (state.reason) params.set('reason', state.reason);
  const response = await api('/api/migrations/' + encodeURIComponent(state.selected) + '/failures?' + params);
  if (!response.ok) return;
  const page = await response.json();
  const body = $('failures').querySelector('tbody');
  body.replaceChildren();
  for (const f of page.failures) {
    body.append(el('tr', {}, el('td', { class: 'key', text: f.key }), el('td', { text: f.reason }),
      el('td', { text: f.attempts }), el('td', { class: 'message-cell', text: f.message }),
      el('td', { class: 'muted time', title: f.time, text: f.time.replace(/^.*T|Z$/g, '') })));
  }
  if (page.failures.length === 0) body.append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No failure' + (state.search || state.reason ? ' matches.' : '.') })));
  const last = Math.min(page.matching, state.offset + page.failures.length);
  $('page-text').textContent = page.matching ? (state.offset + 1) + '–' + last + ' of ' + number(page.matching) : '';
  $('prev').disabled = state.offset === 0;
  $('next').disabled = last >= page.matching;
}

function showMessage(text, isError) {
  const message = $('message');
  message.hidden = false;
  message.textContent = text;
  message.className = 'message' + (isError ? ' error' : '');
}

async function post(action, form) {
  const response = await api('/api/migrations/' + encodeURIComponent(state.selected) + '/' + action,
    { method: 'POST', body: new URLSearchParams(form || {}).toString() });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function requeue(reason, count) {
  const what = reason ? count + ' failed keys with reason ' + reason : 'every failed key';
  if (!confirm('Put ' + what + ' back on the queue of ' + state.selected + '?')) return;
  try {
    const body = await post('requeue', reason ? { reason } : {});
    showMessage('Requeued ' + body.requeued + ' failed keys' + (reason ? ' with reason ' + reason : '') + '.');
  } catch (e) {
    showMessage('Requeue refused: ' + e.message, true);
  }
  refresh();
}

async function setPaused(paused) {
  try {
    await post(paused ? 'pause' : 'resume');
    showMessage(paused ? 'Paused: workers take none of its jobs; copies in flight finish.' : 'Resumed.');
  } catch (e) {
    showMessage((paused ? 'Pause' : 'Resume') + ' refused: ' + e.message, true);
  }
  refresh();
}

async function download(format) {
  const response = await api('/api/migrations/' + encodeURIComponent(state.selected) + '/report?format=' + format);
  if (!response.ok) { showMessage('Report refused: ' + response.statusText, true); return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el('a', { href: url, download: state.selected + '-report.' + format });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function refresh() {
  try {
    const list = await api('/api/migrations');
    if (!list.ok) return;
    renderList((await list.json()).migrations);
    $('list').hidden = Boolean(state.selected);
    if (state.selected) {
      const detail = await api('/api/migrations/' + encodeURIComponent(state.selected));
      if (detail.status === 404) { showMessage('No migration named ' + state.selected + '.', true); return; }
      if (!detail.ok) return;
      renderDetail(await detail.json());
      await loadFailures();
    }
    setConnection('live', 'live · updated ' + new Date().toLocaleTimeString());
    document.body.dataset.loaded = 'true';
  } catch (e) {
    // api() has said what is wrong; the next poll retries.
  }
}

function start() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token-input').value;
    sessionStorage.setItem('blobferry-token', state.token);
    $('token-form').hidden = true;
    refresh();
  });
  $('pause').addEventListener('click', () => setPaused(true));
  $('resume').addEventListener('click', () => setPaused(false));
  $('requeue-all').addEventListener('click', () => requeue('', state.detail ? state.detail.failed : 0));
  $('download-csv').addEventListener('click', () => download('csv'));
  $('download-jsonl').addEventListener('click', () => download('jsonl'));
  $('failure-search').addEventListener('submit', (event) => {
    event.preventDefault();
    state.search = $('search-input').value;
    state.reason = $('reason-filter').value;
    state.offset = 0;
    loadFailures();
  });
  $('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadFailures(); });
  $('next').addEventListener('click', () => { state.offset += PAGE_SIZE; loadFailures(); });
  fetch('/api/config').then((r) => r.json()).then((config) => {
    if (config.token_required && !state.token) $('token-form').hidden = false;
  }).catch(() => {});
  refresh();
  setInterval(refresh, POLL_MS);
}

start();
