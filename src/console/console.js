// deskd operator console. Plain ES module, no build step.
// Auth: an HttpOnly session cookie set by POST /console/login; every state-changing request carries
// X-Deskd-Console: 1 (CSRF header the server requires on cookie-authenticated POSTs).
// Routes used: GET /console/session, POST /console/login, POST /console/logout, GET /v1/health,
// GET /v1/screenshot, POST /v1/observe, GET /v1/approvals, POST /v1/approvals/:id, GET|POST /v1/halt,
// POST /v1/resume, GET /v1/audit, POST /v1/tasks + GET /v1/tasks/:id/events (SSE) when present,
// GET /v1/recordings[/:id], POST /v1/replays + GET /v1/replays/:id/events (SSE) when present,
// GET /v1/workspaces when present (issue 22: the screen picker; screenshot and observe name the picked
// workspace with `workspace`, which the operator may name for any workspace).

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const state = {
  display: null, // {id, x, y, width, height} of the observed display (points)
  observation: null,
  auditSeq: 0,
  timers: [],
  screenUrl: null,
  taskSource: null,
  taskId: null,
  workspace: '', // id of the workspace whose screen is shown; '' = the user's desktop
  screenNote: '', // why the screen changed by itself (a shown workspace was deleted), until the next pick
  workspaces: [], // GET /v1/workspaces summaries
  approvalWhere: new Map(), // approval id → workspace id ('' = the user's desktop), from the audit log's `requested` records
};

/** fetch with the console's CSRF header; throws {status, code, message} on HTTP errors. */
async function api(method, path, body) {
  const init = { method, headers: { 'x-deskd-console': '1' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (!r.ok) {
    let code = 'HTTP_' + r.status;
    let message = r.statusText;
    try {
      const j = await r.json();
      if (j && j.error) ({ code, message } = j.error);
    } catch { /* not JSON */ }
    const e = new Error(`${code}: ${message}`);
    Object.assign(e, { status: r.status, code });
    throw e;
  }
  return r;
}
const json = async (method, path, body) => (await api(method, path, body)).json();

function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') n.className = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else n.setAttribute(k, String(v));
  }
  for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}

// ---- sign-in ---------------------------------------------------------------------------------------

async function boot() {
  try {
    await json('GET', '/console/session');
    showApp();
  } catch {
    showLogin();
  }
}

function showLogin() {
  stopTimers();
  $('app').hidden = true;
  $('login').hidden = false;
  $('token').focus();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  const input = /** @type {HTMLInputElement} */ ($('token'));
  try {
    await json('POST', '/console/login', { token: input.value.trim() });
    input.value = '';
    showApp();
  } catch (e) {
    $('login-error').textContent = e.status === 401 ? 'Wrong operator token.' : e.message;
  }
});

$('logout-btn').addEventListener('click', async () => {
  await api('POST', '/console/logout', {}).catch(() => undefined);
  showLogin();
});

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  stopTimers();
  every(1000, refreshScreen);
  every(1000, refreshApprovals);
  every(2000, refreshTimeline);
  every(2000, refreshHalt);
  every(10000, refreshHealth);
  every(3000, refreshWorkspaces);
  setTimeout(() => void refreshRecordings(), 1000);
  every(5000, () => (/** @type {HTMLInputElement} */ ($('auto-observe')).checked ? observe() : undefined));
  void observe();
}

function every(ms, fn) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await fn();
    } catch (e) {
      if (e && e.status === 401) showLogin();
    } finally {
      busy = false;
    }
  };
  void tick();
  state.timers.push(setInterval(tick, ms));
}
function stopTimers() {
  state.timers.forEach(clearInterval);
  state.timers = [];
}

// ---- screen and overlays ---------------------------------------------------------------------------

