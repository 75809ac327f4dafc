import { startNode, launchBrowser, person, SHOTS } from './harness.mjs';
const node = await startNode();
const browser = await launchBrowser();
try {
  const p = await person(browser, node);
  await p.page.goto(`${node.url}/#/wallet`);
  await p.page.fill('#new-pass', 'xxxxxxxxxx'); await p.page.fill('#new-pass2', 'xxxxxxxxxx');
  await p.page.click('#create-wallet button[type=submit]');
  await p.page.locator('#my-address').waitFor();
  await p.page.click('#faucet'); await p.page.waitForTimeout(3000);
  await p.page.goto(`${node.url}/#/verify`);
  await p.page.locator('#state-root').waitFor();
  await p.page.click('#proof-form button[type=submit]');
  await p.page.waitForTimeout(5000);
  console.log('notice:', await p.page.locator('#notice').textContent());
  console.log('result:', await p.page.locator('#proof-result').innerHTML());
  console.log('addr:', await p.page.locator('#proof-address').inputValue());
  console.log('errors', p.page.errors);
  await p.page.screenshot({ path: `${SHOTS}/dbg.png`, fullPage: true });
} finally { await browser.close(); await node.stop(); }
