// voicebot page: the push-to-talk controls, the conversation bubbles and the status line,
// wired to the server's WebSocket protocol (docs/protocol.md). Audio capture lives in
// mic.js (+ capture-worklet.js), playback in player.js, the socket and its reconnects in
// connection.js, the waveform in waveform.js, the hands-free switch in handsfree.js, tool chips
// and the timing breakdown in tools.js, running timers in timers.js. Tests read window.voicebot
// (bottom of file).

import { askForToken, initialToken, serverClose, subprotocols, tokenRefused } from "./auth.js";
import { Connection } from "./connection.js";
import {
  HANDS_FREE,
  LIVE_TEXT,
  ModeSwitch,
  PUSH_TO_TALK,
  liveState,
  rememberMode,
  storedMode,
} from "./handsfree.js";
import { Microphone } from "./mic.js";
import { Player } from "./player.js";
import { TimerList } from "./timers.js";
import { addToolCall, addToolResult, describeTimings, formatBreakdown } from "./tools.js";
import { Waveform } from "./waveform.js";

const REPLY_STATES = new Set(["transcribing", "thinking", "speaking"]);

/** Plain-words text for the server's error codes (the server's own message goes to the console). */
const ERROR_TEXT = {
  asr_failed: "Speech recognition failed on the server. Please try again.",
  llm_failed: "The language model failed to answer. Please try again.",
  tts_failed: "The voice could not be produced; the reply is shown as text only.",
  internal_error: "Something went wrong on the server. Please try again.",
};
const PROTOCOL_ERROR_CODES = new Set(["invalid_json", "invalid_message", "unknown_action", "bad_audio_frame"]);
/** Codes that a normal race can cause (e.g. the server ended a too-long utterance before the release). */
const HARMLESS_ERROR_CODES = new Set(["already_listening", "not_listening"]);
/** Status reasons whose server message stays on the status line in hands-free mode. */
const TOLD_REASONS = new Set(["failed", "too_long", "fallback", "timer"]);
const WAKE_TEXT = "Click or tap anywhere on the page to start listening.";

const ui = {
  body: document.body,
  mic: document.getElementById("mic"),
  micLabel: document.getElementById("mic-label"),
  newConversation: document.getElementById("new-conversation"),
  conversation: document.getElementById("conversation"),
  status: document.getElementById("status"),
  alert: document.getElementById("alert"),
  connection: document.getElementById("connection"),
  connectionText: document.getElementById("connection-text"),
  latency: document.getElementById("latency"),
  waveform: new Waveform(document.getElementById("waveform")),
  modeSwitch: new ModeSwitch(document.getElementById("mode-switch"), chooseMode),
  timers: new TimerList(document.getElementById("timers")),
};

const page = {
  connected: false,
  everConnected: false,
  sessionId: null,
  serverState: "idle", // the last state the server reported
  serverMessage: "",
  serverReason: null,
  mode: PUSH_TO_TALK, // the mode the server reported
  pendingMode: null, // set_mode sent, the server's answer not in yet
  streaming: false, // hands-free: the microphone streams to the server all the time
  newestTurn: 0,
  holding: false, // the mic button (or Space) is held down
  startSent: false, // start_listening went out for the current hold
  releasedAt: null, // performance.now() of the last release, until its reply makes a sound
  lastLatencyMs: null,
  awaitingReset: false, // after "New conversation": ignore old events until the server's idle
  offlineText: "Connecting…",
  turns: new Map(), // turn number -> {element, user, reply, text, cut}
  playingTurn: null, // the turn whose audio the player was last given
};

let token = initialToken(window.location, window.history);
const connection = new Connection(
  Connection.voiceUrl(window.location),
  {
    onEvent: handleEvent,
    onAudio: (bytes) => {
      if (!page.awaitingReset) player.enqueue(bytes);
    },
    onClose: handleDisconnect,
  },
  () => subprotocols(token),
);

const microphone = new Microphone((frame) => {
  if ((page.holding && page.startSent) || page.streaming) connection.sendAudio(frame);
});