async function refreshScreen() {
  if (!(/** @type {HTMLInputElement} */ ($('live')).checked) && state.screenUrl) return;
  const ws = state.workspace;
  try {
    const r = await api('GET', `/v1/screenshot?format=jpeg${ws ? `&workspace=${encodeURIComponent(ws)}` : ''}`);
    const [ox, oy] = (r.headers.get('x-deskd-origin') || '0,0').split(',').map(Number);
    const blob = await r.blob();
    // The operator switched screens while this one was on its way: drop it.
    if (ws !== state.workspace) return;
    const url = URL.createObjectURL(blob);
    const img = /** @type {HTMLImageElement} */ ($('screen-img'));
    await new Promise((res) => {
      img.onload = res;
      img.onerror = res;
      img.src = url;
    });
    if (state.screenUrl) URL.revokeObjectURL(state.screenUrl);
    state.screenUrl = url;
    img.dataset.originX = String(ox);
    img.dataset.originY = String(oy);
    img.dataset.loaded = 'true';
    img.dataset.workspace = ws;
    $('screen-error').textContent = '';
  } catch (e) {
    $('screen-error').textContent = `screenshot: ${e.message}`;
    throw e;
  }
}

async function observe() {
  $('observe-info').textContent = 'observing…';
  const ws = state.workspace;
  const where = ws ? { workspace: ws } : {};
  try {
    let o;
    try {
      o = await json('POST', '/v1/observe', { ocr: true, accessibility: true, ...where });
    } catch (e) {
      // A daemon without OCR still has the accessibility tree.
      if (e.code !== 'OCR_FAILED') throw e;
      o = await json('POST', '/v1/observe', { ocr: false, accessibility: true, ...where });
      o.warnings.push('OCR unavailable');
    }
    if (ws !== state.workspace) return; // another screen was picked meanwhile
    state.observation = o;
    state.display = o.display;
    $('observe-info').textContent = `${o.elements.length} elements, ${o.words.length} words, ${Math.round(o.timings.totalMs)} ms${o.warnings.length ? ' — ' + o.warnings.join('; ') : ''}`;
    drawOverlay();
  } catch (e) {
    $('observe-info').textContent = `observe: ${e.message}`;
    throw e;
  }
}

/**
 * The part of `b` (points) inside the display `d`, or null when none of it is: elements of scrolled
 * content can lie thousands of points off screen (a div at y -3544), and their boxes must stay on the image.
 */
function clipToDisplay(b, d) {
  const x0 = Math.max(b.x, d.x);
  const y0 = Math.max(b.y, d.y);
  const x1 = Math.min(b.x + b.width, d.x + d.width);
  const y1 = Math.min(b.y + b.height, d.y + d.height);
  if (!(x1 > x0 && y1 > y0)) return null;
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0, cutTop: b.y < d.y };
}

/**
 * Boxes in display points, clipped to the display, positioned in % of it so they follow the image's size
 * (fit to width or full size). The overlay itself clips too (CSS), so nothing can reach the header.
 */
function drawOverlay() {
  const ov = $('overlay');
  ov.replaceChildren();
  const o = state.observation;
  if (!o) return;
  const d = o.display;
  // CSS pixels per point of the image as shown, to keep ref labels inside the image at its top edge.
  const k = ($('screen-img').clientWidth || d.width) / d.width;
  const box = (b, cls) => {
    const c = clipToDisplay(b, d);
    if (!c) return null;
    const n = el('div', { class: cls });
    n.style.left = `${((c.x - d.x) / d.width) * 100}%`;
    n.style.top = `${((c.y - d.y) / d.height) * 100}%`;
    n.style.width = `${(c.width / d.width) * 100}%`;
    n.style.height = `${(c.height / d.height) * 100}%`;
    if (c.cutTop || (c.y - d.y) * k < 14) n.classList.add('label-inside');
    return n;
  };
  if ((/** @type {HTMLInputElement} */ ($('show-words'))).checked) {
    for (const w of o.words) {
      const n = box(w.bounds, 'word');
      if (!n) continue;
      n.title = `${w.text} (${Math.round(w.confidence * 100)}%)`;
      ov.append(n);
    }
  }
  if ((/** @type {HTMLInputElement} */ ($('show-elements'))).checked) {
    for (const e of o.elements) {
      const n = box(e.bounds, 'el');
      if (!n) continue;
      n.dataset.ref = e.ref;
      n.title = `${e.ref} ${e.role} "${e.name}"${e.states.length ? ' [' + e.states.join(',') + ']' : ''}`;
      n.append(el('span', { class: 'ref' }, e.ref));
      ov.append(n);
    }
  }
}
$('observe-btn').addEventListener('click', () => void observe().catch(() => undefined));
$('show-elements').addEventListener('change', drawOverlay);
$('show-words').addEventListener('change', drawOverlay);

