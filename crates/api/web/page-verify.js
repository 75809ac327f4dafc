// `#/verify`: the latest finalized state, and balances checked in the browser against its state
// root with their Merkle proofs.

import { h, api, apiOpt, app, asset, action, live, refreshStatus } from './ui.js';
import { formatAmount, decodeAddress, toHex, fromHex, balanceKey, balanceIn, verifyProof } from './codec.js';
import { short, dl, field, input } from './widgets.js';

export async function verifyView(root) {
  const head = h('section', { class: 'panel', 'aria-labelledby': 'head-title' });
  live(head, async (el) => {
    const st = await refreshStatus();
    const [block, fin, genesis] = await Promise.all([api(`/blocks/${st.height}`), apiOpt(`/blocks/${st.height}/finality`), apiOpt('/genesis')]);
    const validators = genesis && Array.isArray(genesis.validators) ? genesis.validators : null;
    const consistent = block.state_root === st.state_root && block.hash === st.block_hash;
    el.replaceChildren(h('h2', { id: 'head-title' }, 'Latest finalized state'),
      dl([['Height', String(st.height)], ['Block hash', h('span', { class: 'mono break' }, st.block_hash)], ['State root', h('span', { class: 'mono break', id: 'state-root' }, st.state_root)],
        ['Block header agrees', consistent ? 'yes: the block header carries this root' : 'NO: the node reports a root its block does not carry'],
        ['Finalization certificate', fin ? `${fin.certificate.length / 2} bytes from the validators, for block ${fin.height}` : 'not available from this node'],
        ['Validators', validators ? h('span', { id: 'validators' }, `${validators.length} in the genesis (a block is final when more than two thirds sign it): `, validators.map((v) => short(v, 8)).join(', ')) : 'unknown']]));
  });
  const result = h('div', { id: 'proof-result', role: 'status' });
  const who = input('proof-address', { value: app.wallet ? app.wallet.address : '', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'stack', id: 'proof-form' },
    field('proof-address', 'Account', who, 'Your own by default. The node sends each balance with a Merkle proof; this page checks it against the state root.'),
    h('button', { type: 'submit' }, 'Check the balances in this browser'));
  form.addEventListener('submit', action(async () => {
    const address = who.value.trim();
    decodeAddress(address);
    const st = await refreshStatus();
    const height = st.height;
    const block = await api(`/blocks/${height}`);
    const root = fromHex(block.state_root);
    const acc = await api(`/accounts/${address}`);
    const assets = acc.balances.length ? acc.balances.map((b) => b.asset) : [0];
    const lines = [];
    for (const id of assets) {
      const key = balanceKey(address, id);
      const p = await api(`/proofs/${toHex(key)}?height=${height}`);
      const value = p.value === null ? null : fromHex(p.value);
      const check = p.state_root === block.state_root ? await verifyProof(root, key, value, fromHex(p.proof)) : { ok: false, reason: 'the proof is for another root' };
      const a = await asset(id);
      const amount = balanceIn(id, value);
      lines.push(h('li', { class: check.ok ? 'ok' : 'bad', 'data-verified': String(check.ok) },
        check.ok ? '✓ ' : '✗ ',
        `${a.symbol}: ${formatAmount(amount, a.decimals)} at block ${height} — ${check.reason}.`));
    }
    result.replaceChildren(h('ul', { class: 'proofs' }, lines));
  }, { refresh: false }));
  root.append(h('h1', {}, 'Verify'),
    h('p', { class: 'lead' }, 'Check for yourself instead of trusting this node’s word: every balance comes with a Merkle proof that your browser checks against the state root of the latest finalized block.'),
    head,
    h('section', { class: 'panel', 'aria-labelledby': 'proof-title' }, h('h2', { id: 'proof-title' }, 'Prove a balance'), form, result),
    h('p', { class: 'hint' }, 'What is checked here: the Merkle proof of each balance (SHA-256, the chain’s Jellyfish Merkle tree) against the state root in the finalized block header. The validators’ certificate over that block is checked by followers and by ', h('code', {}, 'kassa audit'), ', not yet in the browser.'));
}
