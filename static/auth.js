// Access: the shared token (when the server requires one) and the words for the server's close codes.
// The token comes from the URL fragment (#token=…, never sent to any server by the browser) or from a
// prompt when the server answers 401; it is kept in sessionStorage for this tab only and sent as the
// "token.<value>" WebSocket subprotocol (docs/protocol.md, "Authentication").

const STORAGE_KEY = "voicebot-token";
const PROTOCOL = "voicebot";

/** The token from #token=… (then removed from the address bar) or from earlier in this tab. */
export function initialToken(location, history) {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    sessionStorage.setItem(STORAGE_KEY, fromUrl.trim());
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(STORAGE_KEY);
}

/** WebSocket subprotocols: always "voicebot", plus the token when there is one. */
export function subprotocols(token) {
  return token ? [PROTOCOL, `token.${token}`] : [PROTOCOL];
}

/** Whether the server refuses this token (or its absence): GET /auth answers 204 or 401. */
export async function tokenRefused(token) {
  try {
    const response = await fetch("/auth", { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    return response.status === 401;
  } catch (error) {
    return false; // the server is down: not a token problem
  }
}

/** Ask the user for the token; returns it (remembered) or null when they cancel. */
export function askForToken(wrong) {
  const question = wrong
    ? "That token was not accepted. Enter the voicebot server's token:"
    : "This voicebot server needs a token. Enter it (or open the page as /#token=…):";
  const answer = window.prompt(question);
  if (!answer || !answer.trim()) return null;
  sessionStorage.setItem(STORAGE_KEY, answer.trim());
  return answer.trim();
}

/**
 * What to tell the user about a close the server chose, and whether to reconnect by itself.
 * null: an ordinary disconnect (network, server gone) handled by the usual backoff.
 */
export function serverClose(code, reason) {
  const why = reason || "";
  if (code === 1013) return { text: why || "The server is busy. Trying again shortly…", retry: true };
  if (code === 1001) return { text: why || "The server is restarting. Reconnecting shortly…", retry: true };
  if (code === 1008) return { text: `The server closed the connection: ${why || "policy violation"} Press the button to reconnect.`, retry: false };
  if (code === 1000 && why) return { text: why, retry: false };
  return null;
}