/** fit: the image as wide as its panel; full: one CSS pixel per point, scrolling inside the viewport. */
function applyZoom() {
  const z = /** @type {HTMLSelectElement} */ ($('zoom')).value === 'full' ? 'full' : 'fit';
  $('screen-viewport').dataset.zoom = z;
  drawOverlay();
}
$('zoom').addEventListener('change', applyZoom);
window.addEventListener('resize', () => drawOverlay());

// ---- workspaces (issue 22) ---------------------------------------------------------------------------
// The operator sees every workspace (GET /v1/workspaces lists all of them for the operator) and picks whose
// screen the live view shows; screenshot and observe then name it. A daemon without workspaces answers 404
// and the picker stays hidden.

/** The caption's long form: name, id, owner, display and size. */
function describeWorkspace(w) {
  return `${w.name ? `${w.name} · ` : ''}${w.id} · ${w.owner} · ${w.display} ${w.size}`;
}
/** The picker's short form: name (else id) and owner; the option's title has the long form. */
function workspaceOption(w) {
  return el('option', { value: w.id, title: describeWorkspace(w) }, `${w.name ?? w.id} · ${w.owner}`);
}

function showCaption() {
  const w = state.workspaces.find((x) => x.id === state.workspace);
  $('screen-caption').textContent = state.workspace
    ? `Workspace ${w ? describeWorkspace(w) : state.workspace}${w && w.apps.length ? ` — apps: ${w.apps.filter((a) => !a.exited).map((a) => a.app).join(', ') || 'none running'}` : ''}`
    : state.screenNote || "The user's desktop";
}

async function refreshWorkspaces() {
  let list;
  try {
    list = (await json('GET', '/v1/workspaces')).workspaces;
  } catch (e) {
    if (e.status === 404) {
      $('workspace-picker').hidden = true;
      return;
    }
    throw e;
  }
  state.workspaces = list;
  $('workspace-picker').hidden = false;
  const sel = /** @type {HTMLSelectElement} */ ($('workspace'));
  const want = ['', ...list.map((w) => w.id)];
  const have = [...sel.options].map((o) => o.value);
  if (want.join('\n') !== have.join('\n')) {
    sel.replaceChildren(el('option', { value: '' }, "user's desktop"), ...list.map(workspaceOption));
  }
  if (state.workspace && !list.some((w) => w.id === state.workspace)) {
    const gone = state.workspace;
    switchScreen('');
    state.screenNote = `workspace ${gone} was deleted; showing the user's desktop`;
  }
  sel.value = state.workspace;
  showCaption();
}

/** Show another screen: '' = the user's desktop, else a workspace id. Its overlays are observed anew. */
function switchScreen(id) {
  if (id === state.workspace) return;
  state.workspace = id;
  state.screenNote = '';
  state.observation = null;
  drawOverlay();
  /** @type {HTMLSelectElement} */ ($('workspace')).value = id;
  $('screen-error').textContent = '';
  $('observe-info').textContent = '';
  showCaption();
  void refreshScreen().catch(() => undefined);
  void observe().catch(() => undefined);
}
$('workspace').addEventListener('change', (ev) => switchScreen(/** @type {HTMLSelectElement} */ (ev.target).value));

// ---- approvals -------------------------------------------------------------------------------------

function describeAction(a) {
  if (!a) return '?';
  const parts = [a.type];
  if (a.x !== undefined) parts.push(`at (${Math.round(a.x)}, ${Math.round(a.y)})`);
  if (a.button && a.button !== 'left') parts.push(a.button);
  if (a.keys && a.keys.length) parts.push(a.keys.join('+'));
  if (a.text !== undefined) parts.push(JSON.stringify(a.text));
  if (a.path) parts.push(`${a.path.length}-point path`);
  return parts.join(' ');
}
function describeTarget(t) {
  if (!t) return '';
  const bits = [t.app, t.window ? `"${t.window}"` : null, t.element ? `${t.element.role} "${t.element.name ?? ''}"` : null].filter(Boolean);
  return bits.join(' · ');
}

