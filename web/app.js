// app.js - parley's page: wiring of the chat, conversations, settings and
// voice mode. Plain ES modules, no build step, no network beyond the server
// that served the page.

import { streamChat, getJson, setApiKey } from './api.js';
import { ConversationStore, loadSettings, saveSettings, DEFAULT_SETTINGS } from './store.js';
import { el, messageView, updateMessage, computeMetrics } from './ui.js';
import { VoiceClient } from './voice.js';

const $ = (id) => document.getElementById(id);
const store = new ConversationStore();
let settings = loadSettings();
setApiKey(settings.apiKey);
let serverModel = null; // id from /v1/models, sent as "model"
let busy = null;        // the generation in flight: { ac, view, conv }
let voice = null;       // VoiceClient while voice mode is on
let turn = null;        // the voice turn being shown: { user, asst, view, t0, tFirst, deltas }
let lastVoiceAnswer = null;
const views = [];       // views of the shown conversation's messages, in order

// ---------- rendering ----------

function current() {
  return store.current || store.create();
}

function renderSidebar() {
  const ul = $('conv-list');
  ul.textContent = '';
  for (const c of store.sorted()) {
    const li = el('li', c.id === store.currentId ? 'current' : '');
    li.dataset.id = c.id;
    const title = el('span', 'conv-title', c.title || 'New chat');
    title.title = c.title || '';
    const ren = el('button', 'link rename', '✎');
    ren.type = 'button';
    ren.title = 'Rename';
    ren.setAttribute('aria-label', 'Rename');
    const del = el('button', 'link delete', '×');
    del.type = 'button';
    del.title = 'Delete';
    del.setAttribute('aria-label', 'Delete');
    li.append(title, ren, del);
    li.addEventListener('click', (e) => {
      if (e.target === ren) return startRename(li, c);
      if (e.target === del) return deleteConversation(c);
      if (li.querySelector('input')) return;
      if (c.id !== store.currentId) {
        stopGeneration();
        store.select(c.id);
        renderAll();
      }
      closeDrawer();
    });
    ul.append(li);
  }
}

