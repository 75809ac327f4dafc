// The explorer: `#/explorer` (search and the latest blocks), `#/block/<height>`, `#/tx/<hash>`,
// `#/account/<address>` and `#/assets`.

import { h, api, apiOpt, live, notify, messageOf } from './ui.js';
import { formatAmount, decodeAddress } from './codec.js';
import { balanceRows } from './trust.js';
import { short, addressLink, date, dl, field, input } from './widgets.js';

export async function explorerView(root) {
  const q = input('explore-q', { type: 'search', placeholder: 'Block height, transaction hash or kassa1… address', autocomplete: 'off' });
  const form = h('form', { class: 'inline', role: 'search' }, field('explore-q', 'Find', q), h('button', { type: 'submit' }, 'Go'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = q.value.trim();
    if (/^[0-9]+$/.test(v)) location.hash = `#/block/${v}`;
    else if (/^[0-9a-fA-F]{64}$/.test(v)) location.hash = `#/tx/${v.toLowerCase()}`;
    else if (v.startsWith('kassa1')) location.hash = `#/account/${v}`;
    else notify('error', 'Enter a block height, a 64-digit transaction hash or a kassa1… address.');
  });
  const blocks = h('section', { class: 'panel', 'aria-labelledby': 'blocks-title' });
  live(blocks, async (el) => {
    const items = (await api('/blocks?limit=20')).items;
    el.replaceChildren(h('h2', { id: 'blocks-title' }, 'Latest blocks'), h('div', { class: 'table-wrap' }, h('table', { id: 'blocks' },
      h('thead', {}, h('tr', {}, ['Height', 'Time', 'Transactions', 'Hash'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((b) => h('tr', {},
        h('td', {}, h('a', { href: `#/block/${b.height}` }, String(b.height))),
        h('td', {}, date(b.timestamp_ms)),
        h('td', { class: 'num' }, String(b.txs.length)),
        h('td', { class: 'mono' }, short(b.hash, 12))))))));
  });
  root.append(h('h1', {}, 'Explorer'), form, h('p', {}, h('a', { href: '#/assets' }, 'Issued assets')), blocks);
}

function txRows(txs) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Transaction', 'Kind', 'Signer', 'Nonce'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, txs.map((t) => h('tr', {},
      h('td', {}, h('a', { href: `#/tx/${t.hash}`, class: 'mono' }, short(t.hash, 12))),
      h('td', {}, t.kind.replace(/_/g, ' ')),
      h('td', {}, addressLink(t.signer)),
      h('td', { class: 'num' }, String(t.nonce)))))));
}

export async function blockView(root, height) {
  const b = await apiOpt(`/blocks/${encodeURIComponent(height)}`);
  if (!b) {
    root.append(h('h1', {}, `No block ${height}`), h('p', {}, h('a', { href: '#/explorer' }, 'Explorer')));
    return;
  }
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ` / block ${b.height}`),
    h('h1', {}, `Block ${b.height}`),
    dl([['Time', date(b.timestamp_ms)], ['Hash', h('span', { class: 'mono break' }, b.hash)], ['Parent', b.height > 0 ? h('a', { href: `#/block/${b.height - 1}`, class: 'mono break' }, b.parent) : b.parent],
      ['Proposer', addressLink(b.proposer)], ['State root', h('span', { class: 'mono break' }, b.state_root)], ['Transactions root', h('span', { class: 'mono break' }, b.tx_root)]]),
    h('h2', {}, `${b.txs.length} transactions`),
    txRows(b.txs),
    h('p', {}, b.height > 0 ? h('a', { href: `#/block/${b.height - 1}` }, '← previous') : null, ' ', h('a', { href: `#/block/${b.height + 1}` }, 'next →')));
}

function eventText(e) {
  const parts = Object.entries(e).filter(([k]) => k !== 'type').map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`);
  return `${e.type.replace(/_/g, ' ')}: ${parts.join(', ')}`;
}

export async function txView(root, hash) {
  const t = await apiOpt(`/txs/${encodeURIComponent(hash)}`);
  root.append(h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / transaction'), h('h1', {}, 'Transaction'));
  if (!t) {
    root.append(h('p', {}, 'This node knows no such transaction.'));
    return;
  }
  root.append(dl([
    ['Hash', h('span', { class: 'mono break' }, t.hash)],
    ['Status', h('span', { class: `badge ${t.status}`, id: 'tx-status' }, t.status)],
    t.height !== undefined ? ['Block', h('a', { href: `#/block/${t.height}` }, String(t.height))] : null,
    t.fee ? ['Fee (burned)', `${formatAmount(t.fee, 6)} KAS`] : null,
    t.error ? ['Why it failed', `${t.error.message} (${t.error.code})`] : null,
  ]));
  if (t.events) root.append(h('h2', {}, 'What happened'), h('ul', { id: 'tx-events' }, t.events.map((e) => h('li', {}, eventText(e)))));
}

export async function accountView(root, address) {
  try {
    decodeAddress(address);
  } catch (e) {
    root.append(h('h1', {}, 'Not an address'), h('p', { class: 'message error' }, messageOf(e)));
    return;
  }
  const acc = await api(`/accounts/${address}`);
  const rows = await balanceRows(address, acc.balances);
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / account'),
    h('h1', {}, 'Account'),
    h('p', { class: 'mono break' }, address),
    dl([['Transactions sent', String(acc.nonce)]]),
    h('h2', {}, 'Balances'), h('table', { id: 'account-balances' }, h('tbody', {}, rows)));
}

export async function assetsView(root) {
  const items = (await api('/assets?limit=100')).items;
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / assets'),
    h('h1', {}, 'Issued assets'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'assets' },
      h('thead', {}, h('tr', {}, ['Id', 'Symbol', 'Decimals', 'Supply', 'Max supply', 'Issuer'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((a) => h('tr', {},
        h('td', {}, String(a.id)), h('td', {}, a.symbol), h('td', { class: 'num' }, String(a.decimals)),
        h('td', { class: 'num' }, formatAmount(a.supply, a.decimals)), h('td', { class: 'num' }, a.max_supply ? formatAmount(a.max_supply, a.decimals) : 'no cap'),
        h('td', {}, a.issuer ? addressLink(a.issuer) : 'the chain (genesis)')))))));
}