const player = new Player({
  onFirstSound: (soundAt) => {
    if (page.releasedAt === null) return;
    page.lastLatencyMs = Math.max(0, Math.round(soundAt - page.releasedAt));
    page.releasedAt = null;
    showLatency(page.newestTurn, page.lastLatencyMs);
  },
  onPlayingChange: render,
});

// ---- what the page shows -------------------------------------------------------------

/** The state shown to the user: the server's, corrected by what happens locally right now. */
function displayState() {
  if (!page.connected) return "offline";
  if (page.holding) return "listening";
  if (player.playing) return "speaking";
  return page.serverState;
}

function statusText(state) {
  if (state === "offline") return page.offlineText;
  if (page.streaming && !TOLD_REASONS.has(page.serverReason)) {
    if (page.serverReason === "nothing_heard" && state === "idle") return "I didn't catch that. Still listening: just talk.";
    return LIVE_TEXT[liveState(page.serverState, { holding: page.holding, playing: player.playing })];
  }
  if (state === page.serverState && page.serverMessage) return page.serverMessage;
  return { listening: "Listening…", speaking: "Speaking…" }[state] || page.serverMessage;
}

function render() {
  const state = displayState();
  ui.body.dataset.state = state;
  ui.body.dataset.mode = page.streaming ? HANDS_FREE : PUSH_TO_TALK;
  ui.body.dataset.live =
    page.streaming && page.connected ? liveState(page.serverState, { holding: page.holding, playing: player.playing }) : "";
  ui.modeSwitch.show(page.pendingMode || (page.connected ? page.mode : storedMode()));
  const text = statusText(state);
  if (ui.status.textContent !== text) ui.status.textContent = text;
  ui.mic.setAttribute("aria-pressed", String(page.holding));
  ui.micLabel.textContent = page.holding ? "Release to send" : "Hold to talk";
  ui.connection.dataset.connected = String(page.connected);
  ui.connectionText.textContent = page.connected ? "Connected" : "Offline";
  const micLive = page.holding || (page.streaming && !player.playing);
  ui.waveform.show(micLive ? microphone.analyser : player.playing ? player.analyser : null);
  ui.waveform.refresh(); // the flat line takes the new state's colour
}

function showAlert(text) {
  ui.alert.textContent = text;
  ui.alert.hidden = !text;
}

function showLatency(turnNumber, ms) {
  const from = page.streaming ? "the end of your words" : "release";
  ui.latency.textContent = `Last reply: ${ms} ms from ${from} to first sound`;
  const turn = page.turns.get(turnNumber);
  if (!turn) return;
  const reply = replyBubble(turn);
  reply.latency.textContent = `${ms} ms to first sound`;
  reply.element.dataset.latencyMs = String(ms);
}

function bubble(role) {
  const element = document.createElement("div");
  element.className = `bubble ${role}`;
  const text = document.createElement("p");
  text.className = "text";
  element.append(text);
  return { element, text };
}

/** The bubbles of one turn, created on first use. */
function turnView(number) {
  let turn = page.turns.get(number);
  if (turn) return turn;
  const element = document.createElement("li");
  element.className = "turn";
  element.dataset.turn = String(number);
  ui.conversation.append(element);
  turn = { element, user: null, reply: null, text: "", cut: false };
  page.turns.set(number, turn);
  return turn;
}

function userBubble(turn) {
  if (!turn.user) {
    turn.user = bubble("user");
    turn.user.element.setAttribute("aria-label", "You said");
    turn.element.prepend(turn.user.element);
  }
  return turn.user;
}

function replyBubble(turn) {
  if (!turn.reply) {
    turn.reply = bubble("assistant");
    turn.reply.element.setAttribute("aria-label", "voicebot replied");
    turn.reply.element.dataset.settled = "false";
    const meta = document.createElement("p");
    meta.className = "meta";
    turn.reply.tag = document.createElement("span");
    turn.reply.tag.className = "tag";
    turn.reply.latency = document.createElement("span");
    turn.reply.latency.className = "latency-value";
    turn.reply.breakdown = document.createElement("span");
    turn.reply.breakdown.className = "breakdown";
    meta.append(turn.reply.tag, turn.reply.latency, turn.reply.breakdown);
    turn.reply.element.append(meta);
    turn.element.append(turn.reply.element);
  }
  return turn.reply;
}

