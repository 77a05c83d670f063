// An alarm that cannot be missed: WebAudio beeps and vibration, repeated until stopped.

let audio = null;

/** Browsers allow sound only after a user gesture: call this from one (any tap or key). */
export function unlockAudio() {
  try {
    audio ??= new AudioContext();
    audio.resume().catch(() => {});
  } catch { /* no WebAudio: vibration and the screen still alert */ }
}

/** Two short beeps: one ring, or a console alert. */
export function beep() {
  if (!audio) unlockAudio();
  if (!audio) return;
  const now = audio.currentTime;
  for (const offset of [0, 0.35]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + offset);
    osc.stop(now + offset + 0.3);
  }
}

export class Ringer {
  constructor(everyMs = 1500) {
    this.everyMs = everyMs;
    this.timer = null;
  }

  get ringing() {
    return this.timer !== null;
  }

  /** Ring now and every ``everyMs``; ``onRing`` runs with each ring (e.g. to update a countdown). */
  start(onRing) {
    if (this.timer !== null) return;
    const once = () => {
      beep();
      if (navigator.vibrate) navigator.vibrate([400, 200, 400]);
      onRing?.();
    };
    once();
    this.timer = setInterval(once, this.everyMs);
    document.body.classList.add("ringing");
  }

  stop() {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    if (navigator.vibrate) navigator.vibrate(0);
    document.body.classList.remove("ringing");
  }
}
