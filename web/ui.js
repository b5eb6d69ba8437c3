// ui.js - DOM for messages: the thought panel, the answer, metrics and the
// voice stage bar. Text from the model or the user only ever reaches the DOM
// through textContent or renderMarkdown (which escapes everything first).

import { renderMarkdown, escapeHtml } from './markdown.js';

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

// Metrics of one answer from what the server reported (timings, usage) and
// what the page measured (t0 = request sent, tFirst = first delta of either
// channel, tEnd = stream ended, deltas = number of deltas received).
export function computeMetrics({ timings, usage, t0, tFirst, tEnd, deltas }) {
  const t = timings || {};
  const u = usage || {};
  const num = (...xs) => xs.find((x) => Number.isFinite(x));
  const clientTps = deltas > 1 && tEnd > tFirst ? ((deltas - 1) * 1000) / (tEnd - tFirst) : undefined;
  return {
    ttft_ms: num(t.ttft_ms, tFirst != null ? tFirst - t0 : undefined),
    tok_s: num(t.predicted_per_second, clientTps),
    prompt_n: num(u.prompt_tokens, t.prompt_n != null && t.cache_n != null ? t.prompt_n + t.cache_n : undefined, t.prompt_n),
    cache_n: num(u.prompt_tokens_details?.cached_tokens, t.cache_n),
    predicted_n: num(u.completion_tokens, t.predicted_n, deltas),
    total_ms: tEnd != null ? tEnd - t0 : undefined,
    server: !!timings,
  };
}

export function renderMetrics(box, m) {
  box.textContent = '';
  if (!m) return;
  const add = (key, label, value) => {
    const s = el('span', `m m-${key}`);
    s.dataset.k = key;
    s.append(`${label} `, el('b', null, value));
    box.append(s);
  };
  if (Number.isFinite(m.ttft_ms)) add('ttft', 'TTFT', fmtMs(m.ttft_ms));
  if (Number.isFinite(m.tok_s)) add('tps', '', `${m.tok_s.toFixed(1)} tok/s`);
  if (Number.isFinite(m.prompt_n)) {
    add('prompt', 'prompt', Number.isFinite(m.cache_n) ? `${m.prompt_n} (${m.cache_n} cached)` : `${m.prompt_n}`);
  }
  if (Number.isFinite(m.predicted_n)) add('gen', 'generated', `${m.predicted_n}`);
  if (Number.isFinite(m.total_ms)) add('total', 'total', fmtMs(m.total_ms));
  box.title = m.server ? 'timings reported by the server' : 'timings measured by the page';
}

// The voice pipeline's stages, in time-line order; v2v_ms is their sum.
export const VOICE_STAGES = [
  ['eos_delay_ms', 'end of speech'],
  ['stt_ms', 'speech-to-text'],
  ['llm_ttft_ms', 'first token'],
  ['first_sentence_ms', 'first sentence'],
  ['tts_first_chunk_ms', 'first audio'],
];

export function renderStageBar(box, metrics) {
  box.textContent = '';
  if (!metrics) return;
  const stages = VOICE_STAGES.map(([k, label], i) => ({ k, label, i, v: metrics[k] }))
    .filter((s) => Number.isFinite(s.v) && s.v >= 0);
  if (!stages.length) return;
  const sum = stages.reduce((a, s) => a + s.v, 0);
  const total = Number.isFinite(metrics.v2v_ms) ? metrics.v2v_ms : sum;
  const bar = el('div', 'bar');
  const legend = el('div', 'legend');
  legend.append(el('span', null, `voice-to-voice ${fmtMs(total)}:`));
  for (const s of stages) {
    const seg = el('span', `s${s.i}`);
    seg.style.flexGrow = String(Math.max(s.v, 0.001));
    seg.title = `${s.label} ${fmtMs(s.v)}`;
    bar.append(seg);
    const item = el('span');
    item.dataset.stage = s.k;
    item.append(el('i', `s${s.i}`), `${s.label} ${fmtMs(s.v)}`);
    legend.append(item);
  }
  box.append(bar, legend);
}

// One message's DOM; returns the element with handles for streaming updates.
export function messageView(msg, { streaming = false } = {}) {
  const art = el('article', `msg ${msg.role}`);
  const v = { art, msg };
  if (msg.role === 'user') {
    v.bubble = el('div', 'bubble', msg.content);
    if (msg.voice) v.bubble.prepend(el('span', 'tag', 'voice'), ' ');
    art.append(v.bubble);
    v.actions = el('div', 'actions');
    art.append(v.actions);
    return v;
  }
  v.thought = el('details', 'thought');
  v.thoughtSummary = el('summary', null, 'Thoughts');
  v.thoughtBody = el('div', 'thought-body');
  v.thought.append(v.thoughtSummary, v.thoughtBody);
  v.thoughtSummary.addEventListener('click', () => { v.userToggled = true; });
  v.typing = el('div', 'typing');
  v.typing.setAttribute('aria-label', 'Assistant is typing');
  v.typing.append(el('span'), el('span'), el('span'));
  v.content = el('div', 'content');
  v.error = el('div', 'note');
  v.metrics = el('div', 'metrics');
  v.stages = el('div', 'stagebar');
  v.actions = el('div', 'actions');
  art.append(v.thought, v.typing, v.content, v.error, v.metrics, v.stages, v.actions);
  updateMessage(v, { streaming });
  return v;
}

// Refresh a (possibly streaming) assistant message's DOM from its data.
export function updateMessage(v, { streaming = false } = {}) {
  const m = v.msg;
  const hasThought = !!m.reasoning;
  v.thought.hidden = !hasThought;
  if (hasThought) {
    if (v.thoughtBody.textContent !== m.reasoning) v.thoughtBody.textContent = m.reasoning;
    const thinking = streaming && !m.content;
    v.thought.classList.toggle('live', thinking);
    v.thoughtSummary.textContent = thinking ? 'Thinking' : 'Thoughts';
    // open while the model thinks, closed once it answers (unless the user
    // chose, or there is no answer: thoughts cut by the token limit)
    if (!v.userToggled) v.thought.open = thinking || !m.content;
    if (thinking) v.thoughtBody.scrollTop = v.thoughtBody.scrollHeight;
  }
  v.typing.hidden = !(streaming && !m.content && !m.reasoning);
  v.content.innerHTML = renderMarkdown(m.content || '');
  const note = m.stopped ? 'Stopped.' : m.interrupted ? 'Interrupted.' : m.finish === 'length' ? 'Cut at the token limit.' : '';
  v.error.textContent = m.error ? `Error: ${m.error}` : note;
  v.error.className = m.error ? 'note error' : 'note muted';
  renderMetrics(v.metrics, m.metrics);
  renderStageBar(v.stages, m.voiceMetrics);
}

export { escapeHtml };
