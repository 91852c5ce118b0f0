// Microphone capture worklet: turns the microphone's native-rate float audio into
// 16 kHz PCM s16le frames of 40 ms, the format the server takes (docs/protocol.md).
// It runs on the audio thread, so the page's main thread never touches raw samples.
//
// Downsampling: each output sample is the average of the input samples that fall in
// its 1/16000 s slot. The average is a simple low-pass filter (a box filter) that keeps
// most of the aliasing out, and it works for any input rate (48 kHz, 44.1 kHz, ...).
// The processor only emits frames while the main thread has told it to record.

const TARGET_RATE = 16000;
const FRAME_SAMPLES = 640; // 40 ms at 16 kHz = 1280 bytes, inside the 20–100 ms the server wants

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.recording = false;
    this.inputPerOutput = sampleRate / TARGET_RATE; // `sampleRate` is the context's rate
    this.slotPosition = 0; // how far we are into the current output slot, in input samples
    this.slotSum = 0;
    this.slotCount = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.frameLength = 0;
    this.port.onmessage = (event) => this.setRecording(event.data.recording);
  }

  setRecording(recording) {
    this.recording = recording;
    // Every utterance starts clean: no half slot or half frame from the previous one.
    this.slotPosition = 0;
    this.slotSum = 0;
    this.slotCount = 0;
    this.frameLength = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0]; // mono: the first channel is enough
    if (!this.recording || !channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.slotSum += channel[i];
      this.slotCount += 1;
      this.slotPosition += 1;
      if (this.slotPosition >= this.inputPerOutput) {
        this.slotPosition -= this.inputPerOutput;
        this.pushSample(this.slotSum / this.slotCount);
        this.slotSum = 0;
        this.slotCount = 0;
      }
    }
    return true;
  }

  pushSample(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.frameLength++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.frameLength === FRAME_SAMPLES) {
      const bytes = this.frame.slice().buffer; // little-endian on every platform browsers run on
      this.port.postMessage(bytes, [bytes]);
      this.frameLength = 0;
    }
  }
}

registerProcessor("capture-processor", CaptureProcessor);
