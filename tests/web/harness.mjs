// harness.mjs - shared pieces of the browser tests: skip rules, starting
// `parley serve` on a free port, launching Debian's chromium through
// playwright-core, assertions and screenshots.
//
// Environment (set by CTest): PL_BIN (the parley CLI), PL_FIXTURE_DIR,
// PL_SHARED_DIR, PL_SOURCE_DIR, PL_ARTIFACT_DIR (screenshots go there).
// PL_CHROMIUM overrides the browser path. Exit 77 = skipped.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.PL_SOURCE_DIR || path.resolve(HERE, '../..');
export const WEB_DIR = path.join(SOURCE_DIR, 'web');
export const ARTIFACTS = process.env.PL_ARTIFACT_DIR || path.join(HERE, 'artifacts');
export const FIXTURES = process.env.PL_FIXTURE_DIR || '';

class Skip extends Error {}

// Inside run(): cleans up (server, browser), then exits 77.
export function skip(reason) {
  throw new Skip(reason);
}

export function fail(msg) {
  throw new Error(msg);
}

export function check(cond, msg) {
  if (!cond) fail(`check failed: ${msg}`);
}

export function checkEq(actual, expected, msg) {
  if (actual !== expected) fail(`${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch {
    skip('playwright-core is not installed (scripts/install-deps.sh runs npm ci in tests/web)');
  }
}

export function chromiumPath() {
  const cands = [process.env.PL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  const p = cands.find((c) => fs.existsSync(c));
  if (!p) skip('chromium is not installed (Debian package chromium; scripts/install-deps.sh)');
  return p;
}

export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser(extraArgs = []) {
  const { chromium } = await loadPlaywright();
  const executablePath = chromiumPath();
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_FLAGS, ...extraArgs] });
}

// A page that fails the test on any script error or console error.
const openPages = [];

export async function newPage(browser, opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...opts });
  const page = await ctx.newPage();
  openPages.push(page);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_ABORTED/.test(m.text())) page.errors.push(`console: ${m.text()}`);
  });
  return page;
}

export function checkNoErrors(page) {
  if (page.errors.length) fail(`the page reported errors:\n  ${page.errors.join('\n  ')}`);
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
  return file;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function fixture(name) {
  const f = path.join(FIXTURES, name);
  if (!FIXTURES || !fs.existsSync(f)) skip(`fixture model ${name} not found in PL_FIXTURE_DIR`);
  return f;
}

// Is there a WebSocket endpoint at url (http://...)? Resolves to the status
// of the upgrade answer (101 when there is).
export function wsStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', () => resolve(0));
    req.setTimeout(5000, () => { req.destroy(); resolve(0); });
  });
}

// Start `parley serve` on a free port with the page from web/; resolves when
// /health says ok. Skips when the binary has no serve command.
export async function startServer(model, extra = []) {
  const bin = process.env.PL_BIN;
  if (!bin || !fs.existsSync(bin)) skip('PL_BIN (the parley CLI) is not set or missing');
  const help = spawnSync(bin, ['serve', '--help'], { encoding: 'utf8' });
  if (help.status !== 0 || !/serve/.test(help.stdout + help.stderr)) skip('this parley has no `serve` command yet');
  const port = await freePort();
  const args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', String(port), '--web-dir', WEB_DIR, ...extra];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url, proc, port,
    get log() { return log; },
    async stop() {
      if (proc.exitCode != null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
      await new Promise((r) => proc.once('exit', r));
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode != null) fail(`parley serve exited with ${proc.exitCode}:\n${log}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await server.stop();
      fail(`parley serve not healthy after 30 s:\n${log}`);
    }
    await sleep(100);
  }
  return server;
}

export async function api(server, p, body) {
  const r = await fetch(`${server.url}${p}`, body ? {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  } : undefined);
  const text = await r.text();
  if (!r.ok) fail(`${p}: HTTP ${r.status}: ${text}`);
  return JSON.parse(text);
}

// Random weights: greedy decoding may pick an empty [PAD] token over and over
// for some prompts. The first prompt whose greedy answer has visible text.
export async function visiblePrompt(server, field, maxTokens = 24) {
  for (const q of ['Hello there', 'Why is the sky blue?', 'Tell me a story', 'What is 2+2?', 'Hi']) {
    const r = await api(server, '/v1/chat/completions', { messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: maxTokens });
    if (r.choices[0].message[field]) return q;
  }
  return fail(`no prompt gives visible ${field} (the model answered only empty tokens)`);
}

// Run named steps in order; print each; on failure print the server log tail,
// clean up and exit 1.
export async function run(name, fn) {
  const cleanups = [];
  const t = { defer: (f) => cleanups.push(f) };
  let code = 0;
  try {
    await fn(t);
    console.log(`PASS ${name}`);
  } catch (e) {
    if (e instanceof Skip) {
      console.log(`SKIP: ${e.message}`);
      code = 77;
    } else {
      console.log(`FAIL ${name}: ${e.stack || e}`);
      code = 1;
      // what the pages showed when it failed
      for (const [i, p] of openPages.entries()) {
        await screenshot(p, `FAILED-${path.basename(process.argv[1], '.mjs')}-${i}`).catch(() => {});
      }
    }
  }
  for (const f of cleanups.reverse()) {
    try {
      const out = await f(code === 1);
      if (typeof out === 'string' && out) console.log(out);
    } catch (e) { console.log(`cleanup: ${e.message}`); }
  }
  process.exit(code);
}

export async function step(label, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    console.log(`  ok  ${label} (${Date.now() - t0} ms)`);
    return r;
  } catch (e) {
    e.message = `${label}: ${e.message}`;
    throw e;
  }
}