function startRename(li, c) {
  const input = el('input');
  input.value = c.title;
  input.setAttribute('aria-label', 'Conversation name');
  li.querySelector('.conv-title').replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    if (keep) store.rename(c.id, input.value);
    renderSidebar();
    if (c.id === store.currentId) $('conv-title').textContent = c.title;
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

function deleteConversation(c) {
  if (!confirm(`Delete "${c.title}"?`)) return;
  if (c.id === store.currentId) stopGeneration();
  store.remove(c.id);
  renderAll();
}

function renderMessages() {
  const box = $('messages');
  box.textContent = '';
  views.length = 0;
  const c = store.current;
  $('conv-title').textContent = c ? c.title : 'parley';
  if (!c || !c.messages.length) {
    box.append(el('p', 'empty', 'Ask anything, or press the microphone to talk.'));
    return;
  }
  for (const m of c.messages) {
    const v = messageView(m);
    views.push(v);
    box.append(v.art);
  }
  refreshActions();
  scrollDown(true);
}

function renderAll() {
  renderSidebar();
  renderMessages();
}

function appendView(msg, streaming) {
  const box = $('messages');
  box.querySelector('.empty')?.remove();
  const v = messageView(msg, { streaming });
  views.push(v);
  box.append(v.art);
  scrollDown(true);
  return v;
}

// Keep the newest text in view unless the user scrolled up to read.
function scrollDown(force) {
  const box = $('messages');
  if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
}

function button(label, cls, title, onClick) {
  const b = el('button', `link ${cls}`, label);
  b.type = 'button';
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

// Per-message buttons: copy on answers; regenerate on the last answer and
// edit on the last user message while nothing is generating.
function refreshActions() {
  const c = store.current;
  if (!c) return;
  const last = c.messages.length - 1;
  const lastUser = c.messages.map((m) => m.role).lastIndexOf('user');
  views.forEach((v, i) => {
    v.actions.textContent = '';
    if (v.msg.role === 'assistant' && v.msg.content) {
      v.actions.append(button('Copy', 'copy', 'Copy the answer', () => copyText(v.msg.content)));
    }
    if (busy || turn) return;
    if (i === last && v.msg.role === 'assistant') v.actions.append(button('Regenerate', 'regenerate', 'Answer again', regenerate));
    if (i === lastUser) v.actions.append(button('Edit', 'edit', 'Edit and resend', () => editLast(v, i)));
  });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // clipboard API needs a secure context: fall back for plain-http LAN use
    const ta = el('textarea');
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

// ---------- chat ----------

function requestBody(messages) {
  const msgs = [];
  if (settings.systemPrompt.trim()) msgs.push({ role: 'system', content: settings.systemPrompt });
  for (const m of messages) {
    // earlier thoughts are not sent back (templates drop them anyway)
    if (m.role === 'user' || (m.role === 'assistant' && m.content && !m.error)) msgs.push({ role: m.role, content: m.content });
  }
  const body = { messages: msgs, temperature: settings.temperature, top_p: settings.top_p, max_tokens: settings.max_tokens };
  if (serverModel) body.model = serverModel;
  let reasoning = settings.reasoning;
  if (settings.speedMode) {
    // the engine's speed preset (sample.c pl_sampler_speed_params)
    Object.assign(body, { top_k: 20, min_p: 0.05, max_tokens: Math.min(settings.max_tokens, 256) });
    reasoning = false;
  }
  if (!reasoning) body.chat_template_kwargs = { enable_thinking: false };
  return body;
}

function setBusy(on) {
  $('send').hidden = on;
  $('stop').hidden = !on;
  refreshActions();
}

async function generate(c) {
  const msg = { role: 'assistant', content: '', reasoning: '' };
  c.messages.push(msg);
  const v = appendView(msg, true);
  const ac = new AbortController();
  busy = { ac, view: v, conv: c };
  v.art.setAttribute('aria-busy', 'true'); // screen readers: read it once, when done
  setBusy(true);
  const t0 = performance.now();
  let tFirst = null;
  let deltas = 0;
  let queued = false;
  const schedule = () => {
    if (tFirst == null) tFirst = performance.now();
    deltas++;
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      updateMessage(v, { streaming: busy?.view === v });
      scrollDown(false);
    });
  };
  try {
    const r = await streamChat(requestBody(c.messages.slice(0, -1)), {
      onReasoning: (d) => { msg.reasoning += d; schedule(); },
      onContent: (d) => { msg.content += d; schedule(); },
    }, ac.signal);
    msg.metrics = computeMetrics({ timings: r.timings, usage: r.usage, t0, tFirst, tEnd: performance.now(), deltas });
    if (r.finish_reason) msg.finish = r.finish_reason;
  } catch (e) {
    if (e.name === 'AbortError' || msg.stopped) {
      msg.stopped = true;
      msg.metrics = computeMetrics({ t0, tFirst, tEnd: performance.now(), deltas });
    } else {
      msg.error = e.message || String(e);
    }
  } finally {
    if (!msg.reasoning) delete msg.reasoning;
    v.art.removeAttribute('aria-busy');
    busy = null;
    updateMessage(v);
    setBusy(false);
    store.touch(c);
    renderSidebar();
    // the user may have switched conversations meanwhile (that stops this one)
    if (c === store.current) $('conv-title').textContent = c.title;
  }
}

function send(text) {
  if (busy || !text.trim()) return;
  const c = current();
  c.messages.push({ role: 'user', content: text });
  store.touch(c);
  if (c.messages.length === 1) renderAll();
  else appendView(c.messages[c.messages.length - 1]);
  renderSidebar();
  generate(c);
}

function stopGeneration() {
  busy?.ac.abort();
  if (turn) voice?.cancelResponse();
}

function regenerate() {
  const c = store.current;
  if (busy || !c || c.messages[c.messages.length - 1]?.role !== 'assistant') return;
  c.messages.pop();
  views.pop().art.remove();
  generate(c);
}

function editLast(v, i) {
  const c = store.current;
  const ta = el('textarea');
  ta.value = v.msg.content;
  ta.setAttribute('aria-label', 'Edit message');
  const save = button('Save & send', 'save', 'Replace the message and answer again', () => {
    if (busy || !ta.value.trim()) return;
    c.messages.length = i;
    c.messages.push({ role: 'user', content: ta.value });
    store.touch(c);
    renderMessages();
    generate(c);
  });
  const cancel = button('Cancel', 'cancel', 'Keep the message', () => renderMessages());
  v.bubble.replaceWith(ta);
  v.actions.textContent = '';
  v.actions.append(save, cancel);
  ta.focus();
}

// ---------- voice ----------

function voiceState(s) {
  const names = { connecting: 'Connecting…', listening: 'Listening', hearing: 'Hearing you', thinking: 'Thinking…', speaking: 'Speaking', off: 'Off' };
  $('voice-state').textContent = names[s] || s;
  $('voice-state').dataset.state = s;
}

function voiceTurnStart(text) {
  const c = current();
  const user = { role: 'user', content: text, voice: true };
  c.messages.push(user);
  if (c.messages.length === 1) renderAll();
  else appendView(user);
  const asst = { role: 'assistant', content: '', reasoning: '', voice: true };
  c.messages.push(asst);
  store.touch(c);
  renderSidebar();
  $('conv-title').textContent = c.title;
  turn = { c, user, asst, view: appendView(asst, true), t0: performance.now(), tFirst: null, deltas: 0, queued: false };
  setBusy(true);
}

function voiceDelta(field, d) {
  if (!turn) voiceTurnStart('');
  const t = turn;
  t.asst[field] += d;
  t.deltas++;
  if (t.tFirst == null) t.tFirst = performance.now();
  if (t.queued) return;
  t.queued = true;
  requestAnimationFrame(() => {
    t.queued = false;
    updateMessage(t.view, { streaming: turn === t });
    scrollDown(false);
  });
}

function applyVoiceMetrics(a, m) {
  a.voiceMetrics = m;
  a.metrics = {
    ttft_ms: m.llm_ttft_ms, tok_s: m.gen_tok_s, prompt_n: m.prompt_tokens, cache_n: m.cached_tokens,
    predicted_n: m.generated_tokens, total_ms: m.llm_ms, server: true,
  };
  if (m.interrupted) a.interrupted = true;
}

// Ends the shown turn. A barge-in ends it at speech_started; the interrupted
// response's response.done (with its metrics) may come after that, and then
// goes to the answer it belongs to.
function voiceTurnEnd(metrics) {
  const t = turn;
  if (!t) {
    const a = lastVoiceAnswer;
    if (metrics && a && !a.voiceMetrics) {
      applyVoiceMetrics(a, metrics);
      store.persist();
      const v = views.find((x) => x.msg === a);
      if (v) updateMessage(v);
    }
    return;
  }
  turn = null;
  const a = t.asst;
  lastVoiceAnswer = a;
  if (!a.reasoning) delete a.reasoning;
  if (metrics) applyVoiceMetrics(a, metrics);
  else a.metrics = computeMetrics({ t0: t.t0, tFirst: t.tFirst, tEnd: performance.now(), deltas: t.deltas });
  updateMessage(t.view);
  store.touch(t.c);
  setBusy(false);
}

async function toggleVoice() {
  const mic = $('mic');
  if (voice) {
    voice.stop();
    return;
  }
  if (busy) return;
  $('voice-bar').hidden = false;
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia || !window.AudioWorkletNode) {
    // browsers give the microphone only to https pages and to localhost
    voiceState('off');
    $('voice-partial').textContent = 'Voice needs the page over https or on localhost (the browser withholds the microphone otherwise).';
    return;
  }
  mic.setAttribute('aria-pressed', 'true');
  voice = new VoiceClient({
    onState: (s) => {
      voiceState(s);
      if (s === 'off') {
        voiceTurnEnd(null);
        voice = null;
        mic.setAttribute('aria-pressed', 'false');
        $('voice-level').style.width = '0';
      }
    },
    onLevel: (l) => { $('voice-level').style.width = `${Math.min(100, Math.round(l * 400))}%`; },
    onSpeechStarted: ({ bargeIn }) => {
      if (turn && bargeIn) turn.asst.interrupted = true;
      if (turn) voiceTurnEnd(null);
      $('voice-partial').textContent = '';
    },
    onTranscript: (text, final) => {
      if (!final) { $('voice-partial').textContent += text; return; }
      $('voice-partial').textContent = '';
      if (turn) voiceTurnEnd(null);
      voiceTurnStart(text);
    },
    onReasoning: (d) => voiceDelta('reasoning', d),
    onText: (d) => voiceDelta('content', d),
    onTruncated: (text) => {
      const c = store.current;
      const last = c?.messages.filter((m) => m.role === 'assistant' && m.voice).pop();
      if (last && text != null) {
        last.content = text;
        last.interrupted = true;
        store.persist();
        renderMessages();
      }
    },
    onDone: (metrics) => voiceTurnEnd(metrics),
    onError: (msg) => {
      if (turn) turn.asst.error = msg;
      $('voice-partial').textContent = msg;
    },
  });
  try {
    await voice.start();
  } catch (e) {
    $('voice-partial').textContent = `Voice unavailable: ${e.message || e}`;
    voice?.stop();
  }
}

