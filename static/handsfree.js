// Hands-free switch (issue 12): the "Hold to talk" / "Hands-free" choice in the dock, remembered
// in localStorage, and the live state a hands-free user sees (listening, hearing you, thinking,
// speaking). The server owns the mode: app.js sends `set_mode` and shows what the server's
// status says; this module only draws the switch and words the state.

export const PUSH_TO_TALK = "push_to_talk";
export const HANDS_FREE = "hands_free";
const STORAGE_KEY = "voicebot.mode";

/** The mode the user chose last time (push-to-talk when nothing, or storage is off). */
export function storedMode() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) === HANDS_FREE ? HANDS_FREE : PUSH_TO_TALK;
  } catch {
    return PUSH_TO_TALK;
  }
}

/** Remembers the user's choice for the next visit. */
export function rememberMode(mode) {
  try {
    window.localStorage.setItem(STORAGE_KEY, mode);
  } catch {
    // private mode or storage disabled: the choice lasts for this page only
  }
}

export class ModeSwitch {
  /**
   * @param {HTMLElement} root the radio group holding <input type=radio name=mode> buttons
   * @param {(mode: string) => void} onChoose called when the user picks a mode
   */
  constructor(root, onChoose) {
    this.inputs = [...root.querySelectorAll('input[name="mode"]')];
    for (const input of this.inputs) {
      input.addEventListener("change", () => {
        if (!input.checked) return;
        rememberMode(input.value);
        onChoose(input.value);
      });
    }
  }

  /** Checks the button of `mode` (what the server says, or the choice on its way to it). */
  show(mode) {
    for (const input of this.inputs) {
      const checked = input.value === mode;
      if (input.checked !== checked) input.checked = checked;
    }
  }
}

/** The hands-free live state: `listening` (waiting for the user), `hearing` (the user speaks),
 *  `thinking` or `speaking`. */
export function liveState(serverState, { holding, playing }) {
  if (holding || serverState === "listening") return "hearing";
  if (playing || serverState === "speaking") return "speaking";
  if (serverState === "transcribing" || serverState === "thinking") return "thinking";
  return "listening";
}

export const LIVE_TEXT = {
  listening: "Listening… just talk",
  hearing: "Hearing you…",
  thinking: "Thinking…",
  speaking: "Speaking… talk to interrupt",
};
