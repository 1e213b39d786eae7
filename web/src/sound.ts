// The new-order chime: two short tones from the Web Audio API (no file to fetch). Browsers let a
// page play sound only after someone has touched it: a board reopened without a tap says so, and
// one tap turns the sound on.

import { signal } from "@preact/signals";

let context: AudioContext | null = null;

/** The browser is holding the sound back until the next tap. */
export const soundBlocked = signal(false);

function audio(): AudioContext | null {
  try {
    context ??= new AudioContext();
  } catch {
    // No audio device: the banner still alerts.
  }
  return context;
}

export function chime(): void {
  const ctx = audio();
  if (!ctx) return;
  if (ctx.state !== "running") {
    soundBlocked.value = true;
    unblock();
  }
  const start = ctx.currentTime;
  [880, 660].forEach((frequency, i) => {
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.3, start + i * 0.2);
    gain.gain.exponentialRampToValueAtTime(0.001, start + i * 0.2 + 0.18);
    tone.connect(gain).connect(ctx.destination);
    tone.start(start + i * 0.2);
    tone.stop(start + i * 0.2 + 0.2);
  });
}

/** A tap: lets the sound play from now on. */
export function unblock(): void {
  const ctx = audio();
  if (!ctx) return;
  void ctx.resume().then(
    () => (soundBlocked.value = false),
    () => undefined,
  );
}
