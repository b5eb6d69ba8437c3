// downsample.js - streaming resampler from the microphone's rate (44.1/48 kHz,
// whatever the AudioContext runs at) to 16 kHz mono PCM16 for the server.
//
// Used inside the AudioWorklet (pcm-worklet.js), so it allocates only when a
// block is larger than any before. Method: a windowed-sinc low-pass at 0.45 x
// the output rate (anti-aliasing), evaluated at the two input samples around
// each output instant, then linear interpolation between them. Cost per output
// sample: 2 x TAPS multiply-adds (TAPS = 2 * HALF + 1; 49 at 48 kHz).
// Delay: HALF input samples (0.5 ms at 48 kHz).

export class Downsampler {
  constructor(inRate, outRate = 16000) {
    if (!(inRate >= outRate) || !(outRate > 0)) throw new RangeError(`cannot downsample ${inRate} Hz to ${outRate} Hz`);
    this.step = inRate / outRate; // input samples per output sample
    const half = Math.max(1, Math.ceil(8 * this.step));
    const fc = (0.45 * outRate) / inRate; // cutoff, cycles per input sample
    const taps = new Float32Array(2 * half + 1);
    let sum = 0;
    for (let i = -half; i <= half; i++) {
      const x = 2 * fc * i;
      const sinc = i === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = 0.42 + 0.5 * Math.cos((Math.PI * i) / half) + 0.08 * Math.cos((2 * Math.PI * i) / half); // Blackman
      taps[i + half] = sinc * w;
      sum += taps[i + half];
    }
    for (let i = 0; i < taps.length; i++) taps[i] /= sum; // unity gain at DC
    this.half = half;
    this.taps = taps;
    // hist holds the input not yet consumed; it starts with `half` zeros so the
    // first output sample is at input time 0.
    this.hist = new Float32Array(4096);
    this.len = half;
    this.pos = half; // fractional index into hist of the next output instant
    this.out = new Int16Array(0);
  }

  filterAt(j) {
    const t = this.taps, h = this.hist, o = j - this.half;
    let acc = 0;
    for (let k = 0; k < t.length; k++) acc += t[k] * h[o + k];
    return acc;
  }

  // Feed float samples in [-1, 1]; returns the PCM16 samples now complete
  // (a view that stays valid until the next call).
  process(input) {
    if (this.len + input.length > this.hist.length) {
      const bigger = new Float32Array(2 * (this.len + input.length));
      bigger.set(this.hist.subarray(0, this.len));
      this.hist = bigger;
    }
    this.hist.set(input, this.len);
    this.len += input.length;
    const maxOut = Math.ceil((this.len - this.pos) / this.step) + 1;
    if (this.out.length < maxOut) this.out = new Int16Array(2 * maxOut);
    let n = 0;
    // output at pos needs filtered samples at floor(pos) and floor(pos) + 1,
    // i.e. inputs up to floor(pos) + 1 + half
    while (Math.floor(this.pos) + 1 + this.half < this.len) {
      const j = Math.floor(this.pos), f = this.pos - j;
      const a = this.filterAt(j);
      const v = f === 0 ? a : a + f * (this.filterAt(j + 1) - a);
      const s = Math.max(-1, Math.min(1, v));
      this.out[n++] = Math.round(s < 0 ? s * 32768 : s * 32767);
      this.pos += this.step;
    }
    // drop what no later output needs
    const keep = Math.floor(this.pos) - this.half;
    if (keep > 0) {
      this.hist.copyWithin(0, keep, this.len);
      this.len -= keep;
      this.pos -= keep;
    }
    return this.out.subarray(0, n);
  }
}
