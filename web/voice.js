// voice.js - voice mode: microphone -> /v1/realtime WebSocket -> speaker.
//
// Protocol: OpenAI Realtime event names. The page sends 16 kHz mono PCM16 as
// {type: "input_audio_buffer.append", audio: base64} every 20 ms; the server
// runs VAD, speech-to-text, the model and text-to-speech, and sends back
// speech_started/stopped, the transcript, reasoning and text deltas, audio
// deltas (base64 PCM16 at the rate of the session event, 22050 Hz when it
// names none) and response.done with the turn's per-stage metrics.
// Both the beta names (response.text.delta, response.audio.delta) and the GA
// names (response.output_text.delta, response.output_audio.delta) are read.
//
// Barge-in: speech_started while answer audio is still playing stops playback
// at once (the server cancels generation and synthesis on the same VAD event).

export const DEFAULT_OUTPUT_RATE = 22050;

export function bytesToBase64(bytes) {
  let s = '';
  // chunks keep String.fromCharCode's argument count small
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function base64ToInt16(b64) {
  const bin = atob(b64);
  const n = bin.length >> 1;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8); // little-endian
    out[i] = v >= 0x8000 ? v - 0x10000 : v;
  }
  return out;
}

// Gapless playback: each chunk is scheduled to start exactly where the
// previous one ends on the AudioContext clock; a small lead (LEAD_S) absorbs
// network jitter when the queue has run dry.
const LEAD_S = 0.06;

export class AudioPlayer {
  constructor(ctx) {
    this.ctx = ctx;
    this.next = 0;
    this.sources = new Set();
    this.playedSamples = 0;
    this.queuedSeconds = 0;
  }

  get playing() {
    return this.sources.size > 0 && this.ctx.currentTime < this.next;
  }

  enqueue(pcm16, rate) {
    if (!pcm16.length) return;
    const buf = this.ctx.createBuffer(1, pcm16.length, rate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < pcm16.length; i++) ch[i] = pcm16[i] / 32768;
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.ctx.destination);
    const at = Math.max(this.next, this.ctx.currentTime + LEAD_S);
    src.start(at);
    this.next = at + buf.duration;
    this.queuedSeconds += buf.duration;
    this.sources.add(src);
    src.onended = () => this.sources.delete(src);
  }

  // Barge-in: silence now and forget what was queued.
  stop() {
    for (const s of this.sources) {
      try { s.stop(); } catch { /* already stopped */ }
    }
    this.sources.clear();
    this.next = 0;
  }
}

function sessionRate(session) {
  if (!session || typeof session !== 'object') return null;
  const r = session.output_audio_sample_rate ?? session.output_sample_rate ?? session.sample_rate ??
    session.audio?.output?.format?.rate ?? session.output_audio_format?.rate;
  return Number.isFinite(r) && r >= 8000 && r <= 192000 ? r : null;
}

