// The one page of `vsl serve`: a search box, the ranked images as a grid (the pictures where the server maps
// them, else the five captions stand in), and a click on one shows that image's captions ranked, its own marked.
// Built for browsing a model's failures: the query's tokens with the words outside the vocabulary named, where
// a query that is one of the split's captions finds its own image, a jump to any image by its row, each
// caption one click from being the query, the state in the address (back, reload and links work). Everything is
// inline (no file, font or script fetched from anywhere); the content security policy allows exactly this
// script and this style, and the page builds its DOM with textContent only (captions are data, not HTML).
import crypto from 'node:crypto';
import { DEFAULT_K, MAX_K, MAX_TEXT } from './api.js';

const STYLE = `
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f5f6f8}
header{background:#1d2b45;color:#fff;padding:12px 20px}
header h1{font-size:18px;margin:0 0 2px}
header p{margin:0;font-size:13px;color:#c9d3e6}
main{padding:14px 20px;max-width:1400px;margin:0 auto}
form{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin-bottom:8px}
input,select,button{font:inherit;padding:7px 10px;border:1px solid #b8c0cc;border-radius:6px;background:#fff}
#text{flex:1 1 420px;min-width:240px}
#row{width:110px}
button{background:#2f5fd0;color:#fff;border-color:#2f5fd0;cursor:pointer}
button.plain{background:#fff;color:#2f5fd0}
.status{font-size:13px;color:#4a5568;margin:4px 0 10px;min-height:1.4em}
.tok{display:inline-block;padding:0 5px;margin:1px;border-radius:4px;background:#e6eaf1;font-family:ui-monospace,monospace;font-size:12px}
.tok.unk{background:#fde2e1;color:#a4161a;font-weight:600}
.banner{padding:8px 12px;border-radius:6px;margin:0 0 10px;font-size:14px}
.banner.gt{background:#e7f5ea;border:1px solid #8fd19e}
.banner.err{background:#fde2e1;border:1px solid #f2a3a0;color:#7d1114}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:12px}
a.card{display:block;background:#fff;border:1px solid #d7dce3;border-radius:8px;padding:8px 10px;color:inherit;text-decoration:none}
a.card:hover,a.card:focus{border-color:#2f5fd0;box-shadow:0 0 0 2px #c9d8fb;outline:none}
a.card.gt{border:2px solid #2e9e4f}
.card .top{display:flex;justify-content:space-between;font-size:13px;color:#4a5568;margin-bottom:6px}
.card .top b{color:#1d2330}
.card img{width:100%;height:170px;object-fit:cover;border-radius:4px;background:#e6eaf1}
.card ol,.detail ol{margin:0;padding-left:20px;font-size:13px}
.badge{background:#2e9e4f;color:#fff;border-radius:4px;padding:0 5px;margin-left:4px;font-size:12px}
.overlay{position:fixed;inset:0;background:rgba(20,27,40,.45);display:flex;justify-content:flex-end}
.detail{background:#fff;width:min(760px,100%);height:100%;overflow:auto;padding:16px 20px}
.detail h2{margin:0 0 6px;font-size:18px}
.detail img{max-width:100%;max-height:320px;border-radius:6px}
.detail table{border-collapse:collapse;width:100%;font-size:13px}
.detail td,.detail th{padding:4px 6px;border-bottom:1px solid #e6eaf1;text-align:left;vertical-align:top}
.detail tr.gt{background:#e7f5ea}
.detail a{color:#2f5fd0}
.muted{color:#6b7380}
`;

