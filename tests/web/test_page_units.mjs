// test_page_units.mjs - the page's own code in a real browser, without a
// parley server: files from web/ and recorded API answers are served by
// Playwright's request interception.
//  - markdown: hostile input never becomes markup; the subset renders;
//  - the SSE parser gives the same events whatever the chunking;
//  - the AudioWorklet turns a 48 kHz tone into the same tone at 16 kHz PCM16;
//  - a recorded chat stream with reasoning: the thought panel holds the
//    reasoning apart from the answer, metrics show the recorded timings, the
//    code block's copy button copies the code;
//  - voice mode against a scripted /v1/realtime (a fake WebSocket) with
//    Chromium's fake microphone: 16 kHz PCM16 goes out, transcript, thoughts,
//    answer, audio playback and the stage bar come back.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { run, step, check, checkEq, launchBrowser, newPage, checkNoErrors, screenshot, WEB_DIR } from './harness.mjs';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

// A stream as parley sends it: role delta, reasoning deltas, content deltas,
// finish, usage + timings, [DONE]. Content carries markup that must stay text.
const CONTENT = ['Hi <img src=x onerror="window.pwned=1">', ' **there**.\n\n', '```c\nint x = a < b;\n', '```\n'];
const REASONING = ['The user says hi.', ' <script>window.pwned=2</script>I should greet.'];
const TIMINGS = { prompt_n: 17, cache_n: 5, prompt_ms: 12.5, predicted_n: 9, predicted_ms: 40,
  prompt_per_second: 1360, predicted_per_second: 225, ttft_ms: 123 };
function recordedStream() {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'tiny' };
  const ev = (delta, finish = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] });
  const out = [ev({ role: 'assistant', content: '' })];
  for (const r of REASONING) out.push(ev({ reasoning_content: r }));
  for (const c of CONTENT) out.push(ev({ content: c }));
  out.push(ev({}, 'stop'));
  out.push({ ...base, choices: [], usage: { prompt_tokens: 22, completion_tokens: 9, total_tokens: 31,
    prompt_tokens_details: { cached_tokens: 5 } }, timings: TIMINGS });
  return out.map((o) => `data: ${JSON.stringify(o)}\n\n`).join('') + ': keep-alive\n\ndata: [DONE]\n\n';
}

// web/ from a local static server (127.0.0.1 is a secure context, which
// AudioWorklet and getUserMedia need; worklet scripts bypass interception).
// The API is answered by interception, so each test sees what the page sent.
function staticServer() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const rel = req.url === '/' ? 'index.html' : decodeURIComponent(new URL(req.url, 'http://x').pathname).slice(1);
      const file = path.resolve(WEB_DIR, rel);
      if (!file.startsWith(WEB_DIR + path.sep) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'text/plain' });
      res.end(fs.readFileSync(file));
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function serveApi(page, origin, chatBody) {
  await page.route((url) => url.origin === origin && /^\/(v1\/|props|health)/.test(url.pathname), async (route) => {
    const url = new URL(route.request().url());
    const json = (o) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(o) });
    if (url.pathname === '/v1/models') return json({ object: 'list', data: [{ id: 'tiny', object: 'model' }] });
    if (url.pathname === '/props') return json({ model: 'tiny', n_ctx: 512, total_slots: 2, slots: [{}, {}], chat_template: 'chatml' });
    if (url.pathname === '/health') return json({ status: 'ok' });
    if (url.pathname === '/v1/chat/completions') {
      page.lastRequest = JSON.parse(route.request().postData());
      return route.fulfill({ status: 200, contentType: 'text/event-stream', body: chatBody() });
    }
    return route.fulfill({ status: 404, body: 'not found' });
  });
}