async function refreshApprovals() {
  let list;
  try {
    list = (await json('GET', '/v1/approvals')).approvals;
  } catch (e) {
    // Hook: a daemon without the policy routes answers 404; say so instead of failing.
    if (e.status === 404) {
      $('approvals-note').textContent = 'This daemon has no approvals route (GET /v1/approvals).';
      return;
    }
    throw e;
  }
  const pending = list.filter((a) => a.status === 'pending');
  $('approval-count').textContent = String(pending.length);
  $('approvals-note').textContent = pending.length ? '' : 'Nothing waits for you.';
  const ul = $('approvals');
  const shown = new Set([...ul.children].map((li) => li.dataset.id));
  const want = new Set(pending.map((a) => a.id));
  for (const li of [...ul.children]) if (!want.has(li.dataset.id)) li.remove();
  for (const a of pending) {
    if (shown.has(a.id)) continue;
    const session = el('input', { type: 'checkbox', 'aria-label': 'for this session' });
    const decide = (decision) => async () => {
      try {
        await json('POST', `/v1/approvals/${encodeURIComponent(a.id)}`, { decision, scope: session.checked && decision === 'approve' ? 'session' : 'once' });
        li.remove();
        void refreshTimeline().catch(() => undefined);
      } catch (e) {
        li.querySelector('.error').textContent = e.message;
      }
    };
    const secs = Math.max(0, Math.round((a.expiresAt - Date.now()) / 1000));
    const li = el(
      'li',
      { dataset: { id: a.id } },
      el('div', { class: 'what' }, describeAction(a.action)),
      el('div', { class: 'muted' }, `${describeTarget(a.target)} — rule ${a.decision?.ruleId ?? '?'}: ${a.decision?.reason ?? ''}`),
      el('div', { class: 'muted' }, `${a.id}, expires in ${secs} s`),
      el('div', { class: 'where muted' }),
      el(
        'div',
        { class: 'buttons' },
        el('button', { class: 'approve', 'data-action': 'approve', onclick: decide('approve') }, 'Approve'),
        el('button', { class: 'danger', 'data-action': 'deny', onclick: decide('deny') }, 'Deny'),
        el('label', {}, session, ' for this session'),
      ),
      el('div', { class: 'error' }),
    );
    ul.append(li);
    showApprovalWhere(a.id);
  }
}

/**
 * Issue 22: where an approval's action would happen. The approval itself does not say; the audit record of
 * its request does (`workspace` on records written in a workspace), so the timeline fills
 * `state.approvalWhere`. Until that record is seen the line says it is not known yet (never "your desktop"
 * by default). A workspace's approval gets a button that shows that workspace's screen.
 */
function showApprovalWhere(id) {
  const li = [...$('approvals').children].find((x) => /** @type {HTMLElement} */ (x).dataset.id === id);
  const slot = li?.querySelector('.where');
  if (!slot) return;
  if (!state.approvalWhere.has(id)) {
    slot.textContent = 'where: not known yet (waiting for the audit record)';
    return;
  }
  const ws = state.approvalWhere.get(id);
  slot.dataset.workspace = ws;
  if (!ws) slot.replaceChildren("on the user's desktop");
  else slot.replaceChildren(`in workspace ${ws} `, el('button', { type: 'button', class: 'show-ws', onclick: () => switchScreen(ws) }, 'Show its screen'));
}

// ---- halt / resume ---------------------------------------------------------------------------------

function showHalt(s) {
  const pill = $('halt-state');
  pill.textContent = s.halted ? `HALTED by ${s.by}: ${s.reason}` : 'running';
  pill.classList.toggle('halted', s.halted);
  $('halt-btn').hidden = s.halted;
  $('resume-btn').hidden = !s.halted;
}
async function refreshHalt() {
  try {
    showHalt((await json('GET', '/v1/halt')).state);
  } catch (e) {
    if (e.status === 404) {
      $('halt-state').textContent = 'no kill switch on this daemon';
      $('halt-btn').hidden = true;
      return;
    }
    throw e;
  }
}
$('halt-btn').addEventListener('click', async () => showHalt((await json('POST', '/v1/halt', { reason: 'operator pressed Halt in the console' })).state));
$('resume-btn').addEventListener('click', async () => showHalt((await json('POST', '/v1/resume', {})).state));

