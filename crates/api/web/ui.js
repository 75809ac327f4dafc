// What every page uses: a tiny DOM builder, the API client, the state the pages share, messages,
// signing and sending transactions, and *live regions* redrawn after every block from the node's
// event stream. Everything on screen that comes from the chain is inserted as text (never as
// HTML), so a society's name cannot inject markup. The router (app.js) registers itself here with
// `setRerender`, so that no page imports it.

import * as wallet from './wallet.js';

// ---- DOM ---------------------------------------------------------------------------------------

/** `h('p', {class: 'x', onclick: f}, 'text', child…)`: an element with attributes and children. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---- API ---------------------------------------------------------------------------------------

/** An error from the node, with its stable code (a rejection's name for refused transactions). */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// ---- the node the app talks to ------------------------------------------------------------------

const NODE = 'kassa.node';
const NODES = 'kassa.nodes';

/** The node the app reads from and sends to: '' (the one serving the page) or an origin chosen. */
export function nodeUrl() {
  try {
    return localStorage.getItem(NODE) || '';
  } catch {
    return '';
  }
}

/** The nodes the member keeps (origins), besides the one serving the page. */
export function savedNodes() {
  try {
    const list = JSON.parse(localStorage.getItem(NODES));
    return Array.isArray(list) ? list.filter((u) => typeof u === 'string') : [];
  } catch {
    return [];
  }
}

/** An origin the member typed (`https://node.example:8645`), normalised; an error if it is none. */
export function nodeOrigin(text) {
  let u;
  try {
    u = new URL(text.trim());
  } catch {
    throw new Error('A node is an address like https://node.example.org or http://127.0.0.1:8645');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('A node is reached over http or https');
  return u.origin;
}

/** Keeps `origin` in the list of nodes. */
export function saveNode(origin) {
  const list = savedNodes().filter((u) => u !== origin);
  localStorage.setItem(NODES, JSON.stringify([...list, origin]));
}

/** Removes `origin` from the list (and stops using it). */
export function dropNode(origin) {
  localStorage.setItem(NODES, JSON.stringify(savedNodes().filter((u) => u !== origin)));
  if (nodeUrl() === origin) localStorage.removeItem(NODE);
}

/** Talks to `origin` from now on ('' for the node serving the page); the app starts again. */
export function useNode(origin) {
  if (origin) localStorage.setItem(NODE, origin);
  else localStorage.removeItem(NODE);
  location.reload();
}

export async function api(path, options = {}) {
  let resp;
  try {
    resp = await fetch(`${nodeUrl()}/api/v1${path}`, {
      ...options,
      headers: options.body ? { 'content-type': 'application/json' } : undefined,
    });
  } catch {
    throw new ApiError('offline', 'The node cannot be reached. Is it running?', 0);
  }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = body && body.error;
    throw new ApiError(e ? e.code : 'http', e ? e.message : `HTTP ${resp.status}`, resp.status);
  }
  return body;
}

/** Like `api`, but a 404 is `null`. */
export async function apiOpt(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

// ---- state shared by the pages -----------------------------------------------------------------

export const app = {
  status: null, // the node's /status: chain id, genesis hash, protocol version, head, minimum fee, faucet
  wallet: null, // the browser wallet, or null
  assets: new Map(), // asset id → {symbol, decimals}
};

export async function refreshStatus() {
  app.status = await api('/status');
  renderStatus();
  return app.status;
}

export async function asset(id) {
  const key = Number(id);
  if (!app.assets.has(key)) {
    const a = await apiOpt(`/assets/${key}`);
    app.assets.set(key, a ? { symbol: a.symbol, decimals: a.decimals } : { symbol: `asset#${key}`, decimals: 0 });
  }
  return app.assets.get(key);
}

export async function loadWallet() {
  app.wallet = await wallet.load();
  renderStatus();
  return app.wallet;
}

// ---- messages ----------------------------------------------------------------------------------

/** Shows a message in the page's live region (read out by screen readers). */
export function notify(kind, text, link) {
  const box = document.getElementById('notice');
  box.replaceChildren(
    h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span', {}, text),
      link ? h('a', { href: link.href }, link.text) : null,
      h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => box.replaceChildren() }, '×')),
  );
}

