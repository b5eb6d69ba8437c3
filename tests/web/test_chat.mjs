// test_chat.mjs - the page against a real `parley serve` (random-weight
// SmolLM2-135M-shape fixture, ~90 tok/s on one thread, so tokens arrive over
// many frames):
//  - send a message: the typing indicator shows, then goes at the first
//    token; the answer grows in several steps; the metrics shown are the
//    usage/timings of the raw SSE stream; with greedy sampling the answer is
//    the same text the non-streaming API gives for the same request;
//  - regenerate gives the same greedy answer; edit-last replaces the turn;
//  - reload keeps the conversation; new/rename/delete conversations;
//  - the thought panel fills live from reasoning_content (the server run with
//    the deepseek-r1 template, whose generation prompt opens <think>, so
//    everything the model says is reasoning);
//  - screenshots at desktop and phone width.
import { run, step, check, checkEq, visiblePrompt, launchBrowser, newPage, checkNoErrors, screenshot, startServer, fixture, api, sleep } from './harness.mjs';

const MAX_TOKENS = 24;

// Records, on every DOM change, whether the last answer's typing indicator is
// visible and how long its answer and thoughts are.
function installRecorder() {
  // keep a copy of each chat stream as the page received it
  window.streams = [];
  const realFetch = window.fetch;
  window.fetch = async (...args) => {
    const res = await realFetch(...args);
    if (String(args[0]).endsWith('/v1/chat/completions')) {
      const entry = { request: args[1]?.body, text: null };
      window.streams.push(entry);
      res.clone().text().then((t) => { entry.text = t; }, () => { entry.text = ''; });
    }
    return res;
  };
  window.rec = [];
  const snap = () => {
    const a = [...document.querySelectorAll('.msg.assistant')].pop();
    if (!a) return;
    const typing = a.querySelector('.typing');
    const s = { typing: !!typing && !typing.hidden, len: a.querySelector('.content').textContent.length,
      rlen: a.querySelector('.thought-body').textContent.length };
    const l = window.rec[window.rec.length - 1];
    if (!l || l.typing !== s.typing || l.len !== s.len || l.rlen !== s.rlen) window.rec.push(s);
  };
  new MutationObserver(snap).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
}

// Parse a captured SSE body into its final usage/timings.
function streamSummary(text) {
  const out = { content: '', reasoning: '', usage: null, timings: null, deltas: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const c = JSON.parse(line.slice(6));
    const d = c.choices?.[0]?.delta;
    if (d?.content) { out.content += d.content; out.deltas++; }
    if (d?.reasoning_content) { out.reasoning += d.reasoning_content; out.deltas++; }
    if (c.usage) out.usage = c.usage;
    if (c.timings) out.timings = c.timings;
  }
  return out;
}

async function setSettings(page, { temp, max }) {
  await page.click('#open-settings');
  await page.locator('#s-temp').fill(String(temp));
  await page.fill('#s-max', String(max));
  await page.click('#settings button[value=close]');
}

// The next chat stream the page reads, as received, once it is complete.
async function nextStream(page, n) {
  await page.waitForFunction((k) => window.streams.length > k && window.streams[k].text != null, n, { timeout: 60000 });
  const e = await page.evaluate((k) => window.streams[k], n);
  return { sse: streamSummary(e.text), request: JSON.parse(e.request) };
}

async function sendAndCapture(page, text) {
  const n = await page.evaluate(() => { window.rec = []; return window.streams.length; });
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  const a = page.locator('.msg.assistant').last();
  await a.locator('.metrics .m-total').waitFor({ timeout: 60000 });
  return { a, ...(await nextStream(page, n)) };
}

const storedConvs = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('parley.conversations.v1')));

