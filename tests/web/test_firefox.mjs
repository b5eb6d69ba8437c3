// test_firefox.mjs - the page in Firefox (Debian's firefox-esr; skips when it
// is not installed), driven over WebDriver BiDi directly (playwright-core's
// Firefox needs a patched build): against `parley serve`, a message streams
// in with its metrics, and the AudioWorklet resamples a 48 kHz tone to 16 kHz.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { run, step, check, checkEq, skip, startServer, fixture, visiblePrompt, sleep, ARTIFACTS } from './harness.mjs';

// Node 20 has its WebSocket client behind a flag: run again with it.
if (typeof WebSocket !== 'function' && !process.execArgv.includes('--experimental-websocket')) {
  const r = spawnSync(process.execPath, ['--experimental-websocket', '--no-warnings', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const FIREFOX = ['/usr/bin/firefox-esr', '/usr/bin/firefox'].find((f) => fs.existsSync(f));

class Bidi {
  constructor(ws) {
    this.ws = ws;
    this.id = 0;
    this.wait = new Map();
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      const w = this.wait.get(m.id);
      if (!w) return;
      this.wait.delete(m.id);
      if (m.type === 'error') w.reject(new Error(`${m.error}: ${m.message}`));
      else w.resolve(m.result);
    };
  }

  send(method, params = {}) {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.wait.set(id, { resolve, reject }));
  }

  async eval(context, expression) {
    const r = await this.send('script.evaluate', { expression, target: { context }, awaitPromise: true, resultOwnership: 'none' });
    if (r.type === 'exception') throw new Error(`in page: ${r.exceptionDetails.text}`);
    return r.result.value;
  }
}

run('firefox against parley serve', async (t) => {
  if (!FIREFOX) skip('Firefox is not installed (firefox-esr; scripts/install-deps.sh)');
  if (typeof WebSocket !== 'function') skip('this node has no WebSocket client (run with --experimental-websocket)');
  const server = await startServer(fixture('smollm2-135m-spm-q8_0.gguf'), ['-np', '1', '-c', '1024', '-t', '1']);
  t.defer(async (failed) => { await server.stop(); return failed ? `server log:\n${server.log.slice(-3000)}` : ''; });

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-ff-'));
  t.defer(() => fs.rmSync(profile, { recursive: true, force: true }));
  const ff = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.defer(async () => {
    if (ff.exitCode == null) { ff.kill('SIGTERM'); await new Promise((r) => ff.once('exit', r)); }
  });
  // Firefox prints "WebDriver BiDi listening on ws://127.0.0.1:PORT"
  const wsUrl = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`Firefox did not start:\n${log}`)), 60000);
    const on = (d) => {
      log += d;
      const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    ff.stdout.on('data', on);
    ff.stderr.on('data', on);
  });
  const ws = new WebSocket(`${wsUrl}/session`);
  await new Promise((r, j) => { ws.onopen = r; ws.onerror = () => j(new Error('BiDi connect failed')); });
  t.defer(() => ws.close());
  const bidi = new Bidi(ws);
  const session = await bidi.send('session.new', { capabilities: { alwaysMatch: { acceptInsecureCerts: false } } });
  console.log(`      ${session.capabilities.browserName} ${session.capabilities.browserVersion}`);
  const { contexts } = await bidi.send('browsingContext.getTree', {});
  const ctx = contexts[0].context;
  await bidi.send('browsingContext.setViewport', { context: ctx, viewport: { width: 1000, height: 760 } }).catch(() => {});
  const prompt = await visiblePrompt(server, 'content');
  await bidi.send('browsingContext.navigate', { context: ctx, url: `${server.url}/`, wait: 'complete' });
  // greedy, 24 tokens (settings are read at load)
  await bidi.eval(ctx, `localStorage.setItem('parley.settings.v1', JSON.stringify({ temperature: 0, max_tokens: 24 }))`);
  await bidi.send('browsingContext.navigate', { context: ctx, url: `${server.url}/`, wait: 'complete' });

  await step('a message streams in, with metrics', async () => {
    const r = await bidi.eval(ctx, `(async () => {
      const $ = (s) => document.querySelector(s);
      for (let i = 0; i < 100 && !$('#model-name').textContent; i++) await new Promise((r) => setTimeout(r, 100));
      $('#input').value = ${JSON.stringify(prompt)};
      $('#composer').requestSubmit();
      const lens = new Set();
      for (let i = 0; i < 600; i++) {
        const a = document.querySelector('.msg.assistant');
        if (a) lens.add(a.querySelector('.content').textContent.length);
        if (a && a.querySelector('.metrics .m-total')) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      const a = document.querySelector('.msg.assistant');
      return JSON.stringify({ model: $('#model-name').textContent, steps: lens.size,
        text: a?.querySelector('.content').textContent ?? null, gen: a?.querySelector('.m-gen b')?.textContent ?? null,
        stored: JSON.parse(localStorage.getItem('parley.conversations.v1')).conversations[0].messages.length });
    })()`);
    const o = JSON.parse(r);
    console.log(`      ${JSON.stringify(o).slice(0, 200)}`);
    check(o.model.length > 0, 'model name shown');
    check(o.text && o.text.length > 0, 'answer text');
    check(o.steps >= 3, `answer grew in ${o.steps} steps`);
    check(/^\d+$/.test(o.gen || ''), 'generated-token metric');
    checkEq(o.stored, 2, 'messages in localStorage');
    const shot = await bidi.send('browsingContext.captureScreenshot', { context: ctx });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'firefox-chat.png'), Buffer.from(shot.data, 'base64'));
    console.log(`screenshot: ${path.join(ARTIFACTS, 'firefox-chat.png')}`);
  });

  await step('AudioWorklet resampling in Firefox', async () => {
    const r = JSON.parse(await bidi.eval(ctx, `(async () => {
      const ctx = new OfflineAudioContext(1, 48000, 48000);
      await ctx.audioWorklet.addModule('/pcm-worklet.js');
      const osc = new OscillatorNode(ctx, { frequency: 1000 });
      const node = new AudioWorkletNode(ctx, 'pcm-capture');
      const chunks = [];
      node.port.onmessage = (e) => chunks.push(new Int16Array(e.data.pcm));
      osc.connect(new GainNode(ctx, { gain: 0.5 })).connect(node).connect(ctx.destination);
      osc.start();
      await ctx.startRendering();
      await new Promise((r) => setTimeout(r, 300));
      let n = 0, err = 0;
      for (const c of chunks) for (const v of c) {
        if (n >= 100) err = Math.max(err, Math.abs(v - 0.5 * Math.sin(2 * Math.PI * 1000 * n / 16000) * 32767));
        n++;
      }
      return JSON.stringify({ n, err });
    })()`));
    console.log(`      ${JSON.stringify(r)}`);
    check(r.n >= 15600 && r.n <= 16000, `${r.n} samples for one second`);
    check(r.err < 0.01 * 32767, `max error ${r.err}`);
  });
  await bidi.send('session.end', {}).catch(() => {});
  await sleep(100);
});
