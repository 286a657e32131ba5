// erlab serve's page: draws the lab from /api/lab (laid out by dagre,
// drawn as SVG elements, each node and link one element carrying its name)
// and follows /api/events (server-sent events) to keep it live. Actions
// (pull, restore, impair a link; run a drill) go to the server with the
// token from the page's address.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const token = new URLSearchParams(location.search).get('token') || '';
const NODE_W = 150, NODE_H = 52;

let lab = null;          // the view: nodes, links, overlays, peers, drills
const ifState = {};      // "node:iface" → up, down, no-carrier
const rates = {};        // "node:iface" → {rx, tx} packets per second
const sessions = {};     // "node address" → BGP state
const speakers = {};     // node → running, unreachable, stopped
const impaired = {};     // "node:iface" → detail
const overlayState = {}; // tunnel → {node → ike state}
const linkEls = {};      // link id → its <g>
const nodeEls = {};      // node → its <g>

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function text(parent, x, y, s, cls, anchor) {
  const t = el('text', { x, y, class: cls || '', 'text-anchor': anchor || 'middle' }, parent);
  t.textContent = s;
  return t;
}

async function main() {
  const res = await fetch('/api/lab');
  lab = await res.json();
  document.getElementById('lab-name').textContent = 'lab ' + lab.name;
  document.title = 'erlab: ' + lab.name;
  document.getElementById('mode').textContent = lab.read_only ? 'read-only: this server takes no action' :
    (token ? '' : 'no token in this address: actions will be refused');
  draw();
  drills();
  connect();
  document.querySelectorAll('#menu button').forEach((b) => b.addEventListener('click', () => menuAction(b.dataset.act)));
}

// draw lays the lab out top to bottom (dagre: the links' direction sets
// the layers, as a network diagram is drawn) and draws it.
function draw() {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 90, ranksep: 150, edgesep: 60, marginx: 150, marginy: 30 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of lab.nodes) g.setNode(n.name, { width: NODE_W, height: NODE_H });
  for (const l of lab.links) g.setEdge(l.a.node, l.b.node, { minlen: 1 }, l.id);
  dagre.layout(g);
  const svg = document.getElementById('lab');
  const size = g.graph();
  // Drawn at its size, or smaller to fit the page's width (a wide lab
  // gets smaller, not a scroll bar).
  const w = size.width + 120, h = size.height + 20; // room for the labels right of the widest layer
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'xMinYMin meet');
  svg.style.maxWidth = w + 'px';
  const overlays = el('g', { class: 'overlays' }, svg);
  const links = el('g', { class: 'links' }, svg);
  const nodes = el('g', { class: 'nodes' }, svg);
  for (const l of lab.links) drawLink(links, l, g.edge({ v: l.a.node, w: l.b.node, name: l.id }).points);
  for (const n of lab.nodes) drawNode(nodes, n, g.node(n.name));
  for (const o of lab.overlays) drawOverlay(overlays, o, g.node(o.a), g.node(o.b));
}

function drawNode(parent, n, pos) {
  const gEl = el('g', {
    class: `node kind-${n.kind} group-${n.group || 'none'}`, 'data-node': n.name, role: 'img',
    'aria-label': `${n.kind} node ${n.name}`, transform: `translate(${pos.x - NODE_W / 2},${pos.y - NODE_H / 2})`,
  }, parent);
  if (n.switch) {
    el('polygon', { points: `12,0 ${NODE_W - 12},0 ${NODE_W},${NODE_H / 2} ${NODE_W - 12},${NODE_H} 12,${NODE_H} 0,${NODE_H / 2}` }, gEl);
  } else {
    el('rect', { width: NODE_W, height: NODE_H, rx: n.kind === 'router' ? 12 : 3 }, gEl);
  }
  text(gEl, NODE_W / 2, 19, n.name, 'name');
  text(gEl, NODE_W / 2, 34, n.kind + (n.group ? ' · ' + n.group : ''), 'kind');
  const sp = text(gEl, NODE_W / 2, 47, '', 'speaker');
  sp.dataset.role = 'speaker';
  nodeEls[n.name] = gEl;
}