// One voice session. handlers (all optional):
//   onState(state)            'connecting' | 'listening' | 'hearing' | 'thinking' | 'speaking' | 'off'
//   onLevel(rms)              microphone level, 0..1, every 20 ms
//   onSpeechStarted({bargeIn}) / onSpeechStopped()
//   onTranscript(text, final) the user's words (partial, then final)
//   onReasoning(delta) / onText(delta)
//   onAudio(seconds)          an audio delta was queued
//   onTruncated(text)         barge-in: what the assistant message now holds
//   onDone(metrics, response) the turn's metrics (response.done)
//   onError(message)
export class VoiceClient {
  constructor(handlers = {}, opts = {}) {
    this.h = handlers;
    this.url = opts.url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/realtime`;
    this.session = opts.session || null; // sent as session.update when given
    this.rate = DEFAULT_OUTPUT_RATE;
    this.ws = null;
    this.ctx = null;
    this.stream = null;
    this.node = null;
    this.player = null;
    this.textSeen = false;
    this.sent = 0;
  }

  state(s) { this.h.onState?.(s); }

  async start() {
    this.state('connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to ${this.url}`));
    });
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onclose = (e) => {
      if (this.ws === ws) {
        this.h.onError?.(`voice connection closed${e.reason ? ': ' + e.reason : ''}`);
        this.stop();
      }
    };
    if (this.session) this.send({ type: 'session.update', session: this.session });

    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    // The context runs at the device's rate (Firefox cannot connect a
    // microphone to a context of another rate); the worklet downsamples.
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    await this.ctx.audioWorklet.addModule(new URL('./pcm-worklet.js', import.meta.url));
    const src = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, 'pcm-capture', { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
    this.node.port.onmessage = (e) => {
      const { pcm, level } = e.data;
      this.h.onLevel?.(level);
      if (this.ws?.readyState === WebSocket.OPEN) {
        this.send({ type: 'input_audio_buffer.append', audio: bytesToBase64(new Uint8Array(pcm)) });
        this.sent += pcm.byteLength / 2;
      }
    };
    src.connect(this.node);
    this.node.connect(this.ctx.destination); // outputs silence; keeps the node pulled
    this.player = new AudioPlayer(this.ctx);
    if (this.ctx.state === 'suspended') await this.ctx.resume();
    this.state('listening');
  }

  send(obj) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  // The user pressed stop during an answer.
  cancelResponse() {
    this.player?.stop();
    this.send({ type: 'response.cancel' });
  }

  stop() {
    const ws = this.ws;
    this.ws = null;
    try { ws?.close(); } catch { /* closing anyway */ }
    this.node?.port.postMessage('stop');
    this.node?.disconnect();
    this.stream?.getTracks().forEach((t) => t.stop());
    this.player?.stop();
    this.ctx?.close().catch(() => {});
    this.node = this.stream = this.ctx = this.player = null;
    this.state('off');
  }

  onMessage(data) {
    let ev;
    try { ev = JSON.parse(data); } catch { return; }
    if (!ev || typeof ev.type !== 'string') return;
    const h = this.h;
    switch (ev.type) {
      case 'session.created':
      case 'session.updated': {
        const r = sessionRate(ev.session);
        if (r) this.rate = r;
        break;
      }
      case 'input_audio_buffer.speech_started': {
        const bargeIn = !!this.player?.playing;
        if (bargeIn) this.player.stop();
        this.state('hearing');
        h.onSpeechStarted?.({ bargeIn });
        break;
      }
      case 'input_audio_buffer.speech_stopped':
        this.state('thinking');
        h.onSpeechStopped?.();
        break;
      case 'conversation.item.input_audio_transcription.delta':
        if (ev.delta) h.onTranscript?.(ev.delta, false);
        break;
      case 'conversation.item.input_audio_transcription.completed':
        h.onTranscript?.(ev.transcript ?? '', true);
        break;
      case 'response.created':
        this.textSeen = false;
        break;
      case 'response.reasoning.delta':
      case 'response.reasoning_text.delta':
      case 'response.reasoning_content.delta':
        if (ev.delta) h.onReasoning?.(ev.delta);
        break;
      case 'response.text.delta':
      case 'response.output_text.delta':
        this.textSeen = true;
        if (ev.delta) h.onText?.(ev.delta);
        break;
      case 'response.audio_transcript.delta':
      case 'response.output_audio_transcript.delta':
        if (!this.textSeen && ev.delta) h.onText?.(ev.delta); // the spoken text, when no text channel
        break;
      case 'response.audio.delta':
      case 'response.output_audio.delta': {
        if (!this.player || !ev.delta) break;
        const rate = Number.isFinite(ev.sample_rate) ? ev.sample_rate : this.rate;
        const pcm = base64ToInt16(ev.delta);
        this.player.enqueue(pcm, rate);
        this.state('speaking');
        h.onAudio?.(pcm.length / rate);
        break;
      }
      case 'conversation.item.truncated':
      case 'response.truncated':
        h.onTruncated?.(ev.text ?? ev.transcript ?? null);
        break;
      case 'response.done': {
        const m = ev.metrics ?? ev.response?.metrics ?? null;
        h.onDone?.(m, ev.response ?? null);
        // back to listening once the queued audio has played
        const left = this.player ? Math.max(0, this.player.next - this.ctx.currentTime) : 0;
        setTimeout(() => { if (this.ws && !this.player?.playing) this.state('listening'); }, left * 1000 + 50);
        break;
      }
      case 'error':
        h.onError?.(ev.error?.message ?? ev.message ?? 'voice error');
        break;
      default:
        break; // other events (rate limits, item.created, ...) are not shown
    }
  }
}
