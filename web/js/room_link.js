// Keeping a consult's call alive while its signaling socket comes and goes (used by room.js).
//
// Signaling is not media: the RTCPeerConnection runs peer to peer and keeps its media while the room
// socket reconnects. This module holds the three pieces of that:
// - afterRejoin: whether a connection survives a rejoin of either side (the table of signaling/rejoin.py);
// - SocketWatch: an app-level heartbeat, since a browser cannot send websocket pings: a socket that has
//   said nothing for two intervals is taken for dead (a silent link sends no FIN and no RST);
// - IceWatch: a connection whose ICE is "disconnected" beyond a short grace, or "failed", needs an ICE
//   restart; a short blip recovers by itself and costs nothing.

/** Grace for ICE "disconnected" before a restart (a consent check or two may be lost on a weak link). */
export const ICE_DISCONNECTED_GRACE_MS = 3000;

/**
 * What to do with our connection to a member that appears again: "keep" it, "offer" anew (we are the
 * offerer), "ask" the offerer for a restart (it believes the pair still works), or "wait" for its offer.
 * @param {{hasLink: boolean, connected: boolean, sameGeneration: boolean, resumed: boolean, offerer: boolean}} pair
 * @returns {"keep" | "offer" | "ask" | "wait"}
 */
export function afterRejoin({hasLink, connected, sameGeneration, resumed, offerer}) {
  const otherSideKept = resumed || (hasLink && sameGeneration);
  if (hasLink && connected && otherSideKept) return "keep";
  if (offerer) return "offer";
  return otherSideKept ? "ask" : "wait";
}

/**
 * Sends {"type": "ping"} every half interval on an open socket; calls onSilent once if nothing arrives for two
 * intervals (so a silent socket is given up within two and a half intervals).
 */
export class SocketWatch {
  /**
   * @param {WebSocket} ws
   * @param {number} intervalMs
   * @param {() => void} onSilent
   */
  constructor(ws, intervalMs, onSilent) {
    this.ws = ws;
    this.intervalMs = intervalMs;
    this.onSilent = onSilent;
    this.lastHeard = Date.now();
    this.timer = setInterval(() => this.tick(), intervalMs / 2);
  }

  /** Anything received proves the link is alive. */
  heard() {
    this.lastHeard = Date.now();
  }

  tick() {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard >= 2 * this.intervalMs) {
      this.stop();
      this.onSilent();
      return;
    }
    this.ws.send(JSON.stringify({type: "ping"}));
  }

  stop() {
    clearInterval(this.timer);
  }
}

/** Calls onLost(pc) when pc's ICE is "failed", or "disconnected" for longer than graceMs. */
export class IceWatch {
  /**
   * @param {RTCPeerConnection} pc
   * @param {(pc: RTCPeerConnection) => void} onLost
   * @param {number} graceMs
   */
  constructor(pc, onLost, graceMs = ICE_DISCONNECTED_GRACE_MS) {
    this.timer = null;
    pc.addEventListener("iceconnectionstatechange", () => {
      clearTimeout(this.timer);
      if (pc.iceConnectionState === "failed") onLost(pc);
      else if (pc.iceConnectionState === "disconnected") {
        this.timer = setTimeout(() => { if (pc.iceConnectionState === "disconnected") onLost(pc); }, graceMs);
      }
    });
  }
}
