// How fast frames are sent: the user's target, cut to the server's suggestion on slow_down and
// climbed back a step (a quarter, at least 1 FPS) after each quiet spell without drops. Pure:
// time is passed in.

export const MIN_FPS = 1;
export const MAX_FPS = 60;
export const RECOVER_AFTER_MS = 1500; // this long without a drop before each step up
export const RECOVER_FACTOR = 1.25;
export const RECOVER_MIN_STEP_FPS = 1;
// Frames sent and not yet answered, at most (after the first reply; one before it): the server
// holds one in inference and one in its mailbox, where a newer frame replaces the waiting one
// (reported dropped), so the freshest frame is analysed next. More would only pile up drops.
export const MAX_UNANSWERED = 3;

export function clampFps(value, fallback = 10) {
  const fps = Number(value);
  if (!Number.isFinite(fps) || fps <= 0) return fallback;
  return Math.min(MAX_FPS, Math.max(MIN_FPS, fps));
}

export class SendRate {
  constructor(target, now = 0) {
    this.target = clampFps(target);
    this.fps = this.target;
    this.lastTrouble = now;
  }

  /** The server's slow_down: never faster than what it says it sustained. */
  slowDown(suggestedFps, now) {
    this.fps = Math.min(this.fps, clampFps(suggestedFps, this.fps));
    this.lastTrouble = now;
  }

  dropped(now) {
    this.lastTrouble = now;
  }

  /** Called on every send tick; returns the rate to use now. */
  tick(now) {
    if (this.fps < this.target && now - this.lastTrouble >= RECOVER_AFTER_MS) {
      const stepped = Math.max(this.fps * RECOVER_FACTOR, this.fps + RECOVER_MIN_STEP_FPS);
      this.fps = Math.min(this.target, Math.round(stepped * 100) / 100);
      this.lastTrouble = now;
    }
    return this.fps;
  }

  intervalMs() {
    return 1000 / this.fps;
  }
}