function drawLink(parent, l, points) {
  const d = 'M' + points.map((p) => `${p.x},${p.y}`).join(' L');
  const gEl = el('g', {
    class: 'link' + (l.protected ? ' protected' : ''), 'data-link': l.id, 'data-a': `${l.a.node}:${l.a.iface}`,
    'data-b': `${l.b.node}:${l.b.iface}`, 'data-state': 'up', tabindex: '0', role: 'button',
    'aria-label': `link ${l.a.node}:${l.a.iface} to ${l.b.node}:${l.b.iface}`,
  }, parent);
  el('path', { d, class: 'hit' }, gEl);
  el('path', { d, class: 'wire' }, gEl);
  const first = points[0], last = points[points.length - 1];
  endLabel(gEl, l.a, first, points[1] || last, 'a');
  endLabel(gEl, l.b, last, points[points.length - 2] || first, 'b');
  // What the link is doing, left of its middle; its ends' labels are on
  // its right.
  const mx = (first.x + last.x) / 2 - 8, my = (first.y + last.y) / 2;
  const m = text(gEl, mx, my - 13, l.protected || '', 'mid', 'end');
  m.dataset.role = 'mid';
  const bgp = text(gEl, mx, my + 1, '', 'bgp', 'end');
  bgp.dataset.role = 'bgp';
  const rate = text(gEl, mx, my + 15, '', 'rate', 'end');
  rate.dataset.role = 'rate';
  gEl.addEventListener('click', (ev) => { ev.stopPropagation(); openMenu(l); });
  gEl.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); openMenu(l); } });
  linkEls[l.id] = gEl;
}

// endLabel writes an end's interface, address and what is stacked on it
// just off the node, along the link.
function endLabel(parent, end, at, toward, which) {
  const dx = toward.x - at.x, dy = toward.y - at.y, len = Math.hypot(dx, dy) || 1;
  // Along the link from the node, on its outer side: right of a link
  // that leaves straight or to the right, left of one that leaves to the
  // left (two links leaving a node side by side keep their labels apart).
  const left = dx / len < -0.2;
  const x = at.x + (dx / len) * 16 + (left ? -8 : 8), y = at.y + (dy / len) * 16;
  const anchor = left ? 'end' : 'start';
  const lines = [end.iface + (end.addresses && end.addresses.length ? ' ' + end.addresses[0] : '')].concat(end.stacked || []);
  // Downward from an end whose link leaves downward, upward from one
  // whose link comes up.
  const top = dy >= 0 ? y + 8 : y - (lines.length - 1) * 12;
  const t = el('text', { x, y: top, class: `end ${which}`, 'text-anchor': anchor, 'data-end': `${end.node}:${end.iface}` }, parent);
  lines.forEach((s, i) => {
    const span = el('tspan', { x, dy: i === 0 ? 0 : 12 }, t);
    span.textContent = s;
  });
  const imp = el('text', { x, y: dy >= 0 ? top + lines.length * 12 : top - 12, class: 'impair', 'text-anchor': anchor, 'data-impair': `${end.node}:${end.iface}` }, parent);
  imp.textContent = '';
}

function drawOverlay(parent, o, a, b) {
  const gEl = el('g', { class: 'overlay', 'data-overlay': o.name, role: 'img', 'aria-label': `${o.kind} ${o.name}: ${o.label}` }, parent);
  // An arc right of the nodes it joins.
  const cx = Math.max(a.x, b.x) + NODE_W + 60, cy = (a.y + b.y) / 2;
  el('path', { d: `M${a.x + NODE_W / 2},${a.y} Q${cx},${cy} ${b.x + NODE_W / 2},${b.y}` }, gEl);
  const lx = (a.x + b.x) / 4 + cx / 2 + 4;
  text(gEl, lx, cy - 6, `${o.name}: ${o.label}`, 'label', 'start');
  const st = text(gEl, lx, cy + 8, '', 'state', 'start');
  st.dataset.role = 'state';
}

// connect follows the lab's events; the browser reconnects by itself
// when the stream drops.
function connect() {
  const conn = document.getElementById('conn');
  const es = new EventSource('/api/events');
  es.onopen = () => { conn.textContent = 'live'; conn.className = 'conn live'; };
  es.onerror = () => { conn.textContent = 'disconnected: reconnecting…'; conn.className = 'conn lost'; };
  es.onmessage = (m) => apply(JSON.parse(m.data));
}

