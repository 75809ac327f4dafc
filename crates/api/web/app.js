// The app's entry: boots it (the node's status, the browser wallet, the event stream) and routes
// `#/…` fragments to the pages, one module per page (page-*.js). What the pages share is in
// ui.js, and nothing imports this file.

import { h, notify, messageOf, refreshStatus, loadWallet, connectEvents, clearLive, setRerender } from './ui.js';
import { societiesView } from './page-societies.js';
import { createView } from './page-create.js';
import { societyView } from './page-society.js';
import { walletView } from './page-wallet.js';
import { explorerView, blockView, txView, accountView, assetsView } from './page-explorer.js';
import { verifyView } from './page-verify.js';

function notFound(root) {
  root.append(h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/societies' }, 'Go to the societies')));
}

/** The pages, by the first segment of the route. */
const views = {
  societies: societiesView,
  create: createView,
  society: societyView,
  wallet: walletView,
  explorer: explorerView,
  block: blockView,
  tx: txView,
  account: accountView,
  assets: assetsView,
  verify: verifyView,
  notFound,
};

/** Routes: `#/path/args`. The first segment picks the view. */
function route() {
  const [name, ...args] = (location.hash.replace(/^#\/?/, '') || 'societies').split('/');
  return { name, args: args.map(decodeURIComponent) };
}

let rendering = 0;

/** Renders the current route; `navigated` moves keyboard focus to the new page's heading. */
async function rerender(navigated = false) {
  const { name, args } = route();
  const view = views[name] || views.notFound;
  const main = document.getElementById('main');
  const token = ++rendering;
  clearLive();
  const content = h('div', { class: 'view' });
  try {
    await view(content, ...args);
  } catch (e) {
    content.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'message error' }, messageOf(e)));
  }
  if (token !== rendering) return; // a newer navigation won
  const focused = main.contains(document.activeElement);
  main.replaceChildren(content);
  document.querySelectorAll('nav a').forEach((a) => {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const title = content.querySelector('h1');
  document.title = title ? `${title.textContent} · Kassa` : 'Kassa';
  if (navigated && !focused && title) {
    title.setAttribute('tabindex', '-1');
    title.focus({ preventScroll: true });
  }
}

async function start() {
  window.addEventListener('hashchange', () => {
    rerender(true);
    window.scrollTo(0, 0);
  });
  try {
    await refreshStatus();
  } catch (e) {
    notify('error', messageOf(e));
  }
  await loadWallet();
  connectEvents();
  await rerender();
  document.body.dataset.ready = 'true';
}

setRerender(rerender);
if (typeof document !== 'undefined') start();
