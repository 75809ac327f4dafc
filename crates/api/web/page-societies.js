// `#/societies` (the home page): every society, searchable by name or purpose.

import { h, api, live } from './ui.js';
import { money, duration, field, input } from './widgets.js';

export async function societiesView(root) {
  const list = h('div', { class: 'cards', id: 'society-list' });
  const search = input('society-search', { type: 'search', placeholder: 'Name or purpose', autocomplete: 'off' });
  let all = [];
  const show = async (target = list) => {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((s) => !q || s.name.toLowerCase().includes(q) || s.purpose.toLowerCase().includes(q));
    const cards = [];
    for (const s of shown) {
      cards.push(h('article', { class: 'card society' },
        h('h2', {}, h('a', { href: `#/society/${s.id}` }, s.name)),
        h('p', {}, s.purpose.length > 160 ? s.purpose.slice(0, 160) + '…' : s.purpose),
        h('p', { class: 'muted' }, `${s.member_count} members · gift funds ${await money(s.gift_funds, s.asset)} · pledge ${await money(s.rules.min_pledge, s.asset)}–${await money(s.rules.max_pledge, s.asset)} per ${duration(s.rules.period_secs)}`)));
    }
    target.replaceChildren(...(cards.length ? cards : [h('p', { class: 'muted' }, all.length ? 'No society matches.' : 'No society yet. Be the first to create one.')]));
  };
  search.addEventListener('input', () => show());
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Societies'), h('a', { class: 'button', href: '#/create' }, 'Create a society')),
    h('p', { class: 'lead' }, 'Groups who put money aside every period so that a member hit by a misfortune is helped by the others. Every rule runs on the chain; nobody holds a key to the money.'),
    field('society-search', 'Search societies', search),
    live(list, async (el) => {
      all = [];
      for (let after = null; ; ) {
        const page = await api(`/societies?limit=100${after ? `&after=${after}` : ''}`);
        all.push(...page.items);
        if (!page.next) break;
        after = page.next;
      }
      await show(el);
    }),
  );
}
