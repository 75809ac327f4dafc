// `#/wallet`: the browser wallet — create, import or (on development chains) use a dev account;
// then its address, backup, balances, societies, the faucet and sending KAS.

import { h, api, apiOpt, app, asset, send, action, live, notify, loadWallet, rerender } from './ui.js';
import * as wallet from './wallet.js';
import { formatAmount, parseAmount, decodeAddress } from './codec.js';
import { balanceRows } from './trust.js';
import { money, field, input } from './widgets.js';

export async function walletView(root) {
  root.append(h('h1', {}, 'My wallet'));
  if (!(await wallet.supported())) {
    root.append(h('p', { class: 'message error' }, 'This browser does not support Ed25519 keys in WebCrypto. Use a current Chromium, Firefox or Safari.'));
    return;
  }
  const w = app.wallet;
  if (!w) {
    root.append(
      h('p', { class: 'lead' }, 'Your key is made in this browser and never leaves it. Choose a passphrase: it protects the backup file you can download to move or restore your wallet.'),
      createWalletForm(), importWalletForm(), ...(app.status && app.status.faucet ? [devWalletForm()] : []));
    return;
  }
  const balances = h('section', { class: 'panel', id: 'balances', 'aria-labelledby': 'balances-title' });
  live(balances, async (el) => {
    const acc = await api(`/accounts/${w.address}`);
    // Each balance shown is the one proven against the newest certified block, not the node's word.
    const rows = await balanceRows(w.address, acc.balances);
    el.replaceChildren(h('h2', { id: 'balances-title' }, 'Balances'),
      h('table', {}, h('tbody', {}, rows)),
      h('p', { class: 'hint' }, `Transactions sent: ${acc.nonce}. Each balance is checked in this browser against the validators’ certificate (`, h('a', { href: '#/verify' }, 'how'), ').'));
  });
  const faucet = app.status && app.status.faucet
    ? h('button', { type: 'button', id: 'faucet', onclick: action(async () => {
      const r = await api('/faucet', { method: 'POST', body: JSON.stringify({ address: w.address }) });
      notify('pending', 'The faucet is sending you test funds…');
      const t = await waitFor(r.hash);
      if (!t) throw new Error('The faucet’s transaction is not in a block yet; try again shortly.');
      notify('ok', 'Test funds received (development chain).', { href: `#/tx/${r.hash}`, text: 'See the transaction' });
    }) }, 'Get test funds from the faucet')
    : null;
  const transfer = h('form', { class: 'panel stack', id: 'transfer-form' },
    h('h2', {}, 'Send'),
    field('transfer-to', 'To (address)', input('transfer-to', { required: true, autocomplete: 'off' })),
    field('transfer-amount', 'Amount (KAS)', input('transfer-amount', { type: 'text', inputmode: 'decimal', required: true })),
    h('button', { type: 'submit' }, 'Send'));
  transfer.addEventListener('submit', action(async (f) => {
    const to = f.querySelector('#transfer-to').value.trim();
    decodeAddress(to);
    await send({ kind: 'transfer', to, asset: 0, amount: String(parseAmount(f.querySelector('#transfer-amount').value, 6)) }, 'Send');
  }));
  const memberships = h('section', { class: 'panel', 'aria-labelledby': 'my-societies' });
  live(memberships, async (el) => {
    const socs = (await api('/societies?limit=100')).items;
    const rows = [];
    for (const s of socs) {
      const me = await apiOpt(`/societies/${s.id}/members/${w.address}`);
      if (me) rows.push(h('li', {}, h('a', { href: `#/society/${s.id}` }, s.name), ` — ${me.status.state}${me.good_standing ? ', in good standing' : me.lapsed ? ', lapsed' : ''}, gift account ${await money(me.gift_balance, s.asset)}, karma ${formatAmount(me.karma, (await asset(s.asset)).decimals)}`));
    }
    el.replaceChildren(h('h2', { id: 'my-societies' }, 'My societies'), rows.length ? h('ul', {}, rows) : h('p', { class: 'muted' }, 'None yet. ', h('a', { href: '#/societies' }, 'Find a society')));
  });
  root.append(
    h('section', { class: 'panel', 'aria-labelledby': 'address-title' },
      h('h2', { id: 'address-title' }, 'Address'),
      h('p', { class: 'mono break', id: 'my-address' }, w.address),
      h('div', { class: 'inline' },
        h('button', { type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(w.address).then(() => notify('ok', 'Address copied.')) }, 'Copy address'),
        faucet,
        h('button', { type: 'button', class: 'secondary', id: 'export-backup', onclick: () => downloadBackup(w) }, 'Download encrypted backup'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm('Remove this wallet from this browser? Without the backup file and its passphrase, the account is lost.')) return;
          await wallet.remove();
          await loadWallet();
          await rerender();
        } }, 'Remove from this browser')),
      h('p', { class: 'hint' }, 'The signing key is stored in this browser as a non-extractable WebCrypto key; the backup file holds it encrypted under your passphrase.')),
    balances, memberships, transfer);
}

