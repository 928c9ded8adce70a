import { join } from 'node:path';
import type { Logger } from 'pino';
import type { WindowInfo } from '../platform/types.js';
import type { PerceptionMask } from '../perception/mask.js';
import { Recorder, type RecorderObserverPort, type Submitter } from './recorder.js';
import { Replayer, type TaskStarter } from './replayer.js';
import { RecordingStore, storeLimitsFromEnv, type StoreLimits } from './store.js';
import type { Recording } from './types.js';

export { Recorder, ownerOfActor, type StartRecording, type Submitter } from './recorder.js';
export { Replayer, type StartReplay, type TaskStarter } from './replayer.js';
export { RecordingStore, IMAGE_NAME, DEFAULT_STORE_LIMITS, storeLimitsFromEnv, type RecordingSummary, type StoreLimits, type EvictionReason } from './store.js';
export type { Recording, ReplayEvent, ReplayView, Divergence } from './types.js';

/** What the replay service needs from the observer (the daemon's `Observer` fits). */
export interface ReplayObserver extends RecorderObserverPort {
  /** The visible windows and the policy's perception mask of the moment. */
  windowsAndMask(): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }>;
}

/** The recorder, the replayer and their folder, built once per daemon. */
export interface ReplayService {
  store: RecordingStore;
  recorder: Recorder;
  replayer: Replayer;
  /**
   * A recording as served to clients: steps whose app the policy masks **now** lose their thumbnails and
   * every text of their fingerprint (the recording may predate the mask). See {@link redactMasked}.
   */
  view(rec: Recording): Promise<Recording>;
  /** Whether an image of a recording may be served now (its step's app is not masked). */
  imageAllowed(rec: Recording, name: string): Promise<boolean>;
}

/** Options of {@link createReplayService}. */
export interface ReplayServiceOptions {
  /** deskd's config dir; recordings go to `<configDir>/recordings`. */
  configDir: string;
  observer: ReplayObserver;
  /** The daemon's executor (unwrapped: replays are never recorded). */
  executor: Submitter;
  ocr: boolean;
  /** The task runner: records every task (its goal and end) and takes over diverged replays with `onDivergence: "model"`. */
  tasks?: TaskStarter & { get(id: string): { goal: string }; wait(id: string): Promise<unknown> };
  /** Caps and eviction; unset ones come from the environment ({@link storeLimitsFromEnv}), then the defaults. */
  limits?: Partial<StoreLimits>;
  /** The environment read for caps (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  postconditionTimeoutMs?: number;
}

/**
 * Build the replay service. Give `recorder.tap(executor)` to the task runner (and to the HTTP app, via
 * `AppDeps.replay`) so tasks and recording sessions are recorded. Evicts what the caps ask for right away
 * (in the background; see `RecordingStore.evict`) and whenever a recording starts.
 * @throws DeskdError `VALIDATION_FAILED` for a bad `DESKD_RECORDINGS_*` variable.
 */
export function createReplayService(o: ReplayServiceOptions): ReplayService {
  const limits = { ...storeLimitsFromEnv(o.env ?? process.env), ...o.limits };
  const store = new RecordingStore(join(o.configDir, 'recordings'), limits, (id, reason) => o.logger?.info({ recordingId: id, reason }, 'recording evicted'));
  void store.evict().catch((e) => o.logger?.warn({ err: e }, 'evicting recordings failed'));
  const tasks = o.tasks;
  const recorder = new Recorder({
    observer: o.observer,
    store,
    ocr: o.ocr,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(tasks
      ? {
          taskGoal: (id: string) => {
            try {
              return tasks.get(id).goal;
            } catch {
              return null;
            }
          },
          onTaskEnd: (id: string, end: () => void) => void tasks.wait(id).then(end, end),
        }
      : {}),
  });
  const replayer = new Replayer({
    observer: o.observer,
    actions: o.executor,
    store,
    ocr: o.ocr,
    ...(tasks ? { tasks } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.postconditionTimeoutMs !== undefined ? { postconditionTimeoutMs: o.postconditionTimeoutMs } : {}),
  });
  const maskNow = async () => (await o.observer.windowsAndMask()).mask;
  return {
    store,
    recorder,
    replayer,
    async view(rec) {
      return redactMasked(rec, await maskNow());
    },
    async imageAllowed(rec, name) {
      const mask = await maskNow();
      const step = rec.steps.find((s) => s.thumbnails.before === name || s.thumbnails.after === name);
      return !!step && !stepMasked(step, mask);
    },
  };
}

/** Whether a step's app (its target's, or its window point's) is masked by `mask`. */
export function stepMasked(step: Recording['steps'][number], mask: PerceptionMask): boolean {
  const app = step.fingerprint?.app ?? step.point?.app ?? null;
  const title = step.fingerprint?.windowTitle ?? step.point?.windowTitle ?? null;
  if (app === null) return false;
  return mask.apps.includes(app.toLowerCase()) || mask.hides?.(app, title) === true;
}

/**
 * A copy of `rec` in which every step whose app `mask` masks has no thumbnails, no outcome, no
 * postconditions, and a fingerprint without name, value, texts, labels, path or window title.
 */
export function redactMasked(rec: Recording, mask: PerceptionMask): Recording {
  const out = structuredClone(rec);
  for (const s of out.steps) {
    if (!stepMasked(s, mask)) continue;
    s.thumbnails = { before: null, after: null };
    s.outcome = null;
    s.postconditions = [];
    if (s.fingerprint) {
      const f = s.fingerprint;
      s.fingerprint = { ...f, windowTitle: null, name: '', text: '', labels: [], path: [] };
      delete s.fingerprint.value;
    }
    if (s.point) s.point = { ...s.point, windowTitle: null };
  }
  return out;
}
