// Player: gapless playback of the server's reply audio (PCM s16le) on one AudioContext.
// Each binary frame becomes an AudioBufferSourceNode scheduled to start exactly where the
// previous one ends, so frames play back to back without clicks. It also knows how much
// of the current reply has actually been heard (for barge-in's `played_ms`) and when the
// first sound of a reply reaches the speakers (for the latency readout).

const START_LEAD_SECONDS = 0.02; // schedule a little ahead so the first frame is not cut

export class Player {
  /**
   * @param {{onFirstSound: (performanceTime: number) => void, onPlayingChange: () => void}} callbacks
   *   onFirstSound: the first frame of a reply is scheduled; the argument is the
   *   performance.now() time at which it will come out of the speakers.
   *   onPlayingChange: `playing` became true (audio scheduled) or false (all of it played or stopped).
   */
  constructor({ onFirstSound, onPlayingChange }) {
    this.onFirstSound = onFirstSound;
    this.onPlayingChange = onPlayingChange;
    this.context = null; // created on the first press: browsers only start audio after a gesture
    this.analyser = null;
    this.accepting = false; // frames are played only between audio_start and a stop()
    this.sampleRate = 0;
    this.chunks = []; // {start, duration} in context seconds, for the current reply
    this.sources = new Set();
    this.playhead = 0; // context time at which the next frame starts
  }

  /** Creates or resumes the AudioContext; call it from a user gesture. */
  unlock() {
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 1024;
      this.analyser.connect(this.context.destination);
    }
    return this.context.resume();
  }

  /** A new reply starts (audio_start): frames that follow are played in this format. */
  beginReply(sampleRate) {
    this.unlock();
    this.stopSources();
    this.accepting = true;
    this.sampleRate = sampleRate;
    this.chunks = [];
    this.playhead = 0;
  }

  /** Plays one binary frame of the current reply; frames outside a reply are dropped. */
  enqueue(bytes) {
    if (!this.accepting || !this.context) return;
    const samples = new Int16Array(bytes, 0, bytes.byteLength >> 1);
    if (samples.length === 0) return;
    const buffer = this.context.createBuffer(1, samples.length, this.sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 0x8000;

    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.analyser);
    const start = Math.max(this.playhead, this.context.currentTime + START_LEAD_SECONDS);
    source.start(start);
    this.playhead = start + buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      if (this.sources.size === 0) this.onPlayingChange();
    };
    if (this.sources.size === 1) this.onPlayingChange();

    const isFirst = this.chunks.length === 0;
    this.chunks.push({ start, duration: buffer.duration });
    if (isFirst) this.onFirstSound(this.performanceTimeOf(start));
  }

  /** True while reply audio is coming out (or is scheduled to). */
  get playing() {
    return this.sources.size > 0;
  }

  /** Milliseconds of the current reply that have come out of the speakers so far. */
  playedMs() {
    if (!this.context) return 0;
    const now = this.audibleTime();
    let seconds = 0;
    for (const { start, duration } of this.chunks) {
      seconds += Math.min(Math.max(now - start, 0), duration);
    }
    return seconds * 1000;
  }

  /** Silences playback at once and drops frames until the next beginReply. Returns playedMs. */
  stop() {
    const played = this.playedMs();
    this.accepting = false;
    this.stopSources();
    this.chunks = [];
    return played;
  }

  stopSources() {
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
    }
    const hadSources = this.sources.size > 0;
    this.sources.clear();
    if (hadSources) this.onPlayingChange();
  }

  /** The context time now coming out of the speakers (output latency included when known). */
  audibleTime() {
    const stamp = this.context.getOutputTimestamp ? this.context.getOutputTimestamp() : null;
    if (stamp && stamp.contextTime > 0) return stamp.contextTime;
    return this.context.currentTime;
  }

  /** Converts a context time to the performance.now() time at which it is heard. */
  performanceTimeOf(contextTime) {
    const stamp = this.context.getOutputTimestamp ? this.context.getOutputTimestamp() : null;
    if (stamp && stamp.performanceTime > 0) {
      return stamp.performanceTime + (contextTime - stamp.contextTime) * 1000;
    }
    return performance.now() + (contextTime - this.context.currentTime) * 1000;
  }
}
