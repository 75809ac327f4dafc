// "Try these rules": runs the node's society simulator on the rules of the create-society form
// and shows what would have happened — the summary in plain words and four charts — before any
// real money is at stake.

import { h, api, action } from './ui.js';
import { lineChart } from './charts.js';

/** Members and periods of a preview (the node refuses more than 60,000 member-periods). */
const MEMBERS = 1000;
const PERIODS = 60;

/**
 * The panel under the create-society form. `rulesOf()` reads and checks the form's rules (and
 * throws naming the field that is wrong); `assetOf()` is the chosen currency.
 */
export function previewPanel(rulesOf, assetOf) {
  const out = h('div', { id: 'preview-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'secondary', id: 'try-rules' }, 'Try these rules');
  button.addEventListener('click', action(async () => {
    const a = assetOf();
    const rules = rulesOf();
    button.disabled = true;
    out.replaceChildren(h('p', { class: 'muted' }, `Simulating ${MEMBERS.toLocaleString('en')} members for ${PERIODS} periods…`));
    try {
      const report = await api('/simulate', {
        method: 'POST',
        body: JSON.stringify({ rules, members: MEMBERS, periods: PERIODS, currency: a.symbol, decimals: a.decimals }),
      });
      out.replaceChildren(...render(report, a));
    } catch (e) {
      out.replaceChildren();
      throw e;
    } finally {
      button.disabled = false;
    }
  }, { refresh: false }));
  return h('section', { class: 'panel stack', id: 'preview', 'aria-labelledby': 'preview-title' },
    h('h2', { id: 'preview-title' }, 'Try these rules'),
    h('p', { class: 'hint' }, `Runs these rules through the chain's own state machine on ${MEMBERS.toLocaleString('en')} simulated members for ${PERIODS} periods: misfortunes strike 2 in 1,000 members a period, half needing a lump sum of 10 to 60 pledges, half 2 to 4 pledges a period for up to 6 periods; most members vote through delegates. For other scenarios, run kassa simulate.`),
    button, out);
}

function render(report, a) {
  const rows = report.rows;
  const points = (value) => rows.map((r) => ({ label: `period ${r.period}`, value: BigInt(value(r)) }));
  const percent = (bps) => `${(Number(bps) / 100).toFixed(1)}%`;
  const figure = (chart, caption) => h('figure', {}, chart, h('figcaption', {}, caption));
  const whole = 10n ** BigInt(a.decimals);
  return [
    h('ul', { class: 'preview-summary' }, report.summary.sentences.map((s) => h('li', {}, s))),
    h('div', { class: 'charts' },
      figure(lineChart(points((r) => (BigInt(r.gift_funds) + BigInt(r.common_fund)) / whole), { label: `Funds (${a.symbol}) over ${rows.length} periods`, format: (v) => `${v} ${a.symbol}` }), `Funds (${a.symbol})`),
      figure(lineChart(points((r) => r.cost_bps), { label: 'Help per member as a share of the mean pledge', format: percent }), 'Cost per member (share of a pledge)'),
      figure(lineChart(points((r) => r.queued), { label: 'Approved lump sums waiting to be paid', format: String }), 'Queue'),
      figure(lineChart(points((r) => r.delay), { label: 'Longest wait for approved help, in periods', format: String }), 'Payout delay (periods)')),
    h('p', { class: 'muted' }, `Simulated in ${report.elapsed_ms} ms; ${report.summary.transactions.toLocaleString('en')} transactions; seed ${report.seed}.`),
  ];
}
