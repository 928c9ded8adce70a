import { EventEmitter } from 'node:events';
import { DeskdError } from '../errors.js';

/** The kill switch's state. */
export interface HaltState {
  halted: boolean;
  /** Why it was halted (free text), null when running. */
  reason: string | null;
  /** Who halted or resumed last: `agent`, `operator`, `pointer-corner`, … */
  by: string | null;
  /** When the state last changed (epoch ms). */
  since: number;
}

interface HaltEvents {
  halt: [HaltState];
  resume: [HaltState];
}

/**
 * The kill switch (`POST /v1/halt`, `POST /v1/resume`, the pointer held in a screen corner).
 *
 * In-flight work takes {@link HaltSwitch.signal} when it starts and passes it down (waits, typing
 * chunks, approval waits). `halt()` aborts that signal, so every piece of work started before the halt
 * sees `signal.aborted` and stops; the aborted signal stays current while halted (work started then
 * is cancelled at once), and `resume()` installs a fresh AbortController.
 *
 * Events: `halt` and `resume`, with the new {@link HaltState}. Listeners run synchronously inside
 * `halt()` / `resume()`.
 */
export class HaltSwitch extends EventEmitter<HaltEvents> {
  private controller = new AbortController();
  private st: HaltState = { halted: false, reason: null, by: null, since: Date.now() };

  /** True while halted. */
  get halted(): boolean {
    return this.st.halted;
  }

  /** A copy of the current state. */
  get state(): HaltState {
    return { ...this.st };
  }

  /** The current cancellation signal: aborted (with a `HALTED` DeskdError as reason) once halted. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Engage the switch: abort in-flight work and refuse new work until `resume()`. Idempotent: halting
   * while halted keeps the first reason and emits nothing.
   * @returns true when this call changed the state.
   */
  halt(by: string, reason = 'halt requested'): boolean {
    if (this.st.halted) return false;
    this.st = { halted: true, reason, by, since: Date.now() };
    this.controller.abort(new DeskdError('HALTED', `Halted by ${by}: ${reason}`));
    this.emit('halt', this.state);
    return true;
  }

  /**
   * Release the switch (operator only; the HTTP layer checks the credential). Idempotent.
   * @returns true when this call changed the state.
   */
  resume(by: string): boolean {
    if (!this.st.halted) return false;
    this.controller = new AbortController();
    this.st = { halted: false, reason: null, by, since: Date.now() };
    this.emit('resume', this.state);
    return true;
  }

  /** @throws DeskdError `HALTED` (423) while halted. */
  assertRunning(): void {
    if (this.st.halted) throw new DeskdError('HALTED', `Halted by ${this.st.by}: ${this.st.reason}`);
  }
}
