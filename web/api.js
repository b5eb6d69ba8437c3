// api.js - the page's client for parley's OpenAI-compatible HTTP API.
//
// streamChat() POSTs /v1/chat/completions with stream: true and reads the
// Server-Sent Events by hand (EventSource cannot POST). Aborting the signal
// closes the connection, which the server takes as a cancel and frees the slot.

// Incremental SSE parser (the WHATWG event-stream rules the server needs:
// "data:" lines joined by \n, ":" comments ignored, a blank line dispatches,
// \r\n, \n or \r line ends, a chunk may end anywhere, even inside a line).
export class SseParser {
  constructor() {
    this.buf = '';
    this.data = [];
  }

  // Feed decoded text; returns the data strings of the events completed by it.
  push(text) {
    this.buf += text;
    const events = [];
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buf);
      // a trailing \r may be the first half of \r\n: wait for the next chunk
      if (!m || (m[0] === '\r' && m.index === this.buf.length - 1)) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        if (this.data.length) events.push(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line[5] === ' ' ? 6 : 5));
      } // comments (":") and other fields (event:, id:, retry:) carry nothing we use
    }
    return events;
  }
}

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// The Bearer key for servers started with --api-key (Settings); '' for none.
let apiKey = '';
export function setApiKey(k) {
  apiKey = String(k || '').trim();
}
function authHeaders(h = {}) {
  return apiKey ? { ...h, Authorization: `Bearer ${apiKey}` } : h;
}

async function errorFromResponse(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const j = await res.json();
    if (j && j.error) msg = typeof j.error === 'string' ? j.error : (j.error.message || msg);
  } catch { /* not JSON: keep the status line */ }
  if (res.status === 401) msg += ' (set the API key in Settings)';
  return new ApiError(msg, res.status);
}

// Apply one chat.completion.chunk to the handlers. Exported for tests that
// replay a recorded stream through the same code path as the live page.
export function applyChunk(chunk, h, state) {
  if (chunk.error) throw new ApiError(chunk.error.message || String(chunk.error), 0);
  const choice = chunk.choices && chunk.choices[0];
  if (choice) {
    const d = choice.delta || {};
    // reasoning_content is parley's and llama.cpp's name; "reasoning" is vLLM's
    const r = d.reasoning_content ?? d.reasoning;
    if (typeof r === 'string' && r) h.onReasoning?.(r);
    if (typeof d.content === 'string' && d.content) h.onContent?.(d.content);
    if (choice.finish_reason) state.finish_reason = choice.finish_reason;
  }
  if (chunk.usage) state.usage = chunk.usage;
  if (chunk.timings) state.timings = chunk.timings;
  if (chunk.model) state.model = chunk.model;
}

// Stream one chat completion. handlers: onReasoning(text), onContent(text).
// Resolves to { finish_reason, usage, timings, model } when the stream ends
// ([DONE] or EOF); rejects with ApiError, or an AbortError after abort.
export async function streamChat(body, handlers, signal, base = '') {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) throw await errorFromResponse(res);
  const state = { finish_reason: null, usage: null, timings: null, model: null };
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const sse = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const events = sse.push(done ? dec.decode() + '\n\n' : dec.decode(value, { stream: true }));
      for (const data of events) {
        if (data.trim() === '[DONE]') return state;
        let chunk;
        try { chunk = JSON.parse(data); } catch { throw new ApiError(`bad event from server: ${data.slice(0, 80)}`, 0); }
        applyChunk(chunk, handlers, state);
      }
      if (done) return state;
    }
  } finally {
    // closes the connection on an early exit (bad event); harmless after EOF
    reader.cancel().catch(() => {});
  }
}

export async function getJson(path, base = '') {
  const res = await fetch(`${base}${path}`, { headers: authHeaders() });
  if (!res.ok) throw await errorFromResponse(res);
  return res.json();
}
