// The society page's *Rule changes* panel: the open proposal with its votes, and the form to
// propose new rules.

import { h, api, app, asset, send, action } from './ui.js';
import { formatAmount } from './codec.js';
import { addressLink, relative } from './widgets.js';
import { RULES, ruleValue, rulesFields, readRules } from './rules.js';

export async function amendmentsPanel(el, s, data) {
  const title = h('h2', { id: 'amendments-title' }, 'Rule changes');
  const cur = (await data()).soc;
  const a = await asset(s.asset);
  const parts = [title];
  if (cur.amendment !== null && cur.amendment !== undefined) {
    const am = await api(`/amendments/${cur.amendment}`);
    const changed = RULES.filter((r) => String(am.rules[r.key]) !== String(cur.rules[r.key]));
    const now = app.status ? app.status.time_ms : Date.now();
    const closed = now >= am.ballot.deadline_ms;
    parts.push(h('article', { class: 'card', id: `amendment-${am.id}` },
      h('h3', {}, `Proposal #${am.id} (${am.status})`),
      h('p', {}, 'Proposed by ', addressLink(am.proposer), '. Changes: ', changed.length ? changed.map((r) => `${r.label}: ${ruleValue(r, cur.rules[r.key], a)} → ${ruleValue(r, am.rules[r.key], a)}`).join('; ') : 'none'),
      h('p', {}, `Yes ${formatAmount(am.ballot.yes, a.decimals)} · No ${formatAmount(am.ballot.no, a.decimals)} karma; needs ${formatAmount(am.ballot.thresholds.yes_needed, a.decimals)} yes. Voting ${closed ? 'closed' : 'closes'} ${relative(am.ballot.deadline_ms)}.`),
      app.wallet && am.status === 'open'
        ? h('div', { class: 'inline' },
          closed ? null : h('button', { type: 'button', onclick: action(() => send({ kind: 'vote_amendment', amendment: am.id, approve: true }, 'Vote for the change')) }, 'Vote yes'),
          closed ? null : h('button', { type: 'button', class: 'secondary', onclick: action(() => send({ kind: 'vote_amendment', amendment: am.id, approve: false }, 'Vote against the change')) }, 'Vote no'),
          closed ? h('button', { type: 'button', onclick: action(() => send({ kind: 'enact_amendment', amendment: am.id }, 'Enact or close the change')) }, 'Enact or close') : null)
        : null));
  } else {
    parts.push(h('p', { class: 'muted' }, 'No rule change is open.'));
  }
  if (app.wallet && (cur.amendment === null || cur.amendment === undefined)) {
    const form = h('form', { class: 'stack', id: 'amend-form' },
      ...rulesFields('amend', cur.rules, a.decimals, ['period_secs']),
      h('button', { type: 'submit' }, 'Propose these rules'));
    form.addEventListener('submit', action(async (f) => {
      await send({ kind: 'propose_amendment', society: s.id, rules: readRules(f, 'amend', a) }, 'Propose a rule change');
    }));
    parts.push(h('details', {}, h('summary', {}, 'Propose a rule change'), h('p', { class: 'hint' }, 'The currency and the period cannot change.'), form));
  }
  el.replaceChildren(...parts);
}
