// Tool chips (issue 13) and the per-turn timing breakdown (issue 9) in a reply bubble.
// A `tool_call` adds a chip (tool name and arguments); its `tool_result` fills in the result
// and marks the chip ok or failed. Arguments and results come from the user's words and from
// tools (MCP servers included), so everything is written with textContent, never innerHTML.

/** The chip list of a reply bubble, created under its text on first use. */
function chipList(reply) {
  if (!reply.tools) {
    reply.tools = document.createElement("ul");
    reply.tools.className = "tools";
    reply.tools.setAttribute("aria-label", "Tools used");
    reply.text.after(reply.tools);
  }
  return reply.tools;
}

function findChip(reply, id) {
  if (!reply.tools) return null;
  return [...reply.tools.children].find((chip) => chip.dataset.toolId === id) || null;
}

/** Shows a `tool_call` as a chip in `reply` ({element, text} of a reply bubble). */
export function addToolCall(reply, event) {
  const id = String(event.id);
  if (findChip(reply, id)) return;
  const chip = document.createElement("li");
  chip.className = "chip";
  chip.dataset.toolId = id;
  chip.dataset.tool = String(event.name);
  chip.dataset.status = "running";
  const name = document.createElement("span");
  name.className = "chip-name";
  name.textContent = String(event.name);
  const args = document.createElement("span");
  args.className = "chip-args";
  args.textContent = formatArguments(event.arguments);
  const result = document.createElement("span");
  result.className = "chip-result";
  chip.append(name, args, result);
  chip.title = event.source === "intent" ? "Answered by a sentence template" : "Called by the model";
  chipList(reply).append(chip);
}

/** Fills in a chip with its `tool_result` (a result without its call still gets a chip). */
export function addToolResult(reply, event) {
  const id = String(event.id);
  if (!findChip(reply, id)) addToolCall(reply, { id, name: event.name, arguments: {} });
  const chip = findChip(reply, id);
  chip.dataset.status = event.ok ? "ok" : "failed";
  const text = event.ok ? String(event.text ?? "") : `failed: ${event.error || event.text || "no reason given"}`;
  chip.querySelector(".chip-result").textContent = text;
}

/** {"expression": "12*7"} -> "expression: 12*7"; {} -> "". */
export function formatArguments(args) {
  if (!args || typeof args !== "object") return "";
  return Object.entries(args)
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}

/** A turn's `metrics` timings as "ASR 60 · LLM 48 · TTS 58 ms": recognition, the model's first
 *  token, the voice's first audio (the stages on the way to the first sound); absent ones skipped. */
export function formatBreakdown(timings) {
  if (!timings || typeof timings !== "object") return "";
  const parts = [
    ["ASR", timings.asr_ms],
    ["LLM", timings.llm_first_token_ms],
    ["TTS", timings.tts_first_audio_ms],
  ]
    .filter(([, ms]) => Number.isFinite(ms))
    .map(([label, ms]) => `${label} ${Math.round(ms)}`);
  return parts.length ? `${parts.join(" · ")} ms` : "";
}

/** A tooltip listing every timing of the turn. */
export function describeTimings(timings) {
  const names = {
    asr_ms: "speech recognition",
    llm_first_token_ms: "model, first word",
    llm_ms: "model, whole reply",
    first_segment_ms: "first spoken segment ready",
    tts_first_audio_ms: "voice, first audio",
    tts_ms: "voice, all audio",
    first_audio_ms: "end of speech to first audio sent",
  };
  return Object.entries(timings || {})
    .filter(([, ms]) => Number.isFinite(ms))
    .map(([key, ms]) => `${names[key] || key}: ${Math.round(ms)} ms`)
    .join("\n");
}