function scrollToNewest() {
  ui.conversation.lastElementChild?.scrollIntoView({ block: "end", behavior: "smooth" });
}

/** Shows the heard part of an interrupted reply normally and the unheard rest dimmed. */
function showInterrupted(turn, heard) {
  const reply = replyBubble(turn);
  const unheard = unheardRest(turn.text, heard);
  const heardSpan = document.createElement("span");
  heardSpan.className = "heard";
  heardSpan.textContent = heard;
  const unheardSpan = document.createElement("span");
  unheardSpan.className = "unheard";
  unheardSpan.textContent = unheard;
  unheardSpan.title = "Not heard: you interrupted";
  reply.text.replaceChildren(heardSpan, unheardSpan);
  reply.tag.textContent = "Interrupted: dimmed words were not heard";
  reply.element.dataset.interrupted = "true";
  reply.element.dataset.settled = "true";
}

function unheardRest(full, heard) {
  if (full.startsWith(heard)) return full.slice(heard.length);
  // Whitespace may differ between the pieces and `heard`: cut by word count instead.
  const heardWords = heard.split(/\s+/).filter(Boolean).length;
  const words = full.split(/\s+/).filter(Boolean);
  return " " + words.slice(heardWords).join(" ");
}

// ---- server events --------------------------------------------------------------------

function handleEvent(event) {
  if (page.awaitingReset) {
    // Everything before the server's answer to "reset" belongs to the forgotten conversation.
    if (event.type !== "status" || event.state !== "idle") return;
    page.awaitingReset = false;
  }
  const turn = Number.isInteger(event.turn) ? event.turn : null;
  switch (event.type) {
    case "status":
      return handleStatus(event);
    case "partial_transcript":
      return handlePartialTranscript(turn, event.text);
    case "transcript": {
      const user = userBubble(turnView(turn));
      user.text.textContent = event.text;
      delete user.element.dataset.partial;
      return scrollToNewest();
    }
    case "response_text":
      return handleResponseText(turn, event.text);
    case "response_done":
      return handleResponseDone(turn, event.text);
    case "audio_start":
      if (isCut(turn)) return; // keep dropping the old reply's audio
      page.playingTurn = turn;
      player.beginReply(event.sample_rate);
      return render();
    case "audio_done":
      return; // nothing to do: playback ends by itself when the scheduled audio has played
    case "response_interrupted":
      return handleInterrupted(turn, event.heard || "");
    case "tool_call":
    case "tool_result":
      return handleTool(turn, event);
    case "timers":
      return ui.timers.update(Array.isArray(event.timers) ? event.timers : []);
    case "metrics":
      return showMetrics(turn, event.timings);
    case "error":
      return handleError(event);
    default:
      console.warn("voicebot: unknown event", event);
  }
}

function handleStatus(event) {
  if (event.session_id) startSession(event.session_id);
  page.serverState = event.state;
  page.serverMessage = event.message || "";
  if (event.reason !== "fallback") page.serverReason = event.reason || null;
  if (Number.isInteger(event.turn)) page.newestTurn = event.turn;
  if (event.reason === "nothing_heard") {
    page.releasedAt = null;
    dropPartial(event.turn);
  }
  // Hands-free: the server heard the user stop; the latency readout counts from here.
  if (event.state === "transcribing" && event.reason === "voice") page.releasedAt = performance.now();
  if (event.mode === PUSH_TO_TALK || event.mode === HANDS_FREE) {
    page.mode = event.mode;
    if (page.pendingMode === event.mode || event.reason === "mode") page.pendingMode = null;
    syncStreaming();
  }
  if (event.reason === "timer" && Number.isInteger(event.turn)) {
    // The assistant speaks on its own (a timer ended): a reply bubble with no question before it.
    const reply = replyBubble(turnView(event.turn));
    reply.element.dataset.announcement = "timer";
    reply.tag.textContent = "Timer";
    scrollToNewest();
  }
  if (event.state === "thinking" && Number.isInteger(event.turn) && !isCut(event.turn)) {
    replyBubble(turnView(event.turn)); // an empty bubble shows "thinking" dots until text comes
    scrollToNewest();
  }
  render();
}