// ---------- settings and server info ----------

function fillSettings() {
  $('s-system').value = settings.systemPrompt;
  $('s-temp').value = settings.temperature;
  $('o-temp').textContent = settings.temperature.toFixed(2);
  $('s-topp').value = settings.top_p;
  $('o-topp').textContent = settings.top_p.toFixed(2);
  $('s-max').value = settings.max_tokens;
  $('s-speed').checked = settings.speedMode;
  $('s-reason').checked = settings.reasoning;
  $('s-reason').disabled = settings.speedMode;
  $('s-key').value = settings.apiKey;
}

let keyInUse = settings.apiKey;

function readSettings() {
  const max = Math.round(Number($('s-max').value));
  settings = {
    systemPrompt: $('s-system').value,
    temperature: Number($('s-temp').value),
    top_p: Number($('s-topp').value),
    max_tokens: Number.isFinite(max) && max >= 1 ? max : DEFAULT_SETTINGS.max_tokens,
    speedMode: $('s-speed').checked,
    reasoning: $('s-reason').checked,
    apiKey: $('s-key').value.trim(),
  };
  saveSettings(settings);
  if (settings.apiKey !== keyInUse) {
    keyInUse = settings.apiKey;
    setApiKey(keyInUse);
    loadServerInfo();
  }
  fillSettings();
}

