/**
 * Keeping old screenshots out of the model's context. deskd sends the whole conversation on every
 * request (no `previous_response_id`), so it can drop what the model no longer needs: only the last
 * `keep` images stay. A removed image in a message becomes a short text part; a removed image in a
 * `computer_call_output` (whose `output` must be a `computer_screenshot`, OpenAI API reference) becomes
 * a 1x1 grey PNG, so the item stays valid while costing a handful of tokens.
 */

/** A 1x1 PNG (valid image, negligible tokens) standing in for a trimmed `computer_call_output` screenshot. */
export const PLACEHOLDER_PNG_DATA_URL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

/** Text that replaces a trimmed image part. */
export const TRIMMED_IMAGE_NOTE = '[older screenshot removed from the context]';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where one image lives, with a function that replaces it. */
interface ImageSlot {
  replace(): void;
}

function slots(items: unknown[]): ImageSlot[] {
  const out: ImageSlot[] = [];
  for (const item of items) {
    if (!isObj(item)) continue;
    if (item.type === 'computer_call_output' && isObj(item.output)) {
      const output = item.output;
      if (typeof output.image_url === 'string' && output.image_url !== PLACEHOLDER_PNG_DATA_URL) {
        out.push({ replace: () => void (output.image_url = PLACEHOLDER_PNG_DATA_URL) });
      }
      continue;
    }
    const content = item.content;
    if (!Array.isArray(content)) continue;
    for (let i = 0; i < content.length; i++) {
      const part = content[i];
      if (!isObj(part)) continue;
      // Responses `input_image` and Chat Completions `image_url` parts.
      if (part.type === 'input_image') out.push({ replace: () => void (content[i] = { type: 'input_text', text: TRIMMED_IMAGE_NOTE }) });
      else if (part.type === 'image_url') out.push({ replace: () => void (content[i] = { type: 'text', text: TRIMMED_IMAGE_NOTE }) });
    }
  }
  return out;
}

/**
 * Replace all but the last `keep` images in a Responses `input` list or a Chat Completions `messages`
 * list, in place.
 * @returns how many images were replaced.
 */
export function trimImages(items: unknown[], keep: number): number {
  const all = slots(items);
  const drop = Math.max(0, all.length - Math.max(0, keep));
  for (const s of all.slice(0, drop)) s.replace();
  return drop;
}

/** Count the images (not placeholders) still in a context list. */
export function countImages(items: unknown[]): number {
  return slots(items).length;
}
