import { z } from 'zod';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import type { FunctionTool } from 'openai/resources/responses/responses';
import { describeIssues } from '../actuation/parse.js';
import { ChordSchema, CoordSchema, RefSchema, ScrollDeltaSchema, TextInputSchema } from '../actuation/schema.js';

/**
 * The functions-mode tools, one zod schema each (zod is the one schema language; JSON Schema for the
 * model is generated with `z.toJSONSchema`). Shapes an action also has (refs, text, chords, scroll
 * amounts, coordinates) come from `src/actuation/schema.ts`, so their limits are the executor's. Coordinates are logical global points; refs come from
 * the latest observation the model was given.
 */
export const FUNCTION_TOOLS = {
  observe: {
    description: 'Look at the screen again: returns a fresh list of elements (with refs) and a screenshot.',
    schema: z.object({}).strict(),
  },
  click_element: {
    description: 'Click the centre of an element of the latest observation, by its ref (e.g. "e12").',
    schema: z.object({ ref: RefSchema.describe('Element ref from the latest observation') }).strict(),
  },
  type_text: {
    description: 'Type text into the focused element. Newlines press Enter.',
    schema: z.object({ text: TextInputSchema.min(1) }).strict(),
  },
  press_keys: {
    description: 'Press a key chord, e.g. ["ctrl","c"], ["enter"], ["escape"].',
    schema: z.object({ keys: ChordSchema }).strict(),
  },
  scroll: {
    description: 'Scroll over an element (ref) or a point (x, y in points) by dy points (positive = down).',
    schema: z
      .object({
        ref: RefSchema.optional(),
        x: CoordSchema.optional(),
        y: CoordSchema.optional(),
        dy: ScrollDeltaSchema,
      })
      .strict(),
  },
  wait_for: {
    description: 'Wait until some text appears on screen (element names/values, OCR), up to timeoutMs (default 5000, at most 30000).',
    schema: z.object({ text: z.string().min(1).max(200), timeoutMs: z.number().int().min(0).max(30000).optional() }).strict(),
  },
  done: {
    description: 'Finish the task and give the answer (or a short summary of what was done).',
    schema: z.object({ answer: z.string().max(10000) }).strict(),
  },
} as const;

/** Name of a functions-mode tool. */
export type FunctionToolName = keyof typeof FUNCTION_TOOLS;

/** Arguments of each tool. */
export type FunctionToolArgs = { [K in FunctionToolName]: z.infer<(typeof FUNCTION_TOOLS)[K]['schema']> };

function parameters(name: FunctionToolName): Record<string, unknown> {
  const js = z.toJSONSchema(FUNCTION_TOOLS[name].schema) as Record<string, unknown>;
  delete js.$schema;
  return js;
}

/** Tool definitions for Chat Completions (`tools: [{type: 'function', function: {...}}]`). */
export function chatTools(): ChatCompletionTool[] {
  return (Object.keys(FUNCTION_TOOLS) as FunctionToolName[]).map((name) => ({
    type: 'function' as const,
    function: { name, description: FUNCTION_TOOLS[name].description, parameters: parameters(name) },
  }));
}

/** Tool definitions for the Responses API (`tools: [{type: 'function', name, parameters, strict}]`). */
export function responsesTools(): FunctionTool[] {
  return (Object.keys(FUNCTION_TOOLS) as FunctionToolName[]).map((name) => ({
    type: 'function' as const,
    name,
    description: FUNCTION_TOOLS[name].description,
    parameters: parameters(name),
    strict: false,
  }));
}

/** A parsed call, or why it cannot be run (reported back to the model as the tool's result). */
export type ParsedCall = { ok: true; name: FunctionToolName; args: FunctionToolArgs[FunctionToolName] } | { ok: false; error: string };

/** Parse a function call's name and JSON arguments (as the model sent them). */
export function parseFunctionCall(name: string, rawArgs: string): ParsedCall {
  // Own names only: a model calling `constructor` or `toString` gets this answer, not a crash.
  if (!Object.hasOwn(FUNCTION_TOOLS, name)) return { ok: false, error: `unknown tool "${name}"; tools: ${Object.keys(FUNCTION_TOOLS).join(', ')}` };
  let json: unknown;
  try {
    json = rawArgs.trim() === '' ? {} : JSON.parse(rawArgs);
  } catch {
    return { ok: false, error: `arguments of ${name} are not valid JSON` };
  }
  const r = FUNCTION_TOOLS[name as FunctionToolName].schema.safeParse(json);
  if (!r.success) return { ok: false, error: `bad arguments for ${name}: ${describeIssues(r.error.issues)}` };
  return { ok: true, name: name as FunctionToolName, args: r.data as FunctionToolArgs[FunctionToolName] };
}