function showProps(p) {
  const dl = $('props');
  dl.textContent = '';
  const add = (k, v) => {
    if (v == null || v === '') return;
    dl.append(el('dt', null, k));
    const dd = el('dd');
    if (k === 'template') dd.append(el('pre', null, String(v)));
    else dd.textContent = String(v);
    dl.append(dd);
  };
  const gen = p.default_generation_settings || {};
  const slots = Array.isArray(p.slots) ? p.slots.length : (p.slots ?? p.total_slots);
  add('model', p.model ?? p.model_alias ?? p.model_path ?? serverModel);
  add('context', p.n_ctx ?? gen.n_ctx);
  add('slots', slots);
  add('version', p.version ?? p.build_info);
  add('template', p.template ?? p.chat_template);
  const name = p.model ?? p.model_alias ?? serverModel ?? '';
  $('model-name').textContent = String(name).split('/').pop();
  $('server-info').textContent = [name && `model ${String(name).split('/').pop()}`, (p.n_ctx ?? gen.n_ctx) && `ctx ${p.n_ctx ?? gen.n_ctx}`, slots && `${slots} slots`].filter(Boolean).join(' · ');
}

// /props answers once the model is loaded (the server says 503 while loading).
let infoTimer = 0;
async function loadServerInfo() {
  clearTimeout(infoTimer);
  try {
    const models = await getJson('/v1/models');
    serverModel = models?.data?.[0]?.id ?? null;
    showProps(await getJson('/props'));
    $('banner').hidden = true;
  } catch (e) {
    $('banner').hidden = false;
    if (e.status === 401) {
      $('banner').textContent = 'This server needs an API key: set it in Settings (gear).';
      return; // retried when the key changes
    }
    $('banner').textContent = e.status === 503 ? 'The server is loading the model…' : `Server not reachable (${e.message}). Retrying…`;
    infoTimer = setTimeout(loadServerInfo, 1500);
  }
}

// ---------- events ----------

function openDrawer() { $('sidebar').classList.add('open'); $('scrim').hidden = false; }
function closeDrawer() { $('sidebar').classList.remove('open'); $('scrim').hidden = true; }

function autoGrow() {
  const ta = $('input');
  ta.style.height = 'auto';
  ta.style.height = `${ta.scrollHeight + 2}px`;
}

function wire() {
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const ta = $('input');
    if (busy || turn || !ta.value.trim()) return;
    const text = ta.value;
    ta.value = '';
    autoGrow();
    send(text);
  });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('input').addEventListener('input', autoGrow);
  $('stop').addEventListener('click', stopGeneration);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && (busy || turn) && !$('settings').open) stopGeneration();
  });
  $('mic').addEventListener('click', toggleVoice);
  $('new-chat').addEventListener('click', () => {
    stopGeneration();
    store.create();
    renderAll();
    closeDrawer();
    $('input').focus();
  });
  $('toggle-sidebar').addEventListener('click', openDrawer);
  $('scrim').addEventListener('click', closeDrawer);
  $('open-settings').addEventListener('click', () => { fillSettings(); $('settings').showModal(); });
  $('settings-form').addEventListener('input', readSettings);
  $('s-reset').addEventListener('click', () => {
    settings = { ...DEFAULT_SETTINGS, apiKey: settings.apiKey };
    saveSettings(settings);
    fillSettings();
  });
  // code-block copy buttons, delegated: they are re-created on every render
  $('messages').addEventListener('click', async (e) => {
    const b = e.target.closest('.copy-code');
    if (!b) return;
    const code = b.closest('.code-block')?.querySelector('code');
    if (code && await copyText(code.textContent)) {
      b.textContent = 'Copied';
      setTimeout(() => { b.textContent = 'Copy'; }, 1200);
    }
  });
  // a reload mid-answer keeps what has arrived
  // (beforeunload comes before the browser cuts the stream, which would read
  // as a network error; pagehide is what mobile browsers fire)
  const leaving = () => {
    if (busy) {
      busy.view.msg.stopped = true;
      busy.ac.abort();
    }
    store.persist();
  };
  window.addEventListener('beforeunload', leaving);
  window.addEventListener('pagehide', leaving);
}

wire();
renderAll();
loadServerInfo();
// for the console and the tests: the live voice session
window.parley = { get voice() { return voice; } };