run('chat against parley serve', async (t) => {
  const model = fixture('smollm2-135m-spm-q8_0.gguf');
  const server = await startServer(model, ['-np', '2', '-c', '1024', '-t', '1']);
  t.defer(async (code) => { await server.stop(); return code ? `server log:\n${server.log.slice(-3000)}` : ''; });
  const browser = await launchBrowser();
  t.defer(() => browser.close());
  const page = await newPage(browser);
  await page.addInitScript(installRecorder);
  await page.goto(`${server.url}/`);

  const models = await api(server, '/v1/models');
  await step('model name from the server', async () => {
    await page.locator('#model-name', { hasText: models.data[0].id }).waitFor({ timeout: 10000 });
    const info = await page.locator('#server-info').textContent();
    check(/ctx 1024/.test(info) && /2 slots/.test(info), `server info: ${info}`);
    await page.click('#open-settings');
    const props = await api(server, '/props');
    const dl = await page.locator('#props').evaluate((d) => Object.fromEntries([...d.querySelectorAll('dt')]
      .map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    checkEq(dl.model, props.model, 'settings: model from /props');
    checkEq(dl.context, String(props.n_ctx), 'settings: context from /props');
    checkEq(dl.slots, String(props.slots.length), 'settings: slots from /props');
    await screenshot(page, 'chat-settings');
    await page.click('#settings button[value=close]');
  });

  await setSettings(page, { temp: 0, max: MAX_TOKENS });
  let first;
  await step('send: indicator, streamed tokens, metrics', async () => {
    first = await sendAndCapture(page, await visiblePrompt(server, 'content', MAX_TOKENS));
    const rec = await page.evaluate(() => window.rec);
    const firstText = rec.findIndex((s) => s.len > 0 || s.rlen > 0);
    check(firstText > 0, `no text arrived: ${JSON.stringify(rec)}`);
    check(rec.slice(0, firstText).some((s) => s.typing), 'typing indicator was shown before the first token');
    check(rec.slice(firstText).every((s) => !s.typing), 'typing indicator gone after the first token');
    const lens = new Set(rec.map((s) => s.len + s.rlen).filter((n) => n > 0));
    check(lens.size >= 3, `answer grew in ${lens.size} steps (streamed?): ${JSON.stringify(rec)}`);
    checkEq(first.request.temperature, 0, 'temperature sent');
    checkEq(first.request.max_tokens, MAX_TOKENS, 'max_tokens sent');

    // what the page shows and stores is what the server sent
    const u = first.sse.usage, tm = first.sse.timings;
    check(u && tm, 'stream had usage and timings');
    const m = (k) => first.a.locator(`.m-${k} b`).textContent();
    checkEq(await m('gen'), String(u.completion_tokens), 'generated tokens');
    checkEq(await m('prompt'), `${u.prompt_tokens} (${u.prompt_tokens_details?.cached_tokens ?? 0} cached)`, 'prompt tokens');
    const ttft = await m('ttft');
    check(ttft === `${Math.round(tm.ttft_ms)} ms` || ttft === `${(tm.ttft_ms / 1000).toFixed(2)} s`, `TTFT ${ttft} vs ${tm.ttft_ms}`);
    checkEq(await m('tps'), `${tm.predicted_per_second.toFixed(1)} tok/s`, 'tok/s');
    const conv = (await storedConvs(page)).conversations[0];
    checkEq(conv.messages[1].content, first.sse.content, 'stored answer = streamed content');
    checkEq(conv.messages[1].reasoning ?? '', first.sse.reasoning, 'stored reasoning = streamed reasoning');

    // greedy: the same request without streaming gives the same text
    const whole = await api(server, '/v1/chat/completions', { ...first.request, stream: false, stream_options: undefined });
    checkEq(first.sse.content, whole.choices[0].message.content ?? '', 'streamed answer vs non-streamed greedy answer');
    await screenshot(page, 'chat-answer');
  });

  await step('regenerate: same greedy answer, prompt now cached', async () => {
    const n = await page.evaluate(() => window.streams.length);
    await first.a.locator('button.regenerate').click();
    const { sse } = await nextStream(page, n);
    await page.locator('.msg.assistant .metrics .m-total').waitFor();
    checkEq(await page.locator('.msg').count(), 2, 'messages after regenerate');
    checkEq(sse.content, first.sse.content, 'regenerated greedy answer');
    const conv = (await storedConvs(page)).conversations[0];
    checkEq(conv.messages[1].content, first.sse.content, 'stored regenerated answer');
  });

  await step('edit last: the turn is replaced', async () => {
    await page.locator('.msg.user button.edit').click();
    await page.fill('.msg.user textarea', 'Tell me more');
    const n = await page.evaluate(() => window.streams.length);
    await page.locator('.msg.user button.save').click();
    const req = (await nextStream(page, n)).request;
    await page.locator('.msg.assistant .metrics .m-total').waitFor();
    checkEq(req.messages.map((m) => `${m.role}:${m.content}`).join('|'), 'user:Tell me more', 'messages sent after edit');
    checkEq(await page.locator('.msg').count(), 2, 'messages after edit');
    checkEq(await page.locator('.msg.user .bubble').textContent(), 'Tell me more', 'edited bubble');
  });

  await step('reload keeps the conversation', async () => {
    const before = (await storedConvs(page)).conversations[0];
    await page.reload();
    await page.locator('.msg.assistant').waitFor();
    checkEq(await page.locator('.msg.user .bubble').textContent(), 'Tell me more', 'user message after reload');
    const after = (await storedConvs(page)).conversations[0];
    checkEq(after.messages[1].content, before.messages[1].content, 'answer after reload');
    checkEq(await page.locator('#conv-list li').count(), 1, 'conversations after reload');
    check(await page.locator('.msg.assistant .metrics .m-ttft').count() === 1, 'metrics kept');
    // a second turn: the history goes back to the server
    const { request } = await sendAndCapture(page, 'And then?');
    checkEq(request.messages.length, 3, 'second turn sends the history');
    checkEq(request.messages[1].content, before.messages[1].content, 'history answer');
  });

  await step('conversations: new, rename, delete', async () => {
    await page.click('#new-chat');
    checkEq(await page.locator('.msg').count(), 0, 'new chat is empty');
    await sendAndCapture(page, 'Second chat');
    checkEq(await page.locator('#conv-list li').count(), 2, 'two conversations');
    const old = page.locator('#conv-list li', { hasText: 'Tell me more' });
    await old.locator('button.rename').click();
    await page.fill('#conv-list li input', 'Renamed chat');
    await page.press('#conv-list li input', 'Enter');
    await page.locator('#conv-list li', { hasText: 'Renamed chat' }).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.locator('#conv-list li', { hasText: 'Second chat' }).locator('button.delete').click();
    await page.reload();
    await page.locator('#conv-list li').first().waitFor();
    const titles = await page.locator('#conv-list .conv-title').allTextContents();
    checkEq(titles.join('|'), 'Renamed chat', 'conversations after rename, delete and reload');
    await page.locator('#conv-list li').first().click();
    checkEq(await page.locator('#conv-title').textContent(), 'Renamed chat', 'title');
    checkEq(await page.locator('.msg').count(), 4, 'messages of the renamed chat');
  });

  await step('phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(400); // the drawer's slide-out transition
    await screenshot(page, 'chat-phone');
    check(await page.locator('#sidebar').evaluate((e) => e.getBoundingClientRect().right <= 0), 'drawer closed');
    await page.click('#toggle-sidebar');
    await sleep(300);
    check(await page.locator('#sidebar').evaluate((e) => e.getBoundingClientRect().left >= 0), 'drawer open');
    await screenshot(page, 'chat-phone-drawer');
    await page.click('#scrim', { position: { x: 370, y: 400 } });
    await sleep(300);
    check(await page.locator('#sidebar').evaluate((e) => e.getBoundingClientRect().right <= 0), 'drawer closed by the scrim');
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    check(w <= 390, `no horizontal overflow at 390 px (scrollWidth ${w})`);
    await page.setViewportSize({ width: 1100, height: 800 });
  });
  checkNoErrors(page);

  await step('thought panel fills live (deepseek-r1 template opens <think>)', async () => {
    const think = await startServer(model, ['-np', '1', '-c', '1024', '-t', '1', '--chat-template', 'deepseek-r1']);
    t.defer(() => think.stop());
    const p2 = await newPage(browser);
    await p2.addInitScript(installRecorder);
    await p2.goto(`${think.url}/`);
    await setSettings(p2, { temp: 0, max: MAX_TOKENS });
    const { a, sse } = await sendAndCapture(p2, await visiblePrompt(think, 'reasoning_content', MAX_TOKENS));
    check(sse.reasoning.length > 0, 'the server streamed reasoning_content');
    const rec = await p2.evaluate(() => window.rec);
    const rlens = new Set(rec.map((s) => s.rlen).filter((n) => n > 0));
    check(rlens.size >= 3, `thought panel grew in ${rlens.size} steps: ${JSON.stringify(rec)}`);
    checkEq(await a.locator('.thought-body').textContent(), sse.reasoning, 'thought panel = streamed reasoning');
    checkEq(await a.locator('.content').textContent(), '', 'no reasoning in the answer');
    check(!(await a.locator('.thought').isHidden()), 'thought panel shown');
    checkEq(await a.locator('.thought').evaluate((d) => d.open), true, 'thought panel open (no answer to show)');
    await screenshot(p2, 'chat-thoughts');
    checkNoErrors(p2);
  });
});
