// Small things the pages share: amounts, times and durations in words, links to accounts, lists
// of facts, labelled form fields.

import { h, app, asset } from './ui.js';
import { formatAmount } from './codec.js';

export async function money(units, assetId) {
  const a = await asset(assetId);
  return `${formatAmount(units, a.decimals)} ${a.symbol}`;
}

export function short(s, n = 10) {
  return s && s.length > 2 * n ? `${s.slice(0, n)}…${s.slice(-4)}` : s;
}

export function addressLink(a) {
  const mine = app.wallet && app.wallet.address === a;
  return h('a', { href: `#/account/${a}`, class: 'mono', title: a }, mine ? 'you' : short(a));
}

export function date(ms) {
  return new Date(Number(ms)).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "in 3 min", "2 h ago": relative to the chain's block time, not the browser's clock. */
export function relative(ms) {
  const now = app.status ? app.status.time_ms : Date.now();
  const d = Math.round((Number(ms) - now) / 1000);
  const abs = Math.abs(d);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 172800 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} days`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

export function chainNow() {
  return app.status ? app.status.time_ms : Date.now();
}

export function duration(secs) {
  const s = Number(secs);
  if (s % 86400 === 0) return `${s / 86400} day${s === 86400 ? '' : 's'}`;
  if (s % 3600 === 0) return `${s / 3600} hour${s === 3600 ? '' : 's'}`;
  if (s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  return `${s} second${s === 1 ? '' : 's'}`;
}

export function percent(bps) {
  const v = Number(bps);
  return `${Math.floor(v / 100)}${v % 100 ? '.' + String(v % 100).padStart(2, '0').replace(/0$/, '') : ''}%`;
}

export function periods(n) {
  return `${n} period${Number(n) === 1 ? '' : 's'}`;
}

export function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function field(id, label, input, hint) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

export function input(id, attrs = {}) {
  return h('input', { id, name: id, 'aria-describedby': `${id}-hint`, ...attrs });
}

export function needWallet() {
  return h('p', { class: 'callout' }, 'To take part, ', h('a', { href: '#/wallet' }, 'create or import a wallet'), ' first. Your keys stay in this browser.');
}