async function refreshHealth() {
  const h = await json('GET', '/v1/health');
  $('health').textContent = `${h.version} · ${h.platform}${h.warnings.length ? ' · ' + h.warnings.join('; ') : ''}`;
}

// ---- timeline (audit log) ----------------------------------------------------------------------------

function describeRecord(r) {
  switch (r.kind) {
    case 'decision':
      return [
        `decision `,
        el('span', { class: `eff-${r.decision?.effect}` }, r.decision?.effect ?? '?'),
        ` ${describeAction(r.action)} — ${describeTarget(r.target)} (${r.decision?.ruleId ?? ''}, ${r.actor ?? '?'})`,
        // Issue 17: the agent's own words for why it acts (text node: never parsed as HTML).
        ...(r.reason ? [' ', el('span', { class: 'reason' }, `why: ${r.reason}`)] : []),
      ];
    case 'result':
      return ['result ', el('span', { class: r.ok ? 'ok' : 'fail' }, r.ok ? 'ok' : 'failed'), r.error ? ` ${r.error.code}: ${r.error.message}` : '', ` (decision #${r.decisionSeq})`];
    case 'approval':
      return [`approval ${r.event} ${r.approvalId}${r.outcome ? `: ${r.outcome.decision} (${r.outcome.via}, ${r.outcome.scope})` : ''}`];
    case 'halt':
      return [`halt by ${r.by}: ${r.reason}`];
    case 'resume':
      return [`resume by ${r.by}`];
    case 'daemon':
      return [`daemon ${r.event} (pid ${r.pid}${r.policy ? `, policy ${r.policy.source}` : ''})`];
    case 'agent':
      return [`agent ${r.agent} ${r.event === 'revoke' ? 'revoked' : `added (${r.role})`}`];
    case 'checkpoint':
      return [`checkpoint at seq ${r.checkpoint?.seq ?? '?'}`];
    case 'policy':
      return [`policy ${r.event}: ${r.ok ? (r.changed ? 'applied' : 'unchanged') : `refused (${r.error?.code ?? '?'}), last good kept`} (${r.source})`];
    case 'workspace':
      return [`workspace ${r.event} ${r.workspace ?? ''}${r.app ? ` ${r.app}` : ''} by ${r.by ?? '?'}${r.refused ? ` refused (${r.refused})` : ''}`];
    default:
      return [`${r.kind}`];
  }
}
async function refreshTimeline() {
  let records;
  try {
    records = (await json('GET', `/v1/audit?limit=200${state.auditSeq ? `&sinceSeq=${state.auditSeq}` : ''}`)).records;
  } catch (e) {
    if (e.status === 404) {
      $('timeline-note').textContent = 'This daemon has no audit route (GET /v1/audit).';
      return;
    }
    throw e;
  }
  const ol = $('timeline');
  for (const r of records) {
    if (r.seq <= state.auditSeq) continue;
    state.auditSeq = r.seq;
    if (r.kind === 'approval' && r.event === 'requested' && typeof r.approvalId === 'string') {
      state.approvalWhere.set(r.approvalId, typeof r.workspace === 'string' ? r.workspace : '');
      if (state.approvalWhere.size > 1000) state.approvalWhere.delete(state.approvalWhere.keys().next().value);
      showApprovalWhere(r.approvalId);
    }
    const time = new Date(r.ts).toLocaleTimeString();
    const where = r.kind !== 'workspace' && typeof r.workspace === 'string' ? [' ', el('span', { class: 'ws' }, `in ${r.workspace}`)] : [];
    const li = el('li', { class: `k-${r.kind}`, dataset: { seq: r.seq, kind: r.kind, agent: recordAgent(r) } }, el('span', { class: 'seq' }, String(r.seq)), el('span', { class: 'rec' }, `${time} `, ...describeRecord(r), ...where));
    li.hidden = !agentShown(li);
    ol.prepend(li);
  }
  while (ol.children.length > 300) ol.lastElementChild.remove();
}

