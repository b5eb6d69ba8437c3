// pcm-worklet.js - AudioWorklet processor: microphone -> 16 kHz PCM16 chunks.
//
// Runs on the audio thread. Each 128-frame render quantum is downsampled
// (downsample.js) and collected; every CHUNK output samples (20 ms) the chunk
// is posted to the page (transferred, not copied) with its RMS level for the
// meter. 20 ms keeps the server's VAD decisions and the barge-in quick at 50
// messages a second.

import { Downsampler } from './downsample.js';

const OUT_RATE = 16000;
const CHUNK = 320;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    // sampleRate: the AudioContext's rate, a global of the worklet scope
    this.ds = new Downsampler(sampleRate, OUT_RATE);
    this.buf = new Int16Array(CHUNK);
    this.n = 0;
    this.sumsq = 0;
    this.on = true;
    this.port.onmessage = (e) => { if (e.data === 'stop') this.on = false; };
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      const pcm = this.ds.process(ch);
      for (let i = 0; i < pcm.length; i++) {
        this.buf[this.n++] = pcm[i];
        this.sumsq += pcm[i] * pcm[i];
        if (this.n === CHUNK) {
          const level = Math.sqrt(this.sumsq / CHUNK) / 32768;
          this.port.postMessage({ pcm: this.buf.buffer, level }, [this.buf.buffer]);
          this.buf = new Int16Array(CHUNK);
          this.n = 0;
          this.sumsq = 0;
        }
      }
    }
    return this.on;
  }
}

registerProcessor('pcm-capture', PcmCapture);