async function waitFor(hash) {
  for (let i = 0; i < 60; i++) {
    const t = await apiOpt(`/txs/${hash}`);
    if (t && t.status !== 'pending') return t;
    await new Promise((r) => setTimeout(r, 500));
  }
  return null;
}

function downloadBackup(w) {
  const blob = new Blob([JSON.stringify(w.backup, null, 2)], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `kassa-wallet-${w.address.slice(6, 14)}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  notify('ok', 'Backup downloaded. Keep it and its passphrase safe: together they are your account.');
}

function passphraseFields(prefix, confirm) {
  return [
    field(`${prefix}-pass`, 'Passphrase', input(`${prefix}-pass`, { type: 'password', required: true, minlength: wallet.PASSPHRASE_MIN, autocomplete: 'new-password' }), `At least ${wallet.PASSPHRASE_MIN} characters. It encrypts your backup; it cannot be recovered.`),
    confirm ? field(`${prefix}-pass2`, 'Passphrase again', input(`${prefix}-pass2`, { type: 'password', required: true, autocomplete: 'new-password' })) : null,
  ];
}

function createWalletForm() {
  const form = h('form', { class: 'panel stack', id: 'create-wallet' }, h('h2', {}, 'Create a wallet'), ...passphraseFields('new', true), h('button', { type: 'submit' }, 'Create wallet'));
  form.addEventListener('submit', action(async (f) => {
    const p = f.querySelector('#new-pass').value;
    if (p !== f.querySelector('#new-pass2').value) throw new wallet.WalletError('The two passphrases differ.');
    await wallet.create(p);
    await loadWallet();
    notify('ok', 'Wallet created. Download the encrypted backup and keep it safe.');
  }));
  return form;
}

function importWalletForm() {
  const file = input('import-file', { type: 'file', accept: 'application/json,.json', required: true });
  const form = h('form', { class: 'panel stack', id: 'import-wallet' }, h('h2', {}, 'Import a backup'),
    field('import-file', 'Backup file', file), field('import-pass', 'Its passphrase', input('import-pass', { type: 'password', required: true, autocomplete: 'current-password' })),
    h('button', { type: 'submit' }, 'Import'));
  form.addEventListener('submit', action(async (f) => {
    let backup;
    try {
      backup = JSON.parse(await file.files[0].text());
    } catch {
      throw new wallet.WalletError('This file is not a Kassa wallet backup.');
    }
    await wallet.importBackup(backup, f.querySelector('#import-pass').value);
    await loadWallet();
    notify('ok', 'Wallet imported.');
  }));
  return form;
}

function devWalletForm() {
  const form = h('form', { class: 'panel stack', id: 'dev-wallet' }, h('h2', {}, 'Use a development account'),
    h('p', { class: 'hint' }, 'Development chains fund ten accounts whose keys are public. Never use them for anything real.'),
    field('dev-index', 'Account', h('select', { id: 'dev-index' }, Array.from({ length: 10 }, (_, i) => h('option', { value: i }, `dev-${i}`)))),
    ...passphraseFields('dev', false),
    h('button', { type: 'submit' }, 'Use it'));
  form.addEventListener('submit', action(async (f) => {
    await wallet.fromSeed(await wallet.devSeed(f.querySelector('#dev-index').value), f.querySelector('#dev-pass').value);
    await loadWallet();
  }));
  return form;
}
