// `#/verify`: the newest certified block checked in the browser against the pinned genesis's
// validators, balances proven against its state root, and the nodes the app may talk to.

import { h, api, app, asset, action, live, refreshStatus, nodeUrl, savedNodes, nodeOrigin, saveNode, dropNode, useNode } from './ui.js';
import { formatAmount, decodeAddress, balanceKey, balanceIn } from './codec.js';
import { certified, pinned, forgetPinned, proven, mark, failed } from './trust.js';
import { short, dl, field, input } from './widgets.js';

export async function verifyView(root) {
  const head = h('section', { class: 'panel', 'aria-labelledby': 'head-title' });
  live(head, async (el) => {
    await refreshStatus();
    let check;
    let rows;
    try {
      const c = await certified();
      check = h('p', { id: 'certificate-check' }, mark(c, 'Certificate verified'));
      rows = [['Height', h('span', { id: 'certified-height' }, String(c.height))], ['Block', h('span', { class: 'mono break' }, c.block)],
        ['State root', h('span', { class: 'mono break', id: 'state-root' }, c.state_root)]];
    } catch (e) {
      check = h('p', { id: 'certificate-check' }, failed(e));
      rows = [];
    }
    const a = pinned();
    el.replaceChildren(h('h2', { id: 'head-title' }, 'Newest certified block'), check, dl(rows),
      h('h3', {}, 'The chain this browser trusts'),
      a ? dl([['Chain', a.chain_id], ['Genesis', h('span', { class: 'mono break', id: 'pinned-genesis' }, a.genesis_hash)],
        ['Validators', h('span', { id: 'validators' }, `${a.validators.length} (a block is final when more than two thirds sign it): `, a.validators.map((v) => short(v, 8)).join(', '))]]) : h('p', { class: 'muted' }, 'None pinned yet.'),
      h('p', { class: 'hint' }, 'Pinned the first time this browser checked a value. Compare the genesis hash with the one your society publishes; if a node serves another, every check fails.'),
      h('button', { type: 'button', class: 'secondary', id: 'forget-genesis', onclick: action(async () => forgetPinned()) }, 'Forget the pinned chain'));
  });

  const result = h('div', { id: 'proof-result', role: 'status' });
  const who = input('proof-address', { value: app.wallet ? app.wallet.address : '', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'stack', id: 'proof-form' },
    field('proof-address', 'Account', who, 'Your own by default. The node sends each balance with a proof; this page checks it against the state root of the block the validators certified.'),
    h('button', { type: 'submit' }, 'Check the balances in this browser'));
  form.addEventListener('submit', action(async () => {
    const address = who.value.trim();
    decodeAddress(address);
    const acc = await api(`/accounts/${address}`);
    const assets = acc.balances.length ? acc.balances.map((b) => b.asset) : [0];
    const lines = [];
    for (const id of assets) {
      const a = await asset(id);
      try {
        const p = await proven(balanceKey(address, id));
        lines.push(h('li', { class: 'ok', 'data-verified': 'true' }, `${a.symbol}: ${formatAmount(balanceIn(id, p.value), a.decimals)} `, mark(p.head)));
      } catch (e) {
        lines.push(h('li', { class: 'bad', 'data-verified': 'false' }, `${a.symbol}: `, failed(e)));
      }
    }
    result.replaceChildren(h('ul', { class: 'proofs' }, lines));
  }, { refresh: false }));

  root.append(h('h1', {}, 'Verify'),
    h('p', { class: 'lead' }, 'Check for yourself instead of trusting this node’s word: this browser checks every balance, standing and request it shows against the state root of a block whose validators’ signatures it checks.'),
    head,
    h('section', { class: 'panel', 'aria-labelledby': 'proof-title' }, h('h2', { id: 'proof-title' }, 'Prove a balance'), form, result),
    nodesPanel(),
    h('p', { class: 'hint' }, 'What is checked: the finalization certificate (Ed25519 signatures of a quorum of the pinned validators), that the block header hashes to the certified block, and each value’s proof (SHA-256: the state’s operation log under a Merkle mountain range with the bitmap of current operations grafted on) against the header’s state root. What is not: the page’s own code, which the node serving it sends.'));
}

/** The nodes the app may talk to: the one serving the page, and the ones the member added. */
function nodesPanel() {
  const current = nodeUrl();
  const rows = [['', 'This page’s node'], ...savedNodes().map((u) => [u, u])].map(([origin, label]) =>
    h('li', { 'data-node': origin || 'self' }, origin === current ? h('strong', {}, `${label} (in use)`) : label, ' ',
      origin !== current ? h('button', { type: 'button', class: 'secondary', onclick: () => useNode(origin) }, 'Use') : null,
      origin ? h('button', { type: 'button', class: 'secondary', onclick: () => { dropNode(origin); useNode(nodeUrl()); } }, 'Remove') : null));
  const url = input('node-url', { required: true, autocomplete: 'off', placeholder: 'https://node.example.org' });
  const form = h('form', { class: 'inline', id: 'node-form' }, field('node-url', 'Add a node', url), h('button', { type: 'submit' }, 'Add and use'));
  form.addEventListener('submit', action(async () => {
    const origin = nodeOrigin(url.value);
    saveNode(origin);
    useNode(origin);
  }, { refresh: false }));
  return h('section', { class: 'panel', 'aria-labelledby': 'nodes-title' }, h('h2', { id: 'nodes-title' }, 'Nodes'),
    h('p', { class: 'hint' }, 'Any node of the chain will do, a validator or a follower: what it says is checked against the pinned validators. If one is blocked or gone, use another.'),
    h('ul', { id: 'node-list' }, rows), form);
}
