// Connection: the page's WebSocket to /ws/voice, reopened by itself with exponential
// backoff when the server goes away. It speaks frames, not protocol: JSON objects out and
// in as text frames, audio as binary frames (docs/protocol.md).

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5000;

export class Connection {
  /**
   * @param {string} url ws:// or wss:// address of the voice endpoint
   * @param {{onEvent: (event: object) => void, onAudio: (bytes: ArrayBuffer) => void,
   *          onClose: (info: {wasOpen: boolean, retryInMs: number, attempt: number, code: number,
   *                           reason: string}) => boolean|void}} handlers  onClose returning false: no retry
   * @param {() => string[]} protocols the WebSocket subprotocols to offer (they carry the token)
   */
  constructor(url, handlers, protocols = () => []) {
    this.url = url;
    this.handlers = handlers;
    this.protocols = protocols;
    this.socket = null;
    this.failedAttempts = 0; // since the last connection that worked; drives the backoff
  }

  /** The ws:// or wss:// URL of the voice endpoint on the server that served this page. */
  static voiceUrl(location) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/voice`;
  }

  /** Open (or is opening) a socket. */
  get active() {
    return this.socket !== null;
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    const socket = new WebSocket(this.url, this.protocols());
    socket.binaryType = "arraybuffer";
    let wasOpen = false;
    socket.onopen = () => {
      wasOpen = true; // the page waits for the server's first status to call itself connected
    };
    socket.onmessage = (message) => {
      this.failedAttempts = 0; // the server talks: it really is up
      if (typeof message.data === "string") {
        this.handleText(message.data);
      } else {
        this.handlers.onAudio(message.data);
      }
    };
    socket.onclose = (event) => {
      this.socket = null;
      this.failedAttempts += 1;
      const retryInMs = backoffMs(this.failedAttempts);
      const info = { wasOpen, retryInMs, attempt: this.failedAttempts, code: event.code, reason: event.reason };
      if (this.handlers.onClose(info) !== false) setTimeout(() => this.connect(), retryInMs);
    };
    this.socket = socket;
  }

  handleText(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch (error) {
      console.warn("voicebot: ignoring a text frame that is not JSON", text);
      return;
    }
    this.handlers.onEvent(event);
  }

  /** Sends one action as a JSON text frame. Returns false when not connected. */
  send(action) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(action));
    return true;
  }

  /** Sends one binary audio frame. Returns false when not connected. */
  sendAudio(bytes) {
    if (!this.open) return false;
    this.socket.send(bytes);
    return true;
  }
}

/** 0.5 s, 1 s, 2 s, 4 s, then 5 s, each with ±20 % jitter so many pages don't retry in step. */
function backoffMs(attempt) {
  const base = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
