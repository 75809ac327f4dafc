// What the pages show as verified: values proven in this browser against the block of the
// node's current state that the chain's validators certified (light.js), the genesis those validators come from (pinned in the browser
// on first contact, so that no node can later swap them), and the mark shown beside each value.
// A value that does not verify is not shown: the mark says what failed instead.

import { h, api, apiOpt, app, asset, nodeUrl } from './ui.js';
import { formatAmount, balanceKey, balanceIn } from './codec.js';
import * as light from './light.js';
import { decodeMember, decodeSociety, decodeRequest, memberKey, societyKey, requestKey, periodAt, inGoodStanding } from './records.js';

const ANCHOR = 'kassa.anchor';

/** The pinned genesis `{ chain_id, genesis_hash, validators }`, or null. */
export function pinned() {
  try {
    return JSON.parse(localStorage.getItem(ANCHOR));
  } catch {
    return null;
  }
}

/** Forgets the pinned genesis (the next check pins the current node's). */
export function forgetPinned() {
  localStorage.removeItem(ANCHOR);
  cache = null;
}

/**
 * The genesis trusted: the pinned one, or else the node's, pinned now (trust on first use, as an
 * SSH client trusts a host key). The member can compare it with the chain's published genesis
 * on the Verify page.
 */
async function anchor() {
  const saved = pinned();
  if (saved) return saved;
  const [g, st] = await Promise.all([apiOpt('/genesis'), app.status ? Promise.resolve(app.status) : api('/status')]);
  if (!g || !Array.isArray(g.validators) || !g.validators.length) throw new light.VerifyError('anchor', 'this node does not serve its genesis file, so there are no validators to check against');
  const a = { chain_id: g.chain_id, genesis_hash: st.genesis_hash, validators: g.validators };
  localStorage.setItem(ANCHOR, JSON.stringify(a));
  return a;
}

let cache = null; // { node, height, promise }

/** The newest certified block, checked once per block (every mark of a page shares it). */
export function certified() {
  const node = nodeUrl();
  const height = app.status ? app.status.height : null;
  if (!cache || cache.node !== node || cache.height !== height) {
    const promise = (async () => {
      return light.certifiedHead(apiOpt, await anchorOfNode());
    })();
    cache = { node, height, promise };
    promise.catch(() => {
      if (cache && cache.promise === promise) cache = null; // retried on the next call
    });
  }
  return cache.promise;
}

const blocks = new Map(); // `${node}|${height}` → promise of the checked block

/** The block of `height`, checked once (every mark of a page at that height shares it). */
function certifiedAt(height) {
  const key = `${nodeUrl()}|${height}`;
  if (!blocks.has(key)) {
    const promise = (async () => light.certifiedAt(apiOpt, await anchorOfNode(), height))();
    blocks.set(key, promise);
    promise.catch(() => blocks.delete(key)); // retried on the next call
    while (blocks.size > 64) blocks.delete(blocks.keys().next().value);
  }
  return blocks.get(key);
}

/** The pinned genesis, if this node serves its chain. */
async function anchorOfNode() {
  const a = await anchor();
  if (app.status && app.status.genesis_hash !== a.genesis_hash) {
    throw new light.VerifyError('anchor', `this node serves another chain (genesis ${app.status.genesis_hash.slice(0, 12)}…, pinned ${a.genesis_hash.slice(0, 12)}…)`);
  }
  return a;
}

/**
 * The values under `keys` in the node's current state, proven at one certified block:
 * `{ head, values }` (a value null: absent).
 */
export function provenMany(keys) {
  return light.provenMany(apiOpt, certifiedAt, keys);
}

/** The value under `key`, proven: `{ head, value }` (value null: absent). */
export function proven(key) {
  return light.proven(apiOpt, certifiedAt, key);
}

/** A certified block older than this is said to be old: a node can prove only what it shows. */
const OLD_MS = 5 * 60 * 1000;

/**
 * The mark of a value verified at `head`. A valid certificate of an old block proves an old
 * value: a node that is behind, or that withholds newer blocks, is caught only by the block's
 * age, so the mark says it.
 */
export function mark(head, what = 'Verified') {
  const age = Date.now() - head.timestamp_ms;
  const old = age > OLD_MS ? ` — that block is ${Math.round(age / 60000)} minutes old: this node may be behind` : '';
  return h('span', { class: old ? 'mark old' : 'mark ok', 'data-verified': 'true', title: `Block ${head.block}, state root ${head.state_root}` },
    `✓ ${what} at block ${head.height} by ${head.signers} of ${head.validators} validators${old}`);
}

/** The mark of a value that did not verify, saying why; the value itself is not shown. */
export function failed(e) {
  const step = e instanceof light.VerifyError ? e.step : 'node';
  return h('span', { class: 'mark bad', 'data-verified': 'false', 'data-step': step, role: 'alert' },
    `✗ Not verified (${step}): ${e.message}. The value this node sent is not shown; choose another node on the Verify page.`);
}

/** A member's record and the society's, proven: `{ head, member, now, good }` (member null: none). */
export async function provenMember(society, address) {
  const { head, values: [s, m] } = await provenMany([societyKey(society), memberKey(society, address)]);
  if (!s) throw new light.VerifyError('proof', `there is no society ${society} in the certified state`);
  const rec = decodeSociety(s);
  const now = periodAt(rec, head.timestamp_ms);
  const member = m ? decodeMember(m) : null;
  return { head, member, now, good: member ? inGoodStanding(member, now) : false };
}

const requests = new Map(); // request id → { head, request } last proven

/**
 * A request's record, proven: `{ head, request }`. What was proven is kept and reused while the
 * node's own answer (`shown`: status, approved, paid, gifted) agrees with it, so a page of many
 * requests asks for a proof only of those that changed.
 */
export async function provenRequest(id, shown) {
  const key = `${nodeUrl()}|${id}`;
  const last = requests.get(key);
  const same = (r) => r.status === shown.status && String(r.approved) === String(shown.approved)
    && String(r.paid) === String(shown.paid) && String(r.gifted) === String(shown.gifted);
  if (last && same(last.request)) return last;
  const p = await proven(requestKey(id));
  if (!p.value) throw new light.VerifyError('proof', `there is no request ${id} in the certified state`);
  const out = { head: p.head, request: decodeRequest(p.value) };
  requests.set(key, out);
  return out;
}

/**
 * Table rows of an account's balances (`balances`: the node's list, which says which assets to
 * prove; KAS if it lists none), each the amount proven at the newest certified block with its
 * mark, or no amount and the mark of what failed.
 */
export async function balanceRows(address, balances) {
  const rows = [];
  for (const b of balances.length ? balances : [{ asset: 0, symbol: 'KAS' }]) {
    let amount = '—';
    let note;
    try {
      const p = await proven(balanceKey(address, b.asset));
      amount = formatAmount(balanceIn(b.asset, p.value), (await asset(b.asset)).decimals);
      note = mark(p.head);
    } catch (e) {
      note = failed(e);
    }
    rows.push(h('tr', {}, h('th', { scope: 'row' }, b.symbol || `asset#${b.asset}`), h('td', { class: 'num', 'data-asset': b.asset }, amount), h('td', { class: 'proof' }, note)));
  }
  return rows;
}
