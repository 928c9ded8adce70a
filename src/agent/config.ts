import { DeskdError } from '../errors.js';
import type { AgentMode } from './types.js';

/**
 * Configuration of model-driven tasks, from the environment (read once at start):
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `OPENAI_API_KEY` | API key (any non-empty string for a local compatible server) | none: tasks answer `MODEL_NOT_CONFIGURED` |
 * | `OPENAI_BASE_URL` | endpoint of an OpenAI-compatible API | the SDK's (`https://api.openai.com/v1`) |
 * | `DESKD_MODEL_MODE` | `computer` (Responses API computer tool) or `functions` (function calling) | `computer` |
 * | `DESKD_COMPUTER_TOOL` | `computer` (batched `actions`) or `computer_use_preview` (single `action`) | `computer` |
 * | `DESKD_MODEL_API` | functions mode: `chat` (Chat Completions) or `responses` | `chat` (widest compatibility) |
 * | `DESKD_MODEL` | model name | `gpt-5.4` (computer), `computer-use-preview` (preview tool), `gpt-4.1` (functions) |
 * | `DESKD_AGENT_MAX_STEPS` | default step budget of a task (1–200) | 30 |
 * | `DESKD_AGENT_KEEP_IMAGES` | screenshots kept in the model's context (older ones are replaced) | 3 |
 * | `DESKD_MODEL_TIMEOUT_MS` | timeout of one model request, ms | 120000 |
 * | `DESKD_MODEL_MAX_RETRIES` | retries of a model request on 408/409/429/5xx/timeouts/connection errors | 4 |
 * | `DESKD_MODEL_PROVIDER` | `openai` or `anthropic` (Claude with its computer tool, `src/agent/anthropic/`) | `openai` |
 * | `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL` | provider `anthropic`: key and endpoint (a Messages-compatible server) | none / the SDK's |
 * | `DESKD_ANTHROPIC_TOOL` | provider `anthropic`: `computer_20251124`, `computer_20250124` or `computer_20241022` | `computer_20251124` |
 */
export interface AgentConfig {
  /** Who the model is: OpenAI (Responses/Chat) or Anthropic (Claude, Messages API computer tool). */
  provider: 'openai' | 'anthropic';
  /** Provider `anthropic`: the computer tool version. */
  anthropicTool: 'computer_20251124' | 'computer_20250124' | 'computer_20241022';
  mode: AgentMode;
  /** Computer mode: which tool shape. */
  computerTool: 'computer' | 'computer_use_preview';
  /** Functions mode: which API. */
  api: 'chat' | 'responses';
  model: string;
  apiKey: string | null;
  /** null → the SDK's default (which also reads `OPENAI_BASE_URL`). */
  baseURL: string | null;
  maxSteps: number;
  /** Screenshots kept in the context; older ones are replaced by a note (or a 1x1 placeholder in computer outputs). */
  keepImages: number;
  /** One model request's timeout, ms (passed to the SDK). */
  timeoutMs: number;
  /** Retries with exponential backoff (deskd's own loop; the SDK's `maxRetries` is set to 0 so waits are cancellable and reported). */
  maxRetries: number;
  /** First backoff delay, ms; doubled each retry with up to 25 % jitter, capped at `maxRetryDelayMs`. A `retry-after(-ms)` header wins. */
  retryBaseDelayMs: number;
  maxRetryDelayMs: number;
  /** Duration of a computer-mode `wait` action (OpenAI's has none), ms. */
  waitMs: number;
  /** Functions mode: run OCR in observations (falls back to accessibility only when OCR is unavailable). */
  ocr: boolean;
  /** `computer_use_preview`'s `environment`. */
  environment: 'linux' | 'mac' | 'windows' | 'ubuntu' | 'browser';
  /** Most elements listed in one observation given to the model. */
  maxElements: number;
}

/** Default Claude model (provider `anthropic`): one documented for the `computer_20251124` tool. */
export const DEFAULT_CLAUDE_MODEL = 'claude-opus-4-5';

/** Default model per mode/tool. */
export function defaultModel(mode: AgentMode, tool: AgentConfig['computerTool']): string {
  if (mode === 'functions') return 'gpt-4.1';
  return tool === 'computer_use_preview' ? 'computer-use-preview' : 'gpt-5.4';
}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new DeskdError('VALIDATION_FAILED', `${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], def: T): T {
  const v = env[name];
  if (v === undefined || v === '') return def;
  if (!(allowed as readonly string[]).includes(v)) throw new DeskdError('VALIDATION_FAILED', `${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/**
 * Read the agent configuration from the environment (table above); `overrides` win (tests, flags).
 * @throws DeskdError `VALIDATION_FAILED` naming the variable with a bad value.
 */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<AgentConfig> = {}): AgentConfig {
  const provider = overrides.provider ?? oneOf(env, 'DESKD_MODEL_PROVIDER', ['openai', 'anthropic'] as const, 'openai');
  const mode = overrides.mode ?? (provider === 'anthropic' ? 'computer' : oneOf(env, 'DESKD_MODEL_MODE', ['computer', 'functions'] as const, 'computer'));
  const computerTool = overrides.computerTool ?? oneOf(env, 'DESKD_COMPUTER_TOOL', ['computer', 'computer_use_preview'] as const, 'computer');
  const base: AgentConfig = {
    provider,
    anthropicTool: oneOf(env, 'DESKD_ANTHROPIC_TOOL', ['computer_20251124', 'computer_20250124', 'computer_20241022'] as const, 'computer_20251124'),
    mode,
    computerTool,
    api: oneOf(env, 'DESKD_MODEL_API', ['chat', 'responses'] as const, 'chat'),
    model: env.DESKD_MODEL || (provider === 'anthropic' ? DEFAULT_CLAUDE_MODEL : defaultModel(mode, computerTool)),
    apiKey: (provider === 'anthropic' ? env.ANTHROPIC_API_KEY : env.OPENAI_API_KEY) || null,
    baseURL: (provider === 'anthropic' ? env.ANTHROPIC_BASE_URL : env.OPENAI_BASE_URL) || null,
    maxSteps: int(env, 'DESKD_AGENT_MAX_STEPS', 30, 1, 200),
    keepImages: int(env, 'DESKD_AGENT_KEEP_IMAGES', 3, 1, 50),
    timeoutMs: int(env, 'DESKD_MODEL_TIMEOUT_MS', 120_000, 100, 3_600_000),
    maxRetries: int(env, 'DESKD_MODEL_MAX_RETRIES', 4, 0, 20),
    retryBaseDelayMs: 500,
    maxRetryDelayMs: 8000,
    waitMs: 1000,
    ocr: true,
    environment: process.platform === 'darwin' ? 'mac' : 'linux',
    maxElements: 300,
  };
  return { ...base, ...overrides };
}