/** The first status of a connection: a new server session, so a new conversation. */
function startSession(sessionId) {
  const reconnected = page.everConnected;
  page.connected = true;
  page.everConnected = true;
  page.sessionId = sessionId;
  if (reconnected) showAlert("");
  page.mode = PUSH_TO_TALK; // a new server session starts in push-to-talk
  page.pendingMode = null;
  sendTimeZone();
  if (storedMode() === HANDS_FREE) chooseMode(HANDS_FREE);
  if (reconnected && page.turns.size > 0) {
    // The server forgot the old conversation; keep it on screen but start numbering afresh.
    const note = document.createElement("li");
    note.className = "note";
    note.textContent = "Reconnected. The server started a new conversation.";
    ui.conversation.append(note);
    page.turns = new Map();
  }
  ui.timers.clear(); // the old session's timers went with it
}

/** So that "what time is it?" is answered in the user's time zone. Sent on every (re)connect. */
function sendTimeZone() {
  let timeZone = null;
  try {
    timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    // no Intl time zones: the server's zone is used
  }
  if (timeZone) connection.send({ action: "set_time_zone", time_zone: timeZone });
}

/** The words the user is saying, growing in their bubble until the final transcript replaces them. */
function handlePartialTranscript(turnNumber, text) {
  if (turnNumber === null || isCut(turnNumber)) return;
  const turn = turnView(turnNumber);
  if (turn.user && turn.user.element.dataset.partial !== "true") return; // the final one is in
  const user = userBubble(turn);
  user.element.dataset.partial = "true";
  user.text.textContent = text;
  scrollToNewest();
}

/** Nothing was heard after all: remove the growing words of that turn. */
function dropPartial(turnNumber) {
  const turn = page.turns.get(turnNumber);
  if (!turn || !turn.user || turn.user.element.dataset.partial !== "true") return;
  turn.user.element.remove();
  turn.user = null;
}

/** A reply was cut: by this page's press (already silent) or by the server (a voice barge-in,
 *  a reset): then it stops at once here too, exactly as a press does. */
function handleInterrupted(turnNumber, heard) {
  const turn = page.turns.get(turnNumber);
  if (turn) turn.cut = true; // its late events and audio are dropped
  if (page.playingTurn === turnNumber && player.playing) player.stop();
  if (turn) showInterrupted(turn, heard);
  render();
}

function handleTool(turnNumber, event) {
  if (turnNumber === null || isCut(turnNumber)) return;
  const reply = replyBubble(turnView(turnNumber));
  if (event.type === "tool_call") addToolCall(reply, event);
  else addToolResult(reply, event);
  scrollToNewest();
}

function showMetrics(turnNumber, timings) {
  const turn = page.turns.get(turnNumber);
  if (!turn || !turn.reply) return;
  turn.reply.breakdown.textContent = formatBreakdown(timings);
  turn.reply.breakdown.title = describeTimings(timings);
  if (timings && Number.isFinite(timings.first_audio_ms)) {
    turn.reply.element.dataset.firstAudioMs = String(Math.round(timings.first_audio_ms));
  }
}

function handleResponseText(turnNumber, piece) {
  if (isCut(turnNumber)) return;
  const turn = turnView(turnNumber);
  turn.text += piece;
  replyBubble(turn).text.textContent = turn.text;
  scrollToNewest();
}

function handleResponseDone(turnNumber, text) {
  if (isCut(turnNumber)) return;
  const turn = turnView(turnNumber);
  turn.text = text;
  const reply = replyBubble(turn);
  reply.text.textContent = text;
  reply.element.dataset.settled = "true";
}

