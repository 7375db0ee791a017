// The Talk page's microphone, as a telephone line hears it: low-passed below 4 kHz,
// resampled to 8 kHz and G.711 μ-law encoded, posted to the page 20 ms (160 bytes) at a time.
"use strict";

const LINE_RATE = 8000;
const FRAME_BYTES = 160;
const TAPS = 63;
const CUTOFF_HZ = 3400;

function lowPass(rate) {
  // A Blackman-windowed sinc: flat through the telephone band, quiet above 4 kHz.
  const kernel = new Float32Array(TAPS);
  const fc = CUTOFF_HZ / rate;
  const middle = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - middle;
    const sinc = x === 0 ? 2 * Math.PI * fc : Math.sin(2 * Math.PI * fc * x) / x;
    const window =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) +
      0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    kernel[i] = sinc * window;
    sum += kernel[i];
  }
  for (let i = 0; i < TAPS; i++) kernel[i] /= sum;
  return kernel;
}

function mulaw(sample) {
  const BIAS = 0x84;
  const CLIP = 32635;
  let pcm = Math.round(Math.max(-1, Math.min(1, sample)) * 32767);
  const sign = pcm < 0 ? 0x80 : 0;
  if (sign) pcm = -pcm;
  pcm = Math.min(pcm, CLIP) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; exponent--, mask >>= 1);
  const mantissa = (pcm >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

class LineEncoder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.kernel = lowPass(sampleRate);
    this.history = new Float32Array(TAPS * 2);
    this.at = 0;
    this.step = sampleRate / LINE_RATE;
    this.due = 0; // input samples until the next line sample, fractional
    this.previous = 0;
    this.frame = new Uint8Array(FRAME_BYTES);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let n = 0; n < channel.length; n++) {
      // A doubled ring buffer: the last TAPS samples are always contiguous.
      this.history[this.at] = this.history[this.at + TAPS] = channel[n];
      this.at = (this.at + 1) % TAPS;
      let filtered = 0;
      for (let k = 0; k < TAPS; k++) filtered += this.kernel[k] * this.history[this.at + k];
      // Line samples fall between input samples: interpolate from the previous one.
      while (this.due < 1) {
        const value = this.previous + (filtered - this.previous) * this.due;
        this.frame[this.filled++] = mulaw(value);
        if (this.filled === FRAME_BYTES) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Uint8Array(FRAME_BYTES);
          this.filled = 0;
        }
        this.due += this.step;
      }
      this.due -= 1;
      this.previous = filtered;
    }
    return true;
  }
}

registerProcessor("switchboard-line-encoder", LineEncoder);