// Plain ES2017 without template literals: it sits inside a TypeScript template string.
const SCRIPT = `
var $ = function (id) { return document.getElementById(id); };
function el(tag, attrs) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) { if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); }
  for (var i = 2; i < arguments.length; i++) if (arguments[i] != null) e.append(arguments[i]);
  return e;
}
function fill(parent) {
  parent.replaceChildren.apply(parent, Array.prototype.slice.call(arguments, 1).filter(function (c) { return c != null; }));
}
function hashOf(s) {
  var p = new URLSearchParams();
  if (s.q) p.set('q', s.q);
  if (s.k && s.k !== DEFAULT_K) p.set('k', String(s.k));
  if (s.image != null) p.set('image', String(s.image));
  return '#' + p.toString();
}
function state() {
  var p = new URLSearchParams(location.hash.slice(1));
  var k = Number(p.get('k')) || DEFAULT_K;
  var image = p.get('image');
  return { q: p.get('q') || '', k: k, image: image !== null && /^[0-9]+$/.test(image) ? Number(image) : null };
}
async function api(path) {
  var r = await fetch(path, { headers: { Accept: 'application/json' } });
  var body = await r.json().catch(function () { return { error: 'HTTP ' + r.status }; });
  if (!r.ok) { var e = new Error(body.error || ('HTTP ' + r.status)); e.status = r.status; throw e; }
  return body;
}
var info = null, shown = { q: null, k: null }, retry = null;
function fmt(x) { return x.toFixed(4); }
function banner(cls, children) { var b = el('div', { class: 'banner ' + cls }); children.forEach(function (c) { b.append(c); }); return b; }
function showError(where, e) { where.replaceChildren(banner('err', [e.message])); }

async function runSearch(s) {
  shown = { q: s.q, k: s.k };
  $('text').value = s.q; $('k').value = String(s.k);
  var status = $('status'), results = $('results');
  if (!s.q) { status.textContent = ''; results.replaceChildren(); return; }
  status.textContent = 'searching ' + info.nImages + ' images...';
  try {
    var r = await api('/api/search?' + new URLSearchParams({ text: s.q, k: String(s.k) }));
    if (shown.q !== s.q || shown.k !== s.k) return;
    var toks = el('span', {}, 'tokens: ');
    r.tokens.forEach(function (t) {
      var unk = r.unknown.indexOf(t) >= 0;
      toks.append(el('span', { class: 'tok' + (unk ? ' unk' : ''), title: unk ? 'not in the vocabulary: read as <unk>' : '' , text: t }));
    });
    status.replaceChildren(toks, r.unknown.length ? el('span', { class: 'unknown', text: '  not in the vocabulary (read as <unk>): ' + r.unknown.join(', ') }) : '',
      el('span', { class: 'muted', text: '  · top ' + r.results.length + ' of ' + r.nImages + ' images in ' + r.seconds.toFixed(2) + ' s' }));
    var parts = [];
    if (r.groundTruth) {
      var g = r.groundTruth;
      parts.push(banner('gt', ['This is caption ' + g.caption + ' of the split; its image ', el('b', { text: String(g.image) }),
        ' ranks ', el('b', { id: 'gt-rank', text: String(g.rank) }), ' of ' + r.nImages + ' (score ' + fmt(g.score) + '). ',
        el('a', { href: hashOf({ q: s.q, k: s.k, image: g.image }), text: 'show image ' + g.image + "'s captions" })]));
    }
    var grid = el('div', { class: 'grid', id: 'grid' });
    r.results.forEach(function (h, i) {
      var card = el('a', { class: 'card' + (h.groundTruth ? ' gt' : ''), href: hashOf({ q: s.q, k: s.k, image: h.image }), 'data-image': String(h.image) },
        el('div', { class: 'top' }, el('span', {}, '#' + (i + 1) + ' · image ', el('b', { text: String(h.image) }), h.groundTruth ? el('span', { class: 'badge', text: 'its image' }) : null),
          el('span', { class: 'score', text: fmt(h.score) })));
      if (h.picture) card.append(el('img', { src: h.picture, alt: h.captions[0] || ('image ' + h.image), loading: 'lazy' }));
      else { var ol = el('ol', {}); h.captions.forEach(function (c) { ol.append(el('li', { text: c })); }); card.append(ol); }
      grid.append(card);
    });
    parts.push(grid);
    results.replaceChildren.apply(results, parts);
  } catch (e) { status.textContent = ''; showError(results, e); }
}

async function showImage(s) {
  clearTimeout(retry);
  var box = $('detail-box');
  $('overlay').hidden = false;
  box.replaceChildren(el('p', { class: 'muted', text: 'ranking ' + info.nCaptions + ' captions for image ' + s.image + '...' }));
  try {
    var r = await api('/api/image/' + s.image + '?k=' + s.k);
    if (state().image !== s.image) return;
    var own = el('ol', { start: '0' });
    r.captions.forEach(function (c) {
      own.append(el('li', {}, el('a', { href: hashOf({ q: c.text, k: s.k }), title: 'search with this caption: where does its image rank?', text: c.text }),
        el('span', { class: 'muted', text: '  (caption ' + c.caption + ')' })));
    });
    var table = el('table', { id: 'captions' }, el('tr', {}, el('th', { text: 'rank' }), el('th', { text: 'score' }), el('th', { text: 'caption' }), el('th', { text: 'of image' })));
    r.results.forEach(function (h, i) {
      table.append(el('tr', { class: h.groundTruth ? 'gt' : '' }, el('td', { text: String(i + 1) }), el('td', { text: fmt(h.score) }),
        el('td', {}, h.groundTruth ? el('span', { class: 'badge', text: 'ground truth' }) : null, h.groundTruth ? ' ' : null, el('a', { href: hashOf({ q: h.text, k: s.k }), text: h.text })),
        el('td', {}, h.groundTruth ? el('span', { text: String(h.image) }) : el('a', { href: hashOf({ q: shown.q, k: s.k, image: h.image }), text: String(h.image) }))));
    });
    fill(box,
      el('button', { class: 'plain', id: 'close', type: 'button' }, 'close (Esc)'),
      el('h2', { text: 'image ' + r.image }),
      r.picture ? el('img', { src: r.picture, alt: 'image ' + r.image }) : null,
      el('p', { class: 'muted', text: 'its captions (click one to search with it):' }), own,
      el('p', {}, 'Its first ground-truth caption ranks ', el('b', { id: 'first-gt', text: String(r.firstGroundTruthRank) }), ' of ' + r.nCaptions + ' captions; the top ' + r.results.length + ':'),
      table);
    $('close').onclick = closeImage;
  } catch (e) {
    showError(box, e);
    if (e.status === 503) retry = setTimeout(function () { if (state().image === s.image) showImage(s); }, 5000);
  }
}
function closeImage() { var s = state(); s.image = null; location.hash = hashOf(s); }

function render() {
  var s = state();
  if (s.q !== shown.q || s.k !== shown.k) runSearch(s);
  if (s.image != null) showImage(s); else { $('overlay').hidden = true; clearTimeout(retry); }
}
async function start() {
  try { info = await api('/api/info'); } catch (e) { showError($('results'), e); return; }
  document.title = 'vsl · ' + info.model.module + ' · ' + info.data.dataName + '/' + info.data.split;
  $('title').textContent = 'vsl · ' + info.model.module + ' on ' + info.data.dataName + '/' + info.data.split;
  $('sub').textContent = info.nImages + ' images, ' + info.nCaptions + ' captions · model ' + info.model.file +
    (info.index ? ' · index ' + info.index : '') + (info.pictures ? ' · ' + info.pictures + ' pictures' : ' · no pictures: the captions stand in');
  $('row').max = String(info.nImages - 1);
  $('search').onsubmit = function (ev) { ev.preventDefault(); var t = $('text').value; if (t.trim()) location.hash = hashOf({ q: t, k: Number($('k').value) }); };
  $('jump').onsubmit = function (ev) { ev.preventDefault(); var s = state(); s.image = Number($('row').value); s.k = Number($('k').value); location.hash = hashOf(s); };
  $('overlay').onclick = function (ev) { if (ev.target === $('overlay')) closeImage(); };
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape' && state().image != null) closeImage();
    if (ev.key === '/' && document.activeElement !== $('text')) { ev.preventDefault(); $('text').focus(); }
  });
  window.addEventListener('hashchange', render);
  render();
}
start();
`;