run('page units', async (t) => {
  const browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required']);
  t.defer(() => browser.close());
  const srv = await staticServer();
  t.defer(() => srv.close());
  const ORIGIN = `http://127.0.0.1:${srv.address().port}`;
  const page = await newPage(browser, { permissions: ['clipboard-read', 'clipboard-write', 'microphone'] });
  await serveApi(page, ORIGIN, recordedStream);
  await page.goto(`${ORIGIN}/`);

  await step('markdown never lets markup through', async () => {
    const r = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/markdown.js');
      const hostile = [
        '<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '[x](javascript:alert(1))',
        '[x](https://a.b/"onmouseover="alert(1))', '`<b>`', '```\n</code></pre><img src=x onerror=alert(1)>\n```',
        '**<svg onload=alert(1)>**', '> <iframe src="javascript:alert(1)">', '- <a href="javascript:x">y</a>',
        '# <style>*{}</style>', '\u0000 0 \u0000 [a](http://x/\u0001)',
      ];
      const allowed = new Set(['P', 'BR', 'STRONG', 'EM', 'DEL', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'BLOCKQUOTE',
        'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'HR', 'DIV', 'SPAN', 'BUTTON']);
      const bad = [];
      for (const h of hostile) {
        const d = document.createElement('div');
        d.innerHTML = renderMarkdown(h);
        for (const e of d.querySelectorAll('*')) {
          if (!allowed.has(e.tagName)) bad.push(`${h} -> <${e.tagName}>`);
          for (const a of e.attributes) {
            if (/^on/i.test(a.name) || /^\s*javascript:/i.test(a.value)) bad.push(`${h} -> ${a.name}=${a.value}`);
          }
        }
      }
      const d = document.createElement('div');
      d.innerHTML = renderMarkdown('# T\n\n**b** *i* `c` [l](https://example.org/?a=1&b=2)\n\n- x\n- y\n\n1. z\n\n> q\n\n```py\nif a<b: pass\n```');
      return {
        bad,
        h1: d.querySelector('h1')?.textContent, strong: d.querySelector('strong')?.textContent,
        em: d.querySelector('em')?.textContent, code: d.querySelector('p code')?.textContent,
        href: d.querySelector('a')?.getAttribute('href'), lis: d.querySelectorAll('ul li').length,
        ol: d.querySelectorAll('ol li').length, quote: d.querySelector('blockquote')?.textContent,
        pre: d.querySelector('pre code')?.textContent, lang: d.querySelector('.code-lang')?.textContent,
        copy: d.querySelectorAll('.code-block button.copy-code').length,
      };
    });
    checkEq(r.bad.join('\n'), '', 'hostile markdown produced markup');
    checkEq(r.h1, 'T', 'heading');
    checkEq(r.strong, 'b', 'bold');
    checkEq(r.em, 'i', 'italic');
    checkEq(r.code, 'c', 'inline code');
    checkEq(r.href, 'https://example.org/?a=1&b=2', 'link href');
    checkEq(r.lis, 2, 'list items');
    checkEq(r.ol, 1, 'ordered list items');
    checkEq(r.quote, 'q', 'blockquote');
    checkEq(r.pre, 'if a<b: pass', 'code block text');
    checkEq(r.lang, 'py', 'code block language');
    checkEq(r.copy, 1, 'copy button');
  });

  await step('SSE parser: same events for every chunking', async () => {
    const r = await page.evaluate(async (text) => {
      const { SseParser } = await import('/api.js');
      const whole = new SseParser().push(text);
      const crlf = new SseParser().push(text.replace(/\n/g, '\r\n'));
      const mismatches = [];
      for (const size of [1, 2, 3, 7, 64]) {
        const p = new SseParser();
        const got = [];
        for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
        if (JSON.stringify(got) !== JSON.stringify(whole)) mismatches.push(size);
      }
      const multi = new SseParser().push('data: a\ndata:b\n: c\n\nevent: x\ndata: [DONE]\n\n');
      return { n: whole.length, last: whole[whole.length - 1], crlf: JSON.stringify(crlf) === JSON.stringify(whole), mismatches, multi };
    }, recordedStream());
    checkEq(r.n, 2 + REASONING.length + CONTENT.length + 2, 'event count');
    checkEq(r.last, '[DONE]', 'last event');
    check(r.crlf, 'CRLF line ends give the same events');
    checkEq(r.mismatches.join(','), '', 'chunk sizes whose events differ');
    checkEq(JSON.stringify(r.multi), JSON.stringify(['a\nb', '[DONE]']), 'multi-line data and comments');
  });

  await step('AudioWorklet: 48 kHz tone -> 16 kHz PCM16 tone', async () => {
    const r = await page.evaluate(async () => {
      const res = {};
      for (const [rate, f] of [[48000, 1000], [44100, 440], [48000, 12000]]) {
        const ctx = new OfflineAudioContext(1, rate, rate); // one second
        await ctx.audioWorklet.addModule('/pcm-worklet.js');
        const osc = new OscillatorNode(ctx, { frequency: f });
        const gain = new GainNode(ctx, { gain: 0.5 });
        const node = new AudioWorkletNode(ctx, 'pcm-capture');
        const chunks = [];
        node.port.onmessage = (e) => chunks.push(new Int16Array(e.data.pcm));
        osc.connect(gain).connect(node).connect(ctx.destination);
        osc.start();
        await ctx.startRendering();
        await new Promise((r) => setTimeout(r, 200)); // the last port messages
        const pcm = new Int16Array(chunks.reduce((a, c) => a + c.length, 0));
        let o = 0;
        for (const c of chunks) { pcm.set(c, o); o += c.length; }
        // compare with the ideal tone sampled at 16 kHz, after the filter's settling
        let err = 0, ss = 0;
        for (let k = 100; k < pcm.length; k++) {
          const want = 0.5 * Math.sin((2 * Math.PI * f * k) / 16000) * 32767;
          err = Math.max(err, Math.abs(pcm[k] - want));
          ss += pcm[k] * pcm[k];
        }
        res[`${rate}/${f}`] = { n: pcm.length, chunk: chunks[0]?.length, maxErr: err, rms: Math.sqrt(ss / (pcm.length - 100)) };
      }
      return res;
    });
    console.log('     ', JSON.stringify(r));
    for (const k of ['48000/1000', '44100/440']) {
      // one second in: 16000 samples less the filter delay and the partly
      // filled last 20 ms chunk
      check(r[k].n >= 15600 && r[k].n <= 16000, `${k}: ${r[k].n} samples for one second`);
      checkEq(r[k].chunk, 320, `${k}: 20 ms chunks`);
      check(r[k].maxErr < 0.01 * 32767, `${k}: max error ${r[k].maxErr} vs the ideal 16 kHz tone`);
    }
    // 12 kHz is above 8 kHz Nyquist: the anti-alias filter removes it (> 40 dB)
    check(r['48000/12000'].rms < 0.01 * 0.5 * 32767 / Math.SQRT2, `12 kHz tone leaked: rms ${r['48000/12000'].rms}`);
  });

  await step('recorded stream: thoughts apart from the answer, metrics, copy', async () => {
    await page.fill('#input', 'hi');
    await page.press('#input', 'Enter');
    const a = page.locator('.msg.assistant').last();
    await a.locator('.metrics .m-ttft').waitFor();
    checkEq(await a.locator('.thought-body').textContent(), REASONING.join(''), 'thought panel text');
    checkEq(await a.locator('.thought').evaluate((d) => d.open), false, 'thought panel collapses once the answer is complete');
    const content = await a.locator('.content').textContent();
    check(content.startsWith('Hi <img src=x onerror="window.pwned=1"> there.'), `answer text: ${content}`);
    check(!content.includes('The user says hi'), 'reasoning leaked into the answer');
    checkEq(await a.locator('.content img, .content script, .thought script').count(), 0, 'injected elements');
    checkEq(await page.evaluate(() => window.pwned), undefined, 'injected script ran');
    checkEq(await a.locator('.content strong').textContent(), 'there', 'markdown bold');
    checkEq(await a.locator('.m-ttft b').textContent(), '123 ms', 'TTFT from timings');
    checkEq(await a.locator('.m-tps b').textContent(), '225.0 tok/s', 'tok/s from timings');
    checkEq(await a.locator('.m-prompt b').textContent(), '22 (5 cached)', 'prompt tokens from usage');
    checkEq(await a.locator('.m-gen b').textContent(), '9', 'generated tokens from usage');
    check(await a.locator('.m-total').count() === 1, 'total time shown');
    checkEq(page.lastRequest.stream, true, 'request asks for a stream');
    checkEq(page.lastRequest.stream_options?.include_usage, true, 'request asks for usage');
    await a.locator('.thought summary').click();
    checkEq(await a.locator('.thought').evaluate((d) => d.open), true, 'thought panel opens on click');
    await a.locator('button.copy-code').click();
    await a.locator('button.copy-code', { hasText: 'Copied' }).waitFor();
    checkEq(await page.evaluate(() => navigator.clipboard.readText()), 'int x = a < b;', 'copied code');
    await screenshot(page, 'units-recorded-stream');
  });

  await step('reasoning off sends enable_thinking false; speed mode caps tokens', async () => {
    await page.click('#open-settings');
    await page.uncheck('#s-reason');
    await page.fill('#s-max', '500');
    await page.click('#settings button[value=close]');
    await page.click('#new-chat');
    await page.fill('#input', 'again');
    await page.press('#input', 'Enter');
    await page.locator('.msg.assistant .metrics .m-ttft').waitFor();
    checkEq(page.lastRequest.chat_template_kwargs?.enable_thinking, false, 'enable_thinking');
    checkEq(page.lastRequest.max_tokens, 500, 'max_tokens');
    await page.click('#open-settings');
    await page.check('#s-reason');
    await page.check('#s-speed');
    await page.click('#settings button[value=close]');
    await page.locator('.msg.assistant button.regenerate').click();
    await page.locator('.msg.assistant .metrics .m-ttft').waitFor();
    checkEq(page.lastRequest.max_tokens, 256, 'speed mode max_tokens');
    checkEq(page.lastRequest.top_k, 20, 'speed mode top_k');
    checkEq(page.lastRequest.chat_template_kwargs?.enable_thinking, false, 'speed mode turns reasoning off');
    await page.evaluate(() => localStorage.removeItem('parley.settings.v1'));
  });
  await step('server errors are shown; an API key is sent once set', async () => {
    // later routes win: this one answers before the recorded stream
    const seen = [];
    await page.route(`${ORIGIN}/v1/chat/completions`, (route) => {
      seen.push(route.request().headers().authorization ?? null);
      return route.fulfill({ status: 400, contentType: 'application/json',
        body: JSON.stringify({ error: { message: "'n' > 1 is not supported yet", type: 'invalid_request_error', param: 'n', code: null } }) });
    });
    await page.click('#new-chat');
    await page.fill('#input', 'fail please');
    await page.press('#input', 'Enter');
    const a = page.locator('.msg.assistant').last();
    await a.locator('.note.error').waitFor();
    checkEq(await a.locator('.note').textContent(), "Error: 'n' > 1 is not supported yet", 'error text');
    check(await a.locator('button.regenerate').count() === 1, 'regenerate offered after an error');
    await page.click('#open-settings');
    await page.fill('#s-key', 'sekret');
    await page.click('#settings button[value=close]');
    await a.locator('button.regenerate').click();
    await page.locator('.msg.assistant .note.error').waitFor();
    checkEq(JSON.stringify(seen), JSON.stringify([null, 'Bearer sekret']), 'Authorization header: none before the key, Bearer after');
    await page.unroute(`${ORIGIN}/v1/chat/completions`);
    await page.evaluate(() => localStorage.removeItem('parley.settings.v1'));
  });
  checkNoErrors(page);

  await step('voice mode against a scripted realtime socket', async () => {
    const vp = await newPage(browser, { permissions: ['microphone'] });
    await serveApi(vp, ORIGIN, recordedStream);
    await vp.addInitScript(() => {
      // A fake /v1/realtime: records what the page sends and, after 0.3 s of
      // audio, plays back one scripted turn.
      const tone = (n, rate) => {
        const b = new Uint8Array(2 * n);
        for (let i = 0; i < n; i++) {
          const v = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)) & 0xffff;
          b[2 * i] = v & 0xff; b[2 * i + 1] = v >> 8;
        }
        let s = '';
        for (const x of b) s += String.fromCharCode(x);
        return btoa(s);
      };
      window.sent = [];
      window.FakeWS = class {
        constructor(url) {
          this.url = url; this.readyState = 0;
          setTimeout(() => { this.readyState = 1; this.onopen?.({}); this.emit({ type: 'session.created', session: { output_audio_sample_rate: 24000 } }); }, 10);
        }
        emit(o) { this.onmessage?.({ data: JSON.stringify(o) }); }
        send(s) {
          const o = JSON.parse(s);
          window.sent.push(o);
          const audio = window.sent.filter((x) => x.type === 'input_audio_buffer.append').length;
          if (audio === 60) { // a second turn with a long answer...
            [{ type: 'input_audio_buffer.speech_started' }, { type: 'input_audio_buffer.speech_stopped' },
              { type: 'conversation.item.input_audio_transcription.completed', transcript: 'and then' },
              { type: 'response.created' }, { type: 'response.text.delta', delta: 'Well, ' },
              { type: 'response.audio.delta', delta: tone(72000, 24000) }].forEach((e, i) => setTimeout(() => this.emit(e), 10 * i));
          }
          if (audio === 80) this.emit({ type: 'input_audio_buffer.speech_started' }); // ...spoken over
          if (audio !== 15) return; // 15 x 20 ms
          const seq = [
            { type: 'input_audio_buffer.speech_started', audio_start_ms: 20 },
            { type: 'input_audio_buffer.speech_stopped', audio_end_ms: 280 },
            { type: 'conversation.item.input_audio_transcription.completed', transcript: 'what time is it' },
            { type: 'response.created' },
            { type: 'response.reasoning.delta', delta: 'They ask the time.' },
            { type: 'response.text.delta', delta: 'It is ' },
            { type: 'response.audio.delta', delta: tone(4800, 24000) },
            { type: 'response.text.delta', delta: 'noon.' },
            { type: 'response.audio.delta', delta: tone(4800, 24000) },
            { type: 'response.done', response: { status: 'completed', metrics: {
              eos_delay_ms: 200, stt_ms: 80, llm_ttft_ms: 40, first_sentence_ms: 60, tts_first_chunk_ms: 20,
              v2v_ms: 400, gen_tok_s: 50, prompt_tokens: 30, cached_tokens: 10, generated_tokens: 5, llm_ms: 140 } } },
          ];
          seq.forEach((e, i) => setTimeout(() => this.emit(e), 20 * i));
        }
        close() { this.readyState = 3; }
      };
      window.FakeWS.OPEN = 1;
      window.WebSocket = window.FakeWS;
    });
    await vp.goto(`${ORIGIN}/`);
    await vp.click('#mic');
    const a = vp.locator('.msg.assistant').first();
    await a.locator('.stagebar .bar').waitFor({ timeout: 15000 });
    const sent = await vp.evaluate(() => window.sent.filter((x) => x.type === 'input_audio_buffer.append').slice(0, 5)
      .map((x) => atob(x.audio).length));
    checkEq(sent.join(','), '640,640,640,640,640', 'input chunks: 320 PCM16 samples (20 ms at 16 kHz)');
    checkEq(await vp.locator('.msg.user .bubble').first().textContent(), 'voice what time is it', 'transcript (with its voice tag)');
    checkEq(await a.locator('.content').textContent(), 'It is noon.', 'spoken answer text');
    checkEq(await a.locator('.thought-body').textContent(), 'They ask the time.', 'reasoning in the thought panel');
    checkEq(await a.locator('.stagebar .bar span').count(), 5, 'stage segments');
    checkEq(await a.locator('.stagebar [data-stage=stt_ms]').textContent(), 'speech-to-text 80 ms', 'stt stage');
    check((await a.locator('.stagebar .legend').textContent()).includes('voice-to-voice 400 ms'), 'v2v total');
    checkEq(await a.locator('.m-ttft b').textContent(), '40 ms', 'voice TTFT');
    await screenshot(vp, 'units-voice-scripted');

    // barge-in: speech over a playing answer stops playback at once
    const b = vp.locator('.msg.assistant').nth(1);
    await b.locator('.content', { hasText: 'Well,' }).waitFor({ timeout: 15000 });
    // "Interrupted." is set only when speech_started found the player playing
    await b.locator('.note', { hasText: 'Interrupted.' }).waitFor({ timeout: 15000 });
    const after = await vp.evaluate(() => ({ playing: window.parley.voice.player.playing,
      sources: window.parley.voice.player.sources.size, state: document.querySelector('#voice-state').dataset.state }));
    checkEq(JSON.stringify(after), JSON.stringify({ playing: false, sources: 0, state: 'hearing' }), 'after barge-in');
    await vp.click('#mic');
    checkEq(await vp.locator('#voice-state').getAttribute('data-state'), 'off', 'voice off');
    checkNoErrors(vp);
  });
});