// ---- transactions ------------------------------------------------------------------------------

/** The protocol version whose transactions this app encodes (codec.js). */
export const PROTOCOL_VERSION = 2;
/** How many blocks a signed transaction stays valid for. */
const EXPIRY_BLOCKS = 600n;
/** How long the app follows a sent transaction after the node's own wait, in seconds. */
const FOLLOW_SECS = 120;

/**
 * Signs `body` with the browser wallet (or `signer`) and sends it, waiting for the block that
 * includes it.
 * Resolves to the receipt; throws ApiError (with the rejection's code and message) if the node
 * refuses it or the block applies it as failed.
 */
export async function send(body, what, signer = app.wallet) {
  if (!signer) throw new ApiError('no_wallet', 'Create or import a wallet first (My wallet).', 0);
  const status = await refreshStatus();
  if (status.protocol_version !== PROTOCOL_VERSION) {
    throw new ApiError('protocol_version', `This node runs protocol version ${status.protocol_version}; this app signs for version ${PROTOCOL_VERSION}. Reload the page to get the node's own app.`, 0);
  }
  const account = await api(`/accounts/${signer.address}`);
  const tx = {
    chain_id: status.chain_id,
    genesis: status.genesis_hash,
    nonce: BigInt(account.next_nonce),
    fee: BigInt(status.min_fee),
    expiry_height: BigInt(status.height) + EXPIRY_BLOCKS,
    body,
  };
  const signed = await wallet.signTransaction(signer, tx);
  notify('pending', `${what}: signed in this browser, waiting for the next block…`);
  let receipt = await api('/txs?wait=true', { method: 'POST', body: JSON.stringify({ tx: signed.hex }) });
  // The node waits up to 30 s; on a busy chain keep following the transaction a while longer.
  for (let i = 0; receipt.status === 'pending' && i < FOLLOW_SECS; i++) {
    if (i === 0) notify('pending', `${what}: sent, still waiting for a block…`, { href: `#/tx/${signed.hash}`, text: 'Follow it' });
    await new Promise((r) => setTimeout(r, 1000));
    receipt = (await apiOpt(`/txs/${signed.hash}`)) || receipt;
  }
  if (receipt.status === 'failed') {
    throw new ApiError(receipt.error.code, receipt.error.message, 422);
  }
  if (receipt.status === 'pending') {
    notify('pending', `${what}: sent, not yet in a block.`, { href: `#/tx/${signed.hash}`, text: 'Follow it' });
    return receipt;
  }
  notify('ok', `${what}: done in block ${receipt.height}.`, { href: `#/tx/${signed.hash}`, text: 'See the transaction' });
  return receipt;
}

/**
 * Runs `fn` for a form's submit button: disables it while running, reports success or the
 * node's typed error, and renders the page again afterwards (unless `refresh` is false).
 */
export function action(fn, { refresh = true } = {}) {
  return async (event) => {
    event.preventDefault();
    const form = event.currentTarget.closest('form') || event.currentTarget;
    const buttons = form.querySelectorAll('button');
    const main = document.getElementById('main');
    buttons.forEach((b) => (b.disabled = true));
    main.setAttribute('aria-busy', 'true');
    try {
      await fn(form);
      if (refresh) await rerender();
    } catch (e) {
      notify('error', messageOf(e));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      main.removeAttribute('aria-busy');
    }
  };
}

/** A sentence for the member: the node's message for typed rejections, else the error. */
export function messageOf(e) {
  if (e instanceof ApiError) return e.code && e.status ? `${e.message} (${e.code})` : e.message;
  if (e instanceof wallet.WalletError) return e.message;
  if (e && e.field) return `Check “${e.field.replace(/_/g, ' ')}”: ${e.message.split(': ').slice(1).join(': ')}`;
  return String(e && e.message ? e.message : e);
}

// ---- live updates ------------------------------------------------------------------------------

let liveRegions = [];
let refreshing = false;
let refreshAgain = false;

/** Forgets the live regions of the page shown before (app.js calls it when it renders a page). */
export function clearLive() {
  liveRegions = [];
}

