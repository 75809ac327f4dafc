// `#/create`: create a society — its name, purpose, currency and rules, the founder's pledge, and
// *Try these rules* (preview.js) under the form.

import { h, api, app, send, action, notify } from './ui.js';
import { formatAmount, parseAmount, LIMITS } from './codec.js';
import { field, input, needWallet } from './widgets.js';
import { defaultRules, rulesFields, readRules } from './rules.js';
import { previewPanel } from './preview.js';

export async function createView(root) {
  const assets = (await api('/assets?limit=100')).items;
  const kas = assets.find((a) => a.id === 0) || { id: 0, symbol: 'KAS', decimals: 6 };
  const rules = defaultRules(10n * 10n ** BigInt(kas.decimals), 100n * 10n ** BigInt(kas.decimals));
  const assetSelect = h('select', { id: 'society-asset' }, assets.map((a) => h('option', { value: a.id }, `${a.symbol}${a.id === 0 ? ' (native)' : ''}`)));
  const form = h('form', { class: 'stack', id: 'create-society', 'aria-labelledby': 'create-title' },
    h('fieldset', {}, h('legend', {}, 'About'),
      field('society-name', 'Name', input('society-name', { required: true, maxlength: LIMITS.name, autocomplete: 'off' }), 'Up to 64 bytes.'),
      field('society-purpose', 'Purpose: which misfortunes qualify', h('textarea', { id: 'society-purpose', required: true, maxlength: LIMITS.purpose, rows: 3, 'aria-describedby': 'society-purpose-hint' }), 'Members vote on requests against this text.'),
      field('society-asset', 'Currency', assetSelect, 'What pledges, gift accounts and payments are in.'),
      field('society-pledge', 'Your pledge per period', input('society-pledge', { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(rules.min_pledge, kas.decimals).replace(/,/g, '') }),
        'You become the society’s first member with this pledge, between the smallest and the largest pledge below. Your first period is due at once.')),
    h('fieldset', {}, h('legend', {}, 'Rules'),
      h('p', { class: 'hint' }, 'The defaults follow the Broodfonds model. The founder gets no privilege: rules change only by the members’ vote. Some rules have floors that no society can go below: at least one period of grace, at least one period before expulsion and before a rule change applies, a voting time of at least a minute and 1/30 of the period, and a margin and a quorum above zero.'),
      ...rulesFields('rule', rules, kas.decimals)),
    h('button', { type: 'submit' }, 'Create the society'));
  const demo = app.status && app.status.faucet
    ? h('p', { class: 'callout' }, 'Trying Kassa on a development chain? ',
      h('button', { type: 'button', class: 'secondary', id: 'demo-rules', onclick: () => fillDemoRules(form, kas.decimals) }, 'Use quick demo rules'),
      ' — 30-second periods, 1-minute votes, no waiting time, 4 members minimum (you and three dev accounts).')
    : null;
  form.addEventListener('submit', action(async () => {
    const a = assets.find((x) => String(x.id) === assetSelect.value) || kas;
    const societyRules = readRules(form, 'rule', a);
    const pledge = parseAmount(form.querySelector('#society-pledge').value, a.decimals, 'your pledge');
    if (pledge < BigInt(societyRules.min_pledge) || pledge > BigInt(societyRules.max_pledge)) {
      const e = new Error(`pledge: must be between ${formatAmount(societyRules.min_pledge, a.decimals)} and ${formatAmount(societyRules.max_pledge, a.decimals)} ${a.symbol}, the smallest and the largest pledge`);
      e.field = 'Your pledge per period';
      throw e;
    }
    const body = {
      kind: 'create_society',
      name: form.querySelector('#society-name').value.trim(),
      purpose: form.querySelector('#society-purpose').value.trim(),
      asset: a.id,
      rules: societyRules,
      pledge: String(pledge),
    };
    const receipt = await send(body, 'Create society');
    const ev = (receipt.events || []).find((e) => e.type === 'society_created');
    if (ev) location.hash = `#/society/${ev.society}`;
  }));
  const chosen = () => assets.find((x) => String(x.id) === assetSelect.value) || kas;
  const preview = previewPanel(() => readRules(form, 'rule', chosen()), chosen);
  root.append(h('h1', { id: 'create-title' }, 'Create a society'), ...(app.wallet ? [] : [needWallet()]), ...(demo ? [demo] : []), form, preview);
}

/** Rules for trying a society out in minutes on a development chain (within every floor). */
function fillDemoRules(form, decimals) {
  const set = (key, value, unit) => {
    form.querySelector(`#rule-${key}`).value = value;
    if (unit) form.querySelector(`#rule-${key}-unit`).value = unit;
  };
  if (!form.querySelector('#society-name').value) form.querySelector('#society-name').value = 'Demo bread fund';
  if (!form.querySelector('#society-purpose').value) form.querySelector('#society-purpose').value = 'Income for members too ill to work.';
  set('period_secs', 30, 'seconds');
  set('voting_window_secs', 60, 'seconds');
  set('waiting_periods', 0);
  set('min_members', 4);
  set('notice_periods', 0);
  set('min_pledge', formatAmount(10n ** BigInt(decimals), decimals));
  form.querySelector('#society-pledge').value = formatAmount(10n ** BigInt(decimals), decimals);
  notify('ok', 'Demo rules filled in. Check them, then create the society.');
}
