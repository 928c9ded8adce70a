/**
 * deskd's error codes: one table, one meaning each. Every HTTP error body is
 * `{"error": {"code": "SCREAMING_SNAKE", "message": "..."}}` with the status given here.
 *
 * The table is the source of `docs/errors.md` (a test checks that every code is documented there once),
 * in the manner of fastify's `FST_ERR_*` table and the MCP SDK's `ErrorCode` enum.
 */
export const ERROR_CODES = {
  /** The request body is not valid JSON. */
  INVALID_JSON: { status: 400, meaning: 'The request body is not valid JSON.' },
  /** The request does not match the route's schema (missing or mistyped fields). */
  VALIDATION_FAILED: { status: 400, meaning: 'The request does not match the schema: a field is missing, mistyped or out of range.' },
  /** An action's `type` is not one deskd knows. */
  UNKNOWN_ACTION: { status: 400, meaning: "The action's `type` is not a known action." },
  /** A point lies outside every display. */
  POINT_OFF_SCREEN: { status: 400, meaning: 'A coordinate lies outside every display.' },
  /** A key name in `keypress` is not known. */
  UNKNOWN_KEY: { status: 400, meaning: 'A key name in `keys` is not a known key.' },
  /** A character of a `type` / `set_value` text cannot be typed on this platform; nothing was typed. */
  TEXT_NOT_TYPEABLE: { status: 400, meaning: 'A character of the text cannot be typed on this platform (X11: a control character other than newline and tab, a lone surrogate, U+FFFE/U+FFFF, or a character missing from the keyboard layout when the keymap has no free keycode to bind it to); nothing was typed. `details` has `character` and `codePoint`.' },
  /** The policy file is not valid YAML or does not match the policy schema. */
  POLICY_INVALID: { status: 400, meaning: 'The policy file is not valid YAML or does not match the policy schema; the message names the field. At start-up the daemon refuses to run; on reload the last good policy stays in force.' },
  /** A credential was put in the URL's query string (`?token=`, `?access_token=`, ...); it is refused even when right. */
  TOKEN_IN_URL: { status: 400, meaning: 'A credential was sent in the URL query (`token`, `access_token`, `api_key`, ...). URLs end up in logs, history and Referer headers: send `Authorization: Bearer <token>` instead. The request is refused even when the token is right.' },
  /** `--host` names a non-loopback address without `--allow-remote`. */
  REMOTE_BIND_REFUSED: { status: 400, meaning: 'The daemon was asked to listen on an address that is not loopback; it refuses unless `--allow-remote` is given too.' },
  /** The policy requires a `reason` on every action and the request carried none. */
  REASON_REQUIRED: { status: 400, meaning: 'A policy layer has `requireReason: true` and the action (or batch) carried no `reason` (what the agent is trying to do, at most 500 characters); nothing was dispatched.' },
  /** Missing or wrong bearer token. */
  UNAUTHORIZED: { status: 401, meaning: 'The `Authorization: Bearer <token>` header is missing or wrong.' },
  /** The policy engine refused the request. */
  POLICY_DENIED: { status: 403, meaning: 'The permission policy denies this request; the message names the rule.' },
  /** The OS refused the Accessibility permission (macOS TCC). */
  PERMISSION_DENIED_ACCESSIBILITY: { status: 403, meaning: 'The OS has not granted the Accessibility permission to the process that needs it.' },
  /** The OS refused the Screen Recording permission (macOS TCC). */
  PERMISSION_DENIED_SCREEN_RECORDING: { status: 403, meaning: 'The OS has not granted the Screen Recording permission to the process that needs it.' },
  /** The credential used is valid but not allowed on this route (the agent token on an operator route). */
  FORBIDDEN_FOR_CREDENTIAL: { status: 403, meaning: 'The credential is valid but not allowed here: only the operator token may decide approvals, resume, read the audit log, manage agents or change the policy; an agent with the `observer` role may only screenshot, observe, find, read and wait (every acting route and MCP tool is refused).' },
  /** The Host or Origin header is not this daemon's loopback address, or a cookie-authenticated request lacks the console's CSRF header. */
  ORIGIN_NOT_ALLOWED: { status: 403, meaning: 'The `Host` or `Origin` header is not a loopback address of this daemon (DNS-rebinding and cross-site protection), or a console (cookie) request that changes state lacks the `X-Deskd-Console: 1` header.' },
  /** The workspace belongs to another agent (issue 22). */
  WORKSPACE_FORBIDDEN: { status: 403, meaning: 'The workspace belongs to another agent: only the agent it is bound to (and the operator) may observe, act in, launch apps into or delete it. `details.workspace` names it.' },
  /** No route matches. */
  NOT_FOUND: { status: 404, meaning: 'No route matches the method and path.' },
  /** The requested display id does not exist. */
  DISPLAY_NOT_FOUND: { status: 404, meaning: 'No display has the requested id.' },
  /** The observation id is unknown or has expired. */
  OBSERVATION_NOT_FOUND: { status: 404, meaning: 'The observation id is unknown or has expired from the store.' },
  /** The ref does not exist in the given observation. */
  REF_NOT_FOUND: { status: 404, meaning: 'The ref does not exist in the given observation.' },
  /** No element of a fresh observation matches the action's `target: {text}` / `{role, name}` well enough. */
  TARGET_NOT_FOUND: { status: 404, meaning: 'No element of a fresh observation matches the target (`{text}` or `{role, name}`) of an action with at least the locator threshold score (0.3: exact > case-insensitive > contains > fuzzy); `details.candidates` lists the nearest ones. Nothing was dispatched. `POST /v1/find` answers a list instead.' },
  /** No visible top-level window has the id (`focus_window`). */
  WINDOW_NOT_FOUND: { status: 404, meaning: 'No visible top-level window has this id (`focus_window`; ids come from `GET /v1/windows`); nothing was dispatched.' },
  /** `since` names a read that is unknown or has expired (issue 16, `POST /v1/read`). */
  READ_NOT_FOUND: { status: 404, meaning: 'The read id given as `since` is unknown or has expired from the store (the last 32 reads are kept); read again without `since`.' },
  /** `POST /v1/read` found no table to scroll, or nothing near the `near` text. */
  TABLE_NOT_FOUND: { status: 404, meaning: 'The read found no table to scroll (`scroll: true`), or no element shows the `near` text; nothing was scrolled. Tables in windows the policy masks are never seen.' },
  /** The approval id is unknown (never issued, or forgotten). */
  APPROVAL_NOT_FOUND: { status: 404, meaning: 'No pending or recently decided approval has this id.' },
  /** The task id is unknown (never started, or forgotten after the runner's history cap). */
  TASK_NOT_FOUND: { status: 404, meaning: 'No task has this id (never started, or evicted from the task history).' },
  /** The recording id is unknown (never made, or deleted). */
  RECORDING_NOT_FOUND: { status: 404, meaning: 'No recording has this id (never made, or deleted), or the recording has no such image.' },
  /** The replay id is unknown (never started, or evicted from the replay history). */
  REPLAY_NOT_FOUND: { status: 404, meaning: 'No replay has this id (never started, or evicted from the replay history).' },
  /** The action batch id is unknown or has expired. */
  ACTION_NOT_FOUND: { status: 404, meaning: 'No action batch has this id (or it has expired from the journal).' },
  /** The workspace id is unknown (never created, or deleted). */
  WORKSPACE_NOT_FOUND: { status: 404, meaning: 'No workspace has this id (never created, or deleted); `GET /v1/workspaces` lists them.' },
  /** The targeted element moved, vanished or changed since it was observed. */
  STALE_REF: { status: 409, meaning: 'The targeted element moved, vanished or changed name since the observation; nothing was dispatched.' },
  /** The targeted element has no on-screen bounds to aim at. */
  ELEMENT_NOT_ACTIONABLE: { status: 409, meaning: 'The targeted element has no on-screen bounds or no such action.' },
  /** Another client holds the controller lease; only observing is allowed until it expires or is released. */
  LEASE_HELD: { status: 409, meaning: 'Another client holds the controller lease (`POST /v1/lease`): actions from other clients are refused until it is released or expires; observing stays allowed. `details` has `expiresAt` (epoch ms).' },
  /** The approval was already decided (by the operator or by its timeout); decisions are not replayable. */
  APPROVAL_ALREADY_DECIDED: { status: 409, meaning: 'The approval was already decided (approved, denied or timed out); a second decision is refused.' },
  /** The window/element under the action is no longer the one the policy decision was made on. */
  TARGET_CHANGED: { status: 409, meaning: 'The focused window, or the window or element under the point, changed since the policy decision; nothing (more) was dispatched.' },
  /** A task used its step budget without the model finishing. */
  /** This client already has a recording running. */
  RECORDING_ACTIVE: { status: 409, meaning: 'This client (credential and `X-Deskd-Client`) already has a recording running; stop it first (`POST /v1/recordings/:id/stop`). `details.recordingId` names it.' },
  /** A replay found the screen different from the recording. */
  REPLAY_DIVERGED: { status: 409, meaning: 'A replayed step found no clear target (no candidate, a weak match or two close candidates) or no window for its point; the replay stopped there and nothing after it was dispatched. `divergence` has `{step, expected, seen, candidates}`.' },
  /** A replayed step ran, but what it was to bring about did not happen. */
  REPLAY_POSTCONDITION_FAILED: { status: 409, meaning: 'A replayed step ran but its postconditions (a text or element appears or is gone, an element state or value, a window shown or gone; or a recorded wait) did not all hold in time; the replay stopped there and nothing after it was dispatched. `divergence.expected.missing` names them, `divergence.seen.missing` what the screen showed instead.' },
  /** A recording or the recordings folder reached a size cap. */
  RECORDING_LIMIT: { status: 413, meaning: 'A recording reached its step or byte cap, or the recordings folder its count cap with no recording it may evict (only task recordings are, unless `DESKD_RECORDINGS_EVICT=all`); the step was not recorded (or no recording was started). Delete old recordings or stop this one.' },
  /** A replay needs a parameter that was not given. */
  REPLAY_PARAM_MISSING: { status: 400, meaning: 'A replayed step types a `{{name}}` parameter that `params` does not give and the recording has no value for; nothing of that step was dispatched. `details.param` names it.' },
  STEP_LIMIT_REACHED: { status: 422, meaning: 'The task used all its steps (`maxSteps`) before the model called `done` or gave a final answer.' },
  /** The body is larger than allowed. */
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The request body exceeds the size limit.' },
  /** The body's content type is not `application/json`. */
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The request body is not `application/json`.' },
  /** The kill switch is engaged. 423 Locked: the daemon is locked until the operator resumes. */
  HALTED: { status: 423, meaning: 'The kill switch is engaged: queued and in-flight actions were cancelled and new ones are refused until the operator resumes (`POST /v1/resume`).' },
  /** The screen is locked; no action may run. */
  SCREEN_LOCKED: { status: 423, meaning: 'The screen is locked; no action runs until it is unlocked by a person.' },
  /** Too many actions: the policy's token bucket (`limits.actionsPerSecond`, `limits.burst`) is empty. */
  RATE_LIMITED: { status: 429, meaning: 'The action rate limit (`limits.actionsPerSecond` with `limits.burst`) is exceeded; `details.retryAfterMs` says when to retry.' },
  /** A per-credential capacity cap is reached (concurrent observes); the operator's credential has its own budget. */
  TOO_MANY_REQUESTS: { status: 429, meaning: 'This credential already has as many requests of this kind in flight as allowed (screenshots, observes, find, wait and MCP perceiving tools: 8 at once per credential by default); nothing was started. `details` has `limit`, `inFlight` and `retryAfterMs`. The operator credential has its own budget, so an agent cannot use it up.' },
  /** A workspace cap is reached: the daemon's, the credential's, or a workspace's number of apps. */
  WORKSPACE_LIMIT: { status: 429, meaning: 'A workspace cap is reached (the policy\'s `workspaces.max` for the daemon, `workspaces.perAgent` for an agent credential, or `workspaces.maxApps` apps in one workspace); nothing was started. Delete a workspace or end an app first. `details` has `limit`.' },
  /** The actor already has the maximum number of actions waiting for the operator's approval. */
  TOO_MANY_PENDING_APPROVALS: { status: 429, meaning: 'The actor already has as many actions waiting for the operator\'s approval as allowed; this one was refused (not queued) and nothing was dispatched. Wait for the operator to decide, or for the pending ones to time out. `details` has `limit` and `pending`.' },
  /** Screen capture failed. */
  CAPTURE_FAILED: { status: 500, meaning: 'The screen could not be captured, or the window list the perception policy needs to mask it could not be read (nothing is served unmasked).' },
  /** OCR failed. */
  OCR_FAILED: { status: 500, meaning: 'Text recognition failed.' },
  /** Dispatching an input event failed part-way; the message says how far it got. */
  ACTION_FAILED: { status: 500, meaning: 'The OS refused or failed an input event; the message says which action of the batch failed.' },
  /** The audit record could not be written durably; the action was not dispatched (fail closed). */
  AUDIT_WRITE_FAILED: { status: 500, meaning: 'The audit log could not be appended and synced; the action was refused (fail closed).' },
  /** A token or key file is readable or writable by group or others; the daemon refuses to start. */
  INSECURE_FILE_MODE: { status: 500, meaning: 'A token or key file is accessible by group or others; the daemon refuses to start until it is `chmod 600` (or removed to be recreated).' },
  /** Unexpected server error. */
  INTERNAL: { status: 500, meaning: 'An unexpected error; the daemon log has details.' },
  /** The model endpoint failed: an error status, a connection failure or timeout after every retry, or an answer deskd cannot use. */
  MODEL_ERROR: { status: 502, meaning: 'The model endpoint (OpenAI or compatible) answered an error, could not be reached after the retries (429/5xx/timeouts are retried with backoff), or sent an answer deskd cannot use.' },
  /** No model is configured for tasks (no API key). */
  MODEL_NOT_CONFIGURED: { status: 503, meaning: 'Tasks need a model: set `OPENAI_API_KEY` (and `OPENAI_BASE_URL` for a compatible endpoint).' },
  /** The accessibility API cannot be reached. */
  ACCESSIBILITY_UNAVAILABLE: { status: 503, meaning: 'The accessibility API (AT-SPI bus, AXUIElement) cannot be reached.' },
  /** The private virtual desktop (Xvfb, session bus, AT-SPI bus) could not be started. */
  VIRTUAL_DISPLAY_FAILED: { status: 503, meaning: 'The private virtual desktop (Xvfb, D-Bus session bus, AT-SPI bus) could not be started; the message names the missing Debian package or the failing component.' },
  /** The platform cannot do this (e.g. workspaces on macOS, which need a virtual machine). */
  NOT_SUPPORTED: { status: 501, meaning: 'This platform cannot do this: workspaces need a private display server, which Linux has (Xvfb) and macOS does not (one login session, one WindowServer; see docs/workspaces.md).' },
  /** The macOS native helper is missing, crashed or did not answer. */
  HELPER_UNAVAILABLE: { status: 503, meaning: 'The native helper is missing, crashed, or did not answer in time.' },
  /** An operation did not finish within its deadline. */
  TIMEOUT: { status: 504, meaning: 'The operation did not complete before its deadline.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/**
 * An error with a stable code. Thrown anywhere in deskd; the HTTP layer turns it into
 * `{"error": {code, message}}` with the status from {@link ERROR_CODES}.
 */
export class DeskdError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'DeskdError';
    this.code = code;
    this.details = details;
  }
  /** HTTP status for this error's code. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
  /** The response body. */
  toBody(): ErrorBody {
    const body: ErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details !== undefined) body.error.details = this.details;
    return body;
  }
}

/** Type guard for {@link DeskdError}. */
export function isDeskdError(e: unknown): e is DeskdError {
  return e instanceof DeskdError;
}