/**
 * Registers `fill(el)` to fill `el` now and again after every new block while the page is shown.
 * Each fill draws into a detached copy that replaces the region's content only when it is complete,
 * is the newest fill of that region, and the member has neither typed in the region nor moved the
 * keyboard into it meanwhile.
 */
export function live(el, fill) {
  const region = { el, fill, generation: 0, running: false };
  liveRegions.push(region);
  // Once the member types in a region, it is left alone until the page is next rendered.
  el.addEventListener('input', () => (el.dataset.dirty = 'true'));
  el.setAttribute('aria-busy', 'true');
  fillRegion(region).finally(() => el.removeAttribute('aria-busy'));
  return el;
}

async function fillRegion(region) {
  const { el, fill } = region;
  const generation = ++region.generation;
  region.running = true;
  const draft = el.cloneNode(false);
  try {
    await fill(draft);
  } catch (e) {
    draft.replaceChildren(h('p', { class: 'message error' }, messageOf(e)));
  } finally {
    region.running = false;
  }
  // The member may have moved into the region while it was being filled (a fetch takes a while):
  // replacing it now would take the field from under the keyboard, and what they type next would
  // go nowhere.
  if (generation !== region.generation || el.dataset.dirty || el.contains(document.activeElement)) return;
  // Sections the member opened stay open.
  const opened = new Set(Array.from(el.querySelectorAll('details[open] > summary'), (s) => s.textContent));
  draft.querySelectorAll('details > summary').forEach((s) => {
    if (opened.has(s.textContent)) s.parentElement.open = true;
  });
  el.replaceChildren(...draft.childNodes);
}

/**
 * `load()` at most once per finalized block: the live regions of a page that show the same data
 * share one fetch per block instead of each asking the node.
 */
export function perBlock(load) {
  let height;
  let pending = null;
  return () => {
    const now = app.status ? app.status.height : null;
    if (!pending || now !== height) {
      height = now;
      const p = load();
      pending = p;
      p.catch(() => {
        if (pending === p) pending = null; // a failed fetch is retried on the next call
      });
    }
    return pending;
  };
}

async function refreshLive() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    for (const region of liveRegions.slice()) {
      const { el } = region;
      if (!el.isConnected || el.dataset.dirty || region.running) continue;
      // Keep what the member is doing: a region holding the keyboard focus is not redrawn.
      if (el.contains(document.activeElement)) continue;
      await fillRegion(region);
    }
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      refreshLive();
    }
  }
}

/** Follows the node's event stream: on every new block, the header and the live regions. */
export function connectEvents() {
  const source = new EventSource(`${nodeUrl()}/api/v1/events`);
  source.addEventListener('block', (e) => {
    const block = JSON.parse(e.data);
    if (app.status) {
      app.status.height = block.height;
      app.status.state_root = block.state_root;
      app.status.block_hash = block.block_hash;
      app.status.time_ms = block.time_ms;
    }
    renderStatus(true);
    refreshLive();
  });
  source.onerror = () => renderStatus(false);
}

// ---- header ------------------------------------------------------------------------------------

function renderStatus(online) {
  const el = document.getElementById('chain');
  if (!el) return;
  const s = app.status;
  el.replaceChildren(
    h('span', { class: `dot ${online === false ? 'off' : 'on'}`, 'aria-hidden': 'true' }),
    s ? `${s.chain_id} · block ${s.height}${nodeUrl() ? ` · ${nodeUrl()}` : ''}` : 'connecting…',
  );
  el.setAttribute('title', online === false ? 'Reconnecting to the node…' : 'Live: updated with every block');
  const who = document.getElementById('who');
  if (who) who.textContent = app.wallet ? `${app.wallet.address.slice(0, 12)}…${app.wallet.address.slice(-4)}` : 'No wallet';
}

// ---- the router's hook -------------------------------------------------------------------------

let rerenderHook = async () => {};

/** app.js registers its `rerender` here at boot. */
export function setRerender(fn) {
  rerenderHook = fn;
}

/** Renders the current route again; `navigated` moves keyboard focus to the new page's heading. */
export function rerender(navigated = false) {
  return rerenderHook(navigated);
}