function body(): string {
  const ks = [10, 20, 50, 100].filter((k) => k <= MAX_K);
  const options = ks.map((k) => `<option value="${k}"${k === DEFAULT_K ? ' selected' : ''}>top ${k}</option>`);
  return `<header><h1 id="title">vsl</h1><p id="sub">loading...</p></header>
<main>
<form id="search" role="search"><input id="text" name="text" type="search" maxlength="${MAX_TEXT}" placeholder="a sentence: which images does the model rank first? (press / to type)" autocomplete="off" autofocus>
<select id="k" aria-label="results">${options.join('')}</select><button type="submit">Search</button></form>
<form id="jump"><label class="muted" for="row">or open image row</label> <input id="row" type="number" min="0" required> <button type="submit" class="plain">Open</button></form>
<div id="status" class="status"></div>
<div id="results"></div>
</main>
<div id="overlay" class="overlay" hidden><div id="detail-box" class="detail" role="dialog" aria-label="the image's captions ranked"></div></div>`;
}

let cached: { html: string; csp: string } | undefined;

/** The page and its content security policy (the inline script and style allowed by their hashes). */
export function pageHtml(): { html: string; csp: string } {
  if (cached) return cached;
  const script = `'use strict';\nvar DEFAULT_K = ${DEFAULT_K};${SCRIPT}`;
  const hash = (s: string) => `'sha256-${crypto.createHash('sha256').update(s).digest('base64')}'`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vsl</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>${body()}<script>${script}</script></body></html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${hash(script)}`,
    `style-src ${hash(STYLE)}`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  cached = { html, csp };
  return cached;
}