/** True for the turns of a reply the user interrupted: their late events are dropped. */
function isCut(turnNumber) {
  const turn = page.turns.get(turnNumber);
  return turn !== undefined && turn.cut;
}

function handleError(event) {
  console.warn(`voicebot: server error ${event.code}: ${event.message}`);
  if (HARMLESS_ERROR_CODES.has(event.code)) return;
  if (["asr_failed", "llm_failed", "tts_failed"].includes(event.code)) page.releasedAt = null;
  if (PROTOCOL_ERROR_CODES.has(event.code)) {
    showAlert(`The server did not understand this page (${event.code}). Reloading the page may help.`);
  } else {
    showAlert(ERROR_TEXT[event.code] || `The server reported a problem: ${event.message}`);
  }
}

function handleDisconnect({ wasOpen, retryInMs, attempt, code, reason }) {
  const wasConnected = page.connected;
  page.connected = false;
  page.holding = false;
  page.startSent = false;
  page.awaitingReset = false;
  page.releasedAt = null;
  page.serverState = "idle";
  page.serverReason = null;
  page.streaming = false;
  page.pendingMode = null;
  microphone.stop();
  player.stop();
  const seconds = Math.max(1, Math.round(retryInMs / 1000));
  const closed = serverClose(code, reason);
  if (!wasOpen && !page.everConnected) checkToken(); // refused at the handshake: maybe a token problem
  if (closed) {
    page.offlineText = closed.text;
    showAlert(closed.text);
    render();
    return closed.retry;
  }
  if (wasConnected || (wasOpen && page.everConnected)) {
    page.offlineText = `Connection lost. Reconnecting in ${seconds} s…`;
  } else if (page.everConnected) {
    page.offlineText = `Reconnecting… (attempt ${attempt}, next in ${seconds} s)`;
  } else {
    page.offlineText = `Can't reach the voicebot server. Trying again in ${seconds} s…`;
  }
  render();
}

// ---- push to talk ---------------------------------------------------------------------

let askedForToken = false;
async function checkToken() {
  if (!(await tokenRefused(token))) return;
  token = askForToken(askedForToken);
  askedForToken = true;
  if (token === null) {
    page.offlineText = "This server needs a token: open the page as /#token=YOUR_TOKEN.";
    render();
  }
}

async function press() {
  if (page.holding) return;
  if (!page.connected && !connection.active) {
    connection.connect(); // closed for idleness or a policy close: the user's press reconnects
    showAlert("Reconnecting… press again in a moment.");
    return;
  }
  if (!page.connected) {
    showAlert("Not connected to the server yet. Wait for “Ready” and try again.");
    return;
  }
  page.holding = true;
  page.startSent = false;
  showAlert("");
  player.unlock();

  // Barge-in: silence the reply at once, before the server even knows.
  let playedMs = null;
  if (REPLY_STATES.has(page.serverState) || player.playing) {
    playedMs = Math.round(player.stop());
    if (page.newestTurn > 0) turnView(page.newestTurn).cut = true;
  }
  render();

  try {
    await microphone.open();
  } catch (error) {
    page.holding = false;
    showAlert(error.message);
    // The reply was already silenced here: let the server cut it too.
    if (playedMs !== null) {
      connection.send({ action: "start_listening", played_ms: playedMs });
      connection.send({ action: "stop_listening" });
    }
    render();
    return;
  }

  const start = playedMs === null ? { action: "start_listening" } : { action: "start_listening", played_ms: playedMs };
  if (!connection.send(start)) return; // the socket closed meanwhile; handleDisconnect reset the page
  page.startSent = true;
  if (!page.holding) {
    // Released while the microphone was opening: the press was too short to record anything.
    connection.send({ action: "stop_listening" });
    page.startSent = false;
    return;
  }
  if (!page.streaming) await microphone.start();
  render(); // the microphone's analyser exists now
}

// ---- hands-free -------------------------------------------------------------------------

