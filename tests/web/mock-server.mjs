// mock-server.mjs - a stand-in for `parley serve` for developing the page:
// serves web/ and answers the API with canned, slowly streamed replies.
//   node tests/web/mock-server.mjs [PORT]
// A user message containing "think" gets a reasoning stream first; "long"
// gets a slow 400-token answer (to press Stop on).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.md': 'text/plain' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function json(res, code, obj) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
}

async function chat(req, res, body) {
  const last = body.messages.filter((m) => m.role === 'user').pop()?.content ?? '';
  const think = /think/i.test(last) && !(body.chat_template_kwargs?.enable_thinking === false);
  const long = /long/i.test(last);
  const answer = long
    ? Array.from({ length: 400 }, (_, i) => `word${i} `)
    : ['Hello', '! ', 'Here is **bold** and ', '`code`', '.\n\n', '```js\n', 'let x = "<b>";\n', '```\n'];
  const reasoning = think ? ['The user ', 'wants ', 'a greeting', '. <script>x</script>'] : [];
  let closed = false;
  res.on('close', () => { closed = true; });
  const id = 'chatcmpl-mock';
  const chunk = (delta, finish = null, extra = {}) => ({
    id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: 'mock',
    choices: [{ index: 0, delta, finish_reason: finish }], ...extra,
  });
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const send = (o) => res.write(`data: ${JSON.stringify(o)}\n\n`);
  const t0 = Date.now();
  await sleep(300); // "prefill": the typing indicator shows meanwhile
  send(chunk({ role: 'assistant', content: '' }));
  let n = 0;
  for (const r of reasoning) { if (closed) return; send(chunk({ reasoning_content: r })); n++; await sleep(40); }
  for (const a of answer) { if (closed) { console.log('mock: client cancelled after', n, 'tokens'); return; } send(chunk({ content: a })); n++; await sleep(long ? 30 : 40); }
  const ms = Date.now() - t0;
  send(chunk({}, 'stop'));
  if (body.stream_options?.include_usage) {
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: 'mock', choices: [],
      usage: { prompt_tokens: 42, completion_tokens: n, total_tokens: 42 + n, prompt_tokens_details: { cached_tokens: 10 } },
      timings: { prompt_n: 32, cache_n: 10, prompt_ms: 300, predicted_n: n, predicted_ms: ms - 300,
        prompt_per_second: 106.7, predicted_per_second: (n * 1000) / (ms - 300), ttft_ms: 300 } })}\n\n`);
  }
  res.write('data: [DONE]\n\n');
  res.end();
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/health') return json(res, 200, { status: 'ok' });
  if (req.method === 'GET' && url.pathname === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'mock', object: 'model', owned_by: 'parley' }] });
  if (req.method === 'GET' && url.pathname === '/props') return json(res, 200, { model: 'mock', n_ctx: 512, slots: 2, template: '{{ messages }}' });
  if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
    let s = '';
    for await (const c of req) s += c;
    return chat(req, res, JSON.parse(s));
  }
  const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
  const file = path.resolve(WEB, rel);
  if (!file.startsWith(WEB + path.sep) || !fs.existsSync(file)) return json(res, 404, { error: { message: 'not found' } });
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`mock: http://127.0.0.1:${server.address().port}/`);
});
