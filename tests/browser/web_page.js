// Drives the operator page in Debian's chromium (playwright-core): reads what it shows, clicks requeue, saves a screenshot.
// Usage: node web_page.js PAGE_URL SCREENSHOT_PATH; PLAYWRIGHT_CORE names the playwright-core folder.
// Prints one JSON object on stdout; web_test.cpp compares it with `status --json` and Redis.
'use strict';

const { fields, withChromium } = require('./chromium');

withChromium(async (context) => {
  const [url, screenshot] = process.argv.slice(2);
  const result = {};
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (dialog) => dialog.accept());

  const missing = await page.goto(new URL('/migrations/no-such-migration', url).href);
  result.unknown_status = missing.status();
  result.unknown_text = await page.textContent('h1');

  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 20000 });
  await page.waitForSelector('#failures tbody tr td.key', { timeout: 20000 });
  result.shown = await fields(page);
  result.state = await page.textContent('#d-state');
  result.connection = await page.textContent('#connection');
  result.reasons = await page.$$eval('#reasons .reason', (nodes) => nodes.map((n) => n.textContent));
  result.failure_rows = await page.$$eval('#failures tbody tr td.key', (nodes) => nodes.length);
  result.chart_paths = await page.$$eval('#chart path', (nodes) => nodes.length);
  result.jobs_text = await page.textContent('#d-jobs-text');
  result.budgets = await page.$$eval('#budgets tbody tr', (rows) => rows.map((r) => Array.from(r.cells, (c) => c.textContent)));
  result.budgets_hidden = await page.$eval('#budgets-panel', (n) => n.hidden);
  result.html_has_secret = (await page.content()).includes('S3RVER');
  await page.screenshot({ path: screenshot, fullPage: true });

  // Search narrows the keys.
  await page.fill('#search-input', 'missing-3');
  await page.click('#failure-search button[type="submit"]');
  await page.waitForFunction(() => document.querySelectorAll('#failures tbody tr td.key').length === 1, null, { timeout: 10000 });
  result.search_rows = await page.$$eval('#failures tbody tr td.key', (nodes) => nodes.map((n) => n.textContent));

  await page.click('#requeue-all');
  await page.waitForFunction(() => /Requeued/.test(document.getElementById('message').textContent), null, { timeout: 10000 });
  result.message = await page.textContent('#message');
  await page.waitForFunction(() => document.querySelector('[data-field="failed"]').textContent === '0', null, { timeout: 10000 });
  result.after = await fields(page);
  result.page_errors = errors;
  return result;
});
