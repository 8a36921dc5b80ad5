// Drives the operator page through validate/switch progress and a Redis restart: the numbers it shows, "Redis unavailable", recovery without a reload.
// Usage: node web_phases.js PAGE_URL SCREENSHOT_PATH; PLAYWRIGHT_CORE names the playwright-core folder.
// Prints "STOP-REDIS" when the test should stop Redis and "START-REDIS" when it
// should start it again, then one JSON object, all on stdout (web_test.cpp).
'use strict';

const { fields, withChromium } = require('./chromium');

const say = (line) => process.stdout.write(line + '\n');

async function phases(page) {
  return page.evaluate(() => ({
    state: document.getElementById('d-state').textContent,
    verified: document.getElementById('d-verified').textContent,
    to_verify: document.getElementById('d-to-verify').textContent,
    validate: document.getElementById('d-validate').textContent,
    switch: document.getElementById('d-switch').textContent,
    panel_shown: !document.getElementById('phases').hidden,
    connection: document.getElementById('connection').textContent,
  }));
}

withChromium(async (context) => {
  const [url, screenshot] = process.argv.slice(2);
  const result = {};
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 20000 });
  await page.waitForFunction(() => /\d/.test(document.getElementById('d-verified').textContent), null, { timeout: 20000 });
  result.before = await phases(page);
  result.fields_before = await fields(page);
  await page.screenshot({ path: screenshot, fullPage: true });

  // A mark that a reload would wipe: recovery must happen in this document.
  await page.evaluate(() => { window.blobferryMark = 'same-document'; });
  say('STOP-REDIS');
  // The page polls every 2 s: "within a few polls" is five of them here.
  await page.waitForFunction(() => /Redis unavailable/.test(document.getElementById('connection').textContent), null, { timeout: 10000 });
  result.during = await phases(page);
  say('START-REDIS');
  await page.waitForFunction(() => /^live/.test(document.getElementById('connection').textContent), null, { timeout: 30000 });
  result.after = await phases(page);
  result.fields_after = await fields(page);
  result.same_document = await page.evaluate(() => window.blobferryMark === 'same-document');
  result.page_errors = errors;
  return result;
});
