import type { Platform } from '../platform/types.js';

/**
 * The platform methods that send input: pointer, keyboard, accessibility actions and value changes, and the
 * window focus changes deskd makes itself (`windows.activate`, `windows.clickToFocus`: a focus change moves
 * the active window and its states, like a click).
 */
const INPUT_METHODS = {
  windows: ['activate', 'clickToFocus'],
  mouse: ['move', 'down', 'up', 'wheel', 'scrollPoints'],
  keyboard: ['down', 'up', 'type'],
  accessibility: ['doAction', 'setValue'],
} as const;

/**
 * The same platform, with `before` called before and `after` called after (also when it throws) every
 * input method ({@link INPUT_METHODS}: `mouse.move/down/up/wheel/scrollPoints`, `keyboard.down/up/type`,
 * `accessibility.doAction/setValue`, `windows.activate/clickToFocus`); everything else passes through, methods bound to their object. Used by
 * the observer (to know an action happened: `Observer.tapPlatform`) and by the ref verifier (to drop the
 * backend's kept tree after input: `refs.ts` `resetTreeAfterInput`).
 */
export function tapInput(p: Platform, hooks: { before?: () => void; after?: () => void }): Platform {
  const around = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    hooks.before?.();
    try {
      return await fn(...a);
    } finally {
      hooks.after?.();
    }
  };
  const wrap = <T extends object>(o: T, names: readonly string[]): T => {
    const wrapped = new Map<string | symbol, unknown>();
    for (const n of names) {
      const f = (o as Record<string, unknown>)[n];
      if (typeof f === 'function') wrapped.set(n, around((f as (...a: unknown[]) => Promise<unknown>).bind(o)));
    }
    return new Proxy(o, {
      get(target, prop) {
        if (wrapped.has(prop)) return wrapped.get(prop);
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  const mouse = wrap(p.mouse, INPUT_METHODS.mouse);
  const keyboard = wrap(p.keyboard, INPUT_METHODS.keyboard);
  const accessibility = wrap(p.accessibility, INPUT_METHODS.accessibility);
  const windows = wrap(p.windows, INPUT_METHODS.windows);
  return new Proxy(p, {
    get(target, prop, receiver) {
      if (prop === 'windows') return windows;
      if (prop === 'mouse') return mouse;
      if (prop === 'keyboard') return keyboard;
      if (prop === 'accessibility') return accessibility;
      return Reflect.get(target, prop, receiver);
    },
  });
}