// Issue 17: filter the timeline by agent (its id, `default` for the agent token, `operator`).
function recordAgent(r) {
  if (typeof r.agent === 'string') return r.agent;
  const a = typeof r.actor === 'string' ? r.actor.replace(/^mcp:/, '') : '';
  if (a.startsWith('agent:')) return a.slice(6).split('/')[0];
  if (a.startsWith('agent/')) return 'default';
  if (a.startsWith('operator')) return 'operator';
  return '';
}
function agentShown(li) {
  const want = /** @type {HTMLInputElement} */ ($('timeline-agent')).value.trim();
  return !want || li.dataset.agent === want;
}
$('timeline-agent').addEventListener('input', () => {
  for (const li of $('timeline').children) li.hidden = !agentShown(/** @type {HTMLElement} */ (li));
});

// ---- task runner -------------------------------------------------------------------------------------
// Hook: POST /v1/tasks {goal} → {taskId}; GET /v1/tasks/:id/events is an SSE stream of task events
// ({seq, type: status|step|approval|retry|final, ...}); POST /v1/tasks/:id/cancel stops it. A daemon
// without these routes answers 404 and the form says so.

$('task-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const goal = /** @type {HTMLTextAreaElement} */ ($('task-goal')).value.trim();
  if (!goal) return;
  $('task-steps').replaceChildren();
  try {
    const t = await json('POST', '/v1/tasks', { goal });
    state.taskId = t.taskId;
    $('task-note').textContent = `task ${t.taskId}: queued`;
    $('task-cancel').hidden = false;
    followTask(t.taskId);
  } catch (e) {
    $('task-note').textContent = e.status === 404 ? 'This daemon has no task runner (POST /v1/tasks).' : e.message;
  }
});
$('task-cancel').addEventListener('click', async () => {
  if (!state.taskId) return;
  await api('POST', `/v1/tasks/${encodeURIComponent(state.taskId)}/cancel`, {}).catch((e) => ($('task-note').textContent = e.message));
});

/**
 * Follow a task's or replay's server-sent events at `url`: `onEvent` gets each parsed event once, whether it
 * came named (`event: step`, one of `names`) or unnamed, in `seq` order (a repeated or older seq is dropped;
 * a line that is not JSON is ignored). Returns the EventSource (close it when done).
 */
function followEvents(url, names, onEvent) {
  const es = new EventSource(url);
  let lastSeq = 0;
  const handle = (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    if (typeof e.seq === 'number') {
      if (e.seq <= lastSeq) return;
      lastSeq = e.seq;
    }
    onEvent(e);
  };
  es.onmessage = handle;
  for (const t of names) es.addEventListener(t, handle);
  return es;
}

function followTask(id) {
  state.taskSource?.close();
  const add = (text) => $('task-steps').append(el('li', {}, text));
  const es = followEvents(`/v1/tasks/${encodeURIComponent(id)}/events`, ['status', 'step', 'approval', 'retry', 'final'], (e) => {
    if (e.type === 'status') $('task-note').textContent = `task ${id}: ${e.status}`;
    else if (e.type === 'step') {
      const ops = (e.step.operations ?? []).map((o) => `${o.tool ?? o.type ?? '?'} → ${o.outcome ?? '?'}`).join(', ');
      add(`step ${e.step.index}: ${e.step.text ? e.step.text.slice(0, 200) + ' ' : ''}${ops ? '[' + ops + ']' : ''} (${Math.round(e.step.durationMs ?? 0)} ms)`);
    }
    else if (e.type === 'approval') add(`waiting for approval (${e.kind}): ${e.detail}`);
    else if (e.type === 'retry') add(`retry ${e.attempt} in ${e.delayMs} ms: ${e.reason}`);
    else if (e.type === 'final') {
      $('task-note').textContent = `task ${id}: ${e.status}${e.answer ? ' — ' + e.answer : ''}${e.error ? ' — ' + e.error.code + ': ' + e.error.message : ''}`;
      $('task-cancel').hidden = true;
      es.close();
    }
  });
  state.taskSource = es;
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) $('task-cancel').hidden = true;
  };
}

// ---- recordings and replays (issue 18) -----------------------------------------------------------------
// GET /v1/recordings lists them; GET /v1/recordings/:id shows the steps with their masked thumbnails
// (served only while the step's app is not masked); POST /v1/replays + GET /v1/replays/:id/events (SSE)
// replays one and shows each step, or the divergence with its candidates.

