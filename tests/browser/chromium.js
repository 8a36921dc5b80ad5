// Shared by the browser tests: Debian's chromium through playwright-core, and the page's numbers as the tests read them.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Every [data-field] of the page as a number, keyed by the status --json field it shows.
async function fields(page) {
  return page.$$eval('[data-field]', (nodes) => Object.fromEntries(
    nodes.map((n) => [n.dataset.field, Number(n.textContent.replace(/[^0-9]/g, ''))])));
}

// Runs body(context) in a fresh chromium profile, removed afterwards; prints
// body's result as one JSON line on stdout, or the error on stderr (exit 1).
function withChromium(body) {
  (async () => {
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'blobferry-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1280, height: 1000 },
    });
    let result;
    try {
      result = await body(context);
    } finally {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    }
    process.stdout.write(JSON.stringify(result) + '\n');
  })().catch((e) => {
    process.stderr.write(String((e && e.stack) || e) + '\n');
    process.exit(1);
  });
}

module.exports = { fields, withChromium };