function apply(e) {
  const at = `${e.node}:${e.object}`;
  switch (e.kind) {
    case 'interface':
      // A removed end (its node stopped: parked) is a link down.
      ifState[at] = e.state;
      if (e.state === 'removed') delete rates[at];
      refreshLinks();
      break;
    case 'counters':
      rates[at] = { rx: (e.values || {}).rx_pps || 0, tx: (e.values || {}).tx_pps || 0 };
      refreshLinks();
      break;
    case 'bgp':
      if (e.object === 'speaker') speakers[e.node] = e.state;
      else if (e.state === 'gone') delete sessions[`${e.node} ${e.object}`];
      else sessions[`${e.node} ${e.object}`] = e.state;
      refreshNodes();
      refreshLinks();
      break;
    case 'impair':
      if (e.state === 'cleared') delete impaired[at]; else impaired[at] = e.detail;
      refreshLinks();
      break;
    case 'ike':
      (overlayState[e.object] = overlayState[e.object] || {})[e.node] = e.state;
      refreshOverlays();
      break;
    case 'drill':
      drillEvent(e);
      break;
  }
  if (!e.initial && e.kind !== 'counters') log(e);
}

// refreshLinks puts each link's state on its element: down when either
// end is down, no-carrier when an end has lost it; the ends' labels, the
// sessions over the link and the traffic it carries.
function refreshLinks() {
  for (const l of lab.links) {
    const gEl = linkEls[l.id];
    const a = ifState[`${l.a.node}:${l.a.iface}`] || 'up', b = ifState[`${l.b.node}:${l.b.iface}`] || 'up';
    let state = 'up';
    if (a === 'down' || b === 'down' || a === 'removed' || b === 'removed') state = 'down';
    else if (a !== 'up' || b !== 'up') state = 'no-carrier';
    gEl.setAttribute('data-state', state);
    gEl.setAttribute('aria-label', `link ${l.a.node}:${l.a.iface} to ${l.b.node}:${l.b.iface}, ${state}`);
    gEl.querySelector('.end.a').classList.toggle('down', a !== 'up');
    gEl.querySelector('.end.b').classList.toggle('down', b !== 'up');
    // Sessions whose neighbour is across this link.
    const states = [];
    for (const p of lab.peers) {
      if (p.link !== l.id) continue;
      const s = sessions[`${p.node} ${p.address}`];
      if (s) states.push(s);
    }
    const bgp = gEl.querySelector('[data-role=bgp]');
    if (states.length) {
      const up = states.filter((s) => s === 'established').length;
      bgp.textContent = up === states.length ? `BGP established (${up})` : `BGP ${states.find((s) => s !== 'established')} (${up}/${states.length} up)`;
      bgp.setAttribute('class', 'bgp ' + (up === states.length ? 'established' : 'down'));
      gEl.setAttribute('data-bgp', up === states.length ? 'established' : 'down');
    } else {
      bgp.textContent = '';
      gEl.removeAttribute('data-bgp');
    }
    const ra = rates[`${l.a.node}:${l.a.iface}`] || { tx: 0 }, rb = rates[`${l.b.node}:${l.b.iface}`] || { tx: 0 };
    const moving = ra.tx > 0 || rb.tx > 0;
    gEl.classList.toggle('moving', moving);
    gEl.setAttribute('data-pps', String(Math.round(ra.tx + rb.tx)));
    gEl.querySelector('[data-role=rate]').textContent = moving ? `→ ${Math.round(ra.tx)} pps, ← ${Math.round(rb.tx)} pps` : '';
    for (const end of [l.a, l.b]) {
      const k = `${end.node}:${end.iface}`;
      gEl.querySelector(`[data-impair="${CSS.escape(k)}"]`).textContent = impaired[k] ? 'impaired: ' + impaired[k] : '';
    }
  }
}

function refreshNodes() {
  for (const [node, gEl] of Object.entries(nodeEls)) {
    const sp = gEl.querySelector('[data-role=speaker]');
    const s = speakers[node];
    let total = 0, up = 0;
    for (const [k, v] of Object.entries(sessions)) {
      if (k.startsWith(node + ' ')) { total++; if (v === 'established') up++; }
    }
    sp.textContent = s === undefined ? '' : (s === 'running' ? `BGP ${up}/${total} established` : `BGP speaker ${s}`);
    sp.setAttribute('class', 'speaker' + (s && s !== 'running' ? ' down' : ''));
    gEl.classList.toggle('stopped', s === 'stopped');
    gEl.setAttribute('data-sessions', `${up}/${total}`);
  }
}