/** The user picked a mode on the switch (or a reconnect restores the stored choice). */
function chooseMode(mode) {
  player.unlock(); // a click is a gesture: audio may start from now on
  if (mode === HANDS_FREE) microphone.open().catch(() => {}); // ask for the microphone from the gesture
  if (!page.connected) return render(); // stored; sent when the server is back
  page.pendingMode = mode;
  connection.send({ action: "set_mode", mode });
  render();
}

/** Streams the microphone while the server says hands-free, stops when it says push-to-talk. */
async function syncStreaming() {
  const wanted = () => page.connected && page.mode === HANDS_FREE;
  if (wanted() === page.streaming) return render();
  if (!wanted()) {
    page.streaming = false;
    if (!page.holding) microphone.stop();
    return render();
  }
  try {
    await microphone.open();
  } catch (error) {
    showAlert(`${error.message} Hands-free needs the microphone.`);
    rememberMode(PUSH_TO_TALK);
    return chooseMode(PUSH_TO_TALK);
  }
  if (!wanted() || page.streaming) return;
  page.streaming = true;
  microphone.start(); // its audio context may wait for a gesture (see wakeAudio)
  setTimeout(() => {
    if (page.streaming && !microphone.running) showAlert(WAKE_TEXT);
  }, 500);
  render();
}

/** Browsers start audio only after a gesture: a page that comes back in hands-free mode (or that
 *  gets a timer's announcement) wakes its audio on the first click or key press. */
function wakeAudio() {
  player.unlock();
  if (page.streaming && !microphone.running) {
    microphone.start().then(() => {
      if (microphone.running && ui.alert.textContent === WAKE_TEXT) showAlert("");
    });
  }
}

function release() {
  if (!page.holding) return;
  page.holding = false;
  page.releasedAt = performance.now();
  if (!page.streaming) microphone.stop();
  if (page.startSent) {
    connection.send({ action: "stop_listening" });
    page.startSent = false;
  }
  render();
}

function newConversation() {
  if (page.holding) release();
  player.stop();
  page.turns = new Map();
  page.releasedAt = null;
  page.lastLatencyMs = null;
  page.playingTurn = null;
  ui.conversation.replaceChildren();
  ui.latency.textContent = "";
  showAlert("");
  if (connection.send({ action: "reset" })) page.awaitingReset = true;
  render();
}

/** Space is push-to-talk everywhere except on other controls, where it keeps its usual meaning. */
function isSpaceForTalking(event) {
  if (event.code !== "Space") return false;
  const target = event.target;
  return !(target instanceof HTMLElement && target !== ui.mic && target.closest("button, a, input, textarea, select"));
}

ui.mic.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  ui.mic.setPointerCapture(event.pointerId);
  press();
});
ui.mic.addEventListener("pointerup", release);
ui.mic.addEventListener("pointercancel", release);
ui.mic.addEventListener("lostpointercapture", release);
ui.mic.addEventListener("contextmenu", (event) => event.preventDefault()); // long touch
document.addEventListener("keydown", (event) => {
  if (!isSpaceForTalking(event)) return;
  event.preventDefault(); // no page scroll, no button click
  if (!event.repeat) press();
});
document.addEventListener("keyup", (event) => {
  if (!isSpaceForTalking(event)) return;
  event.preventDefault();
  release();
});
document.addEventListener("pointerdown", wakeAudio, true);
document.addEventListener("keydown", wakeAudio, true);
window.addEventListener("blur", release); // a key released in another window never reaches us
document.addEventListener("visibilitychange", () => document.hidden && release());
ui.newConversation.addEventListener("click", () => {
  newConversation();
  ui.mic.focus(); // so that Space talks next, instead of pressing "New conversation" again
});

// ---- read-only view for tests and the curious -----------------------------------------

window.voicebot = Object.freeze({
  get state() { return displayState(); },
  get serverState() { return page.serverState; },
  get connected() { return page.connected; },
  get sessionId() { return page.sessionId; },
  get lastLatencyMs() { return page.lastLatencyMs; },
  get turns() { return page.turns.size; },
  get playing() { return player.playing; },
  get playedMs() { return player.playedMs(); },
  get mode() { return page.mode; },
  get streaming() { return page.streaming; },
});

render();
connection.connect();
