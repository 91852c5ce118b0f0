// Microphone: opens the microphone once (on the first press), runs the capture worklet
// (capture-worklet.js) on an AudioContext at the microphone's own sample rate, and hands
// 16 kHz PCM s16le frames to a callback while recording. The AudioContext runs at the
// microphone's rate because Firefox refuses to connect a microphone to a context of
// another rate; the worklet does the downsampling instead.

export class MicrophoneError extends Error {}

export class Microphone {
  /** @param {(frame: ArrayBuffer) => void} onFrame called with each 40 ms frame while recording */
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.opening = null; // the promise of the open microphone, shared by concurrent presses
    this.analyser = null; // for the waveform while recording
    this.context = null; // the capture AudioContext once open
  }

  /** True when the capture context runs (browsers may hold it until a user gesture). */
  get running() {
    return this.context !== null && this.context.state === "running";
  }

  /** Opens the microphone if it is not open yet. Rejects with a MicrophoneError in plain words. */
  open() {
    if (!this.opening) {
      this.opening = this.openOnce().catch((error) => {
        this.opening = null; // let the next press ask again
        throw new MicrophoneError(describeFailure(error), { cause: error });
      });
    }
    return this.opening;
  }

  async openOnce() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new DOMException("no mediaDevices", "InsecureContextError");
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const track = stream.getAudioTracks()[0];
    const { context, source } = connectAtNativeRate(stream, track.getSettings().sampleRate);
    this.context = context;
    await context.audioWorklet.addModule("/static/capture-worklet.js");
    const capture = new AudioWorkletNode(context, "capture-processor");
    capture.port.onmessage = (event) => this.onFrame(event.data);
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 1024;
    source.connect(this.analyser);
    source.connect(capture);
    capture.connect(context.destination); // the worklet writes silence; the link keeps it running
    track.addEventListener("ended", () => {
      // Unplugged or revoked: forget this microphone so the next press opens a new one.
      this.opening = null;
      this.analyser = null;
      this.context = null;
      context.close();
    });
    return { context, capture };
  }

  async start() {
    const { context, capture } = await this.open();
    capture.port.postMessage({ recording: true });
    await context.resume(); // may wait for a user gesture when nothing has unlocked audio yet
  }

  async stop() {
    const opened = this.opening && (await this.opening.catch(() => null));
    if (opened) opened.capture.port.postMessage({ recording: false });
  }
}

/** An AudioContext at the microphone's rate with the microphone connected to it. Browsers that
 *  don't report the rate (Firefox), or refuse the reported one, get their default context. */
function connectAtNativeRate(stream, nativeRate) {
  if (nativeRate) {
    const context = new AudioContext({ sampleRate: nativeRate });
    try {
      return { context, source: context.createMediaStreamSource(stream) };
    } catch (error) {
      context.close(); // "different sample-rate is not supported": fall back to the default rate
    }
  }
  const context = new AudioContext();
  return { context, source: context.createMediaStreamSource(stream) };
}

function describeFailure(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access is blocked. Allow the microphone for this site (the icon in the address bar) and try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in and try again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone is busy or could not be started. Close other apps using it and try again.";
    case "InsecureContextError":
      return "The browser only allows the microphone on a secure page: open voicebot over https or on localhost.";
    default:
      return `The microphone could not be opened (${error && error.message ? error.message : error}).`;
  }
}