function refreshOverlays() {
  for (const o of lab.overlays) {
    const gEl = document.querySelector(`[data-overlay="${CSS.escape(o.name)}"]`);
    const st = overlayState[o.name] || {};
    const ends = Object.entries(st).map(([n, s]) => `${n} ${s}`).join(', ');
    gEl.querySelector('[data-role=state]').textContent = ends ? 'IKE: ' + ends : '';
    gEl.classList.toggle('down', Object.values(st).some((s) => s !== 'established'));
  }
}

function log(e) {
  const li = document.createElement('li');
  const t = new Date(e.time);
  li.textContent = `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')} ${e.node || '-'} ${e.kind} ${e.object} ${e.state}${e.detail ? ' — ' + e.detail : ''}`;
  li.className = e.state;
  const ol = document.getElementById('log');
  ol.prepend(li);
  while (ol.children.length > 200) ol.lastChild.remove();
}

// The link menu.
let menuLink = null;

function openMenu(l) {
  menuLink = l;
  const m = document.getElementById('menu');
  document.getElementById('menu-title').textContent = `${l.a.node}:${l.a.iface} — ${l.b.node}:${l.b.iface}`;
  document.getElementById('menu-state').textContent = 'now ' + linkEls[l.id].getAttribute('data-state');
  document.getElementById('menu-result').textContent = '';
  m.querySelectorAll('button[data-act]:not([data-act=close]), input').forEach((b) => { b.disabled = lab.read_only; });
  m.hidden = false;
  m.querySelector('button').focus();
}

async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Erlab-Token': token }, body: JSON.stringify(body) });
  const txt = await res.text();
  if (!res.ok) throw new Error(txt.trim());
  return JSON.parse(txt);
}

async function menuAction(act) {
  const m = document.getElementById('menu');
  const out = document.getElementById('menu-result');
  if (act === 'close') { m.hidden = true; return; }
  const l = menuLink;
  try {
    let r;
    if (act === 'down' || act === 'up') {
      r = await post('/api/link', { node: l.a.node, iface: l.a.iface, action: act });
    } else {
      const spec = {};
      for (const k of ['delay', 'loss', 'rate']) {
        const v = document.getElementById('imp-' + k).value.trim();
        if (v) spec[k] = v;
      }
      r = await post('/api/impair', { node: l.a.node, iface: l.a.iface, spec, both: true, clear: act === 'clear' });
    }
    out.textContent = r.did;
  } catch (err) {
    out.textContent = 'refused: ' + err.message;
  }
}

// Drills.
function drills() {
  const sel = document.getElementById('drill');
  if (!lab.drills.length) {
    document.getElementById('no-drills').hidden = false;
    document.getElementById('drill-controls').hidden = true;
    return;
  }
  for (const d of lab.drills) {
    const o = document.createElement('option');
    o.value = d.name;
    o.textContent = d.name;
    o.title = d.description;
    sel.appendChild(o);
  }
  const run = document.getElementById('run-drill');
  run.disabled = lab.read_only;
  run.addEventListener('click', async () => {
    const status = document.getElementById('drill-status');
    try {
      const r = await post('/api/drill', { name: sel.value });
      status.textContent = r.did;
    } catch (err) {
      status.textContent = 'refused: ' + err.message;
    }
  });
}

function drillEvent(e) {
  const status = document.getElementById('drill-status');
  status.textContent = `${e.object}: ${e.state}${e.detail ? ' — ' + e.detail : ''}`;
  status.dataset.state = e.state;
  if (e.state === 'pass' || e.state === 'fail') showTimeline(e.object);
}

// showTimeline shows the timeline of a drill that ended, when this server
// ran it (a drill run from the command line draws its own, --svg). The
// drill's verdict reaches the page a moment before the server has stored
// its result: ask until it has.
async function showTimeline(name) {
  for (let i = 0; i < 50; i++) {
    const r = await (await fetch('/api/drill')).json();
    if (r.last === name && !r.running) {
      const img = document.getElementById('timeline');
      img.src = '/api/drill/timeline.svg?at=' + Date.now();
      img.dataset.drill = name;
      document.getElementById('drill-figure').hidden = false;
      return;
    }
    if (r.running !== name) return; // another server's drill, or another drill
    await new Promise((res) => setTimeout(res, 200));
  }
}

document.addEventListener('click', (ev) => {
  const m = document.getElementById('menu');
  if (!m.hidden && !m.contains(ev.target)) m.hidden = true;
});
document.addEventListener('DOMContentLoaded', () => main().catch((err) => {
  document.getElementById('conn').textContent = 'error: ' + err.message;
  console.error(err);
}));
