// Waveform: draws a live oscilloscope line on a canvas from an AnalyserNode — the
// microphone while recording, the assistant's voice while it speaks — and a calm flat
// line otherwise. The line takes the canvas's CSS `color`, so the stylesheet sets it per state.

export class Waveform {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.analyser = null;
    this.samples = null;
    this.frameRequest = 0;
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  /** Shows this analyser's signal, or a flat line for null. */
  show(analyser) {
    if (analyser === this.analyser) return;
    this.analyser = analyser;
    this.samples = analyser ? new Float32Array(analyser.fftSize) : null;
    cancelAnimationFrame(this.frameRequest);
    this.draw();
  }

  /** Redraws the flat line (in the canvas's current colour); a live signal redraws itself. */
  refresh() {
    if (!this.analyser) this.draw();
  }

  resize() {
    const scale = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.canvas.clientWidth * scale);
    this.canvas.height = Math.round(this.canvas.clientHeight * scale);
    this.draw();
  }

  draw() {
    const { width, height } = this.canvas;
    const g = this.context;
    g.clearRect(0, 0, width, height);
    g.lineWidth = 2 * (window.devicePixelRatio || 1);
    g.lineJoin = "round";
    g.strokeStyle = getComputedStyle(this.canvas).color;
    g.beginPath();
    if (this.analyser) {
      this.analyser.getFloatTimeDomainData(this.samples);
      const step = width / (this.samples.length - 1);
      for (let i = 0; i < this.samples.length; i++) {
        const level = Math.max(-1, Math.min(1, this.samples[i] * 2)); // speech rarely exceeds ±0.5
        const y = height / 2 - level * height * 0.45;
        if (i === 0) g.moveTo(0, y);
        else g.lineTo(i * step, y);
      }
      this.frameRequest = requestAnimationFrame(() => this.draw());
    } else {
      g.moveTo(0, height / 2);
      g.lineTo(width, height / 2);
    }
    g.stroke();
  }
}