async function refreshRecordings() {
  try {
    const { recordings } = await json('GET', '/v1/recordings');
    $('recordings-note').textContent = recordings.length ? '' : 'No recordings yet: every task is recorded, and agents can record their own sessions.';
    $('recordings').replaceChildren(
      ...recordings.map((r) =>
        el('li', {}, `${r.name} (${r.steps} steps, ${r.status}) `,
          el('button', { type: 'button', onclick: () => void showRecording(r.id) }, 'Steps'), ' ',
          el('button', { type: 'button', onclick: () => void replay(r.id), ...(r.status !== 'stopped' ? { disabled: '' } : {}) }, 'Replay')),
      ),
    );
  } catch (e) {
    $('recordings-note').textContent = e.status === 404 ? 'This daemon has no recordings (GET /v1/recordings).' : e.message;
  }
}

/** One postcondition as text (kinds: appears, gone, state, window; see docs/replay.md). */
function describePostcondition(p) {
  if (p.kind === 'gone') return `no ${p.role} "${p.text}"`;
  if (p.kind === 'state') return `${p.role} "${p.name}"${(p.has ?? []).map((x) => ` ${x}`).join('')}${(p.lacks ?? []).map((x) => ` not ${x}`).join('')}${p.value !== undefined ? ` = "${p.value}"` : ''}`;
  if (p.kind === 'window') return `window "${p.title}" ${p.present ? 'open' : 'closed'}`;
  return `"${p.text}"`;
}

async function showRecording(id) {
  const rec = await json('GET', `/v1/recordings/${encodeURIComponent(id)}`).catch((e) => ($('recordings-note').textContent = e.message, null));
  if (!rec) return;
  const thumb = (name) => (name && rec.images[name] ? el('img', { class: 'thumb', src: rec.images[name], alt: name }) : '');
  $('replay-steps').replaceChildren(
    ...rec.steps.map((s) => {
      const f = s.fingerprint;
      const what = s.kind === 'wait' ? `wait ${JSON.stringify(s.until)}` : `${s.action?.type ?? '?'}${f ? ` ${f.role} "${f.name}"${f.app ? ' in ' + f.app : ''}` : ''}`;
      const post = s.postconditions.length ? ` → ${s.postconditions.map(describePostcondition).join(', ')}` : '';
      return el('li', {}, thumb(s.thumbnails.before), thumb(s.thumbnails.after), `${what}${post}`);
    }),
  );
}

async function replay(id) {
  $('replay-steps').replaceChildren();
  let r;
  try {
    r = await json('POST', '/v1/replays', { recordingId: id });
  } catch (e) {
    $('recordings-note').textContent = e.message;
    return;
  }
  const add = (text) => $('replay-steps').append(el('li', {}, text));
  const es = followEvents(`/v1/replays/${encodeURIComponent(r.replayId)}/events`, ['status', 'step', 'approval', 'divergence', 'handover', 'final'], (e) => {
    if (e.type === 'status') $('recordings-note').textContent = `replay ${r.replayId}: ${e.status}`;
    else if (e.type === 'step') {
      const g = e.step.grounded;
      add(`step ${e.step.index}: ${e.step.kind}${g ? ` ${g.role} "${g.name}" (score ${g.score})` : ''} ${e.step.outcome}${e.step.error ? ' ' + e.step.error.code : ''} (${Math.round(e.step.durationMs)} ms)`);
    } else if (e.type === 'approval') add(`step ${e.step} waits for approval`);
    else if (e.type === 'divergence') {
      const d = e.divergence;
      add(`diverged at step ${d.step} (${d.reason}); candidates: ${d.candidates.map((c) => `${c.role} "${c.name}" ${c.score}`).join(', ') || 'none'}`);
    } else if (e.type === 'handover') add(`handed over to task ${e.taskId}`);
    else if (e.type === 'final') {
      $('recordings-note').textContent = `replay ${r.replayId}: ${e.status}${e.durationMs !== null ? ` in ${e.durationMs} ms` : ''}${e.error ? ' — ' + e.error.code : ''}`;
      es.close();
    }
  });
}

$('recordings-refresh').addEventListener('click', () => void refreshRecordings());

void boot();
