import type { Observation } from '../perception/observer.js';

/** A `data:` URL of the observation's screenshot, or null when it has none. */
export function screenshotDataUrl(o: Observation): string | null {
  const s = o.screenshot;
  return s ? `data:${s.mimeType};base64,${s.data.toString('base64')}` : null;
}

function q(s: string): string {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 117)}...` : s);
}

/**
 * The compact text form of an observation given to a model in functions mode: a header (display size
 * in logical points, focused window), then one line per element —
 * `e12 button "7" @10,100 40x30 [focused]` — with `value="…"` when it has one. Coordinates are
 * logical global points, the same space as the attached screenshot (1 image pixel = 1 point,
 * origin at the display's top-left). At most `maxElements` lines; the header says when cut.
 */
export function describeObservation(o: Observation, maxElements = 300): string {
  const d = o.display;
  const lines: string[] = [];
  lines.push(`Observation ${o.observationId}: display ${d.id} at ${d.x},${d.y} size ${d.width}x${d.height} points.`);
  if (o.focused) lines.push(`Focused: ${o.focused.app}${o.focused.window ? ` — ${q(o.focused.window)}` : ''}`);
  if (o.warnings.length) lines.push(`Warnings: ${o.warnings.join('; ')}`);
  const shown = o.elements.slice(0, maxElements);
  lines.push(
    `Elements (${o.elements.length}${o.elements.length > shown.length ? `, first ${shown.length} shown` : ''}; act on them by ref; refs are valid for this observation only):`,
  );
  for (const e of shown) {
    const b = e.bounds;
    const parts = [e.ref, e.role, q(e.name)];
    if (e.value !== undefined && e.value !== '') parts.push(`value=${q(e.value)}`);
    parts.push(`@${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`);
    const states = e.states.filter((s) => s === 'focused' || s === 'checked' || s === 'selected' || s === 'password' || s === 'expanded' || s === 'disabled');
    if (states.length) parts.push(`[${states.join(',')}]`);
    lines.push(parts.join(' '));
  }
  return lines.join('\n');
}

/**
 * Whether `text` appears (case-insensitive) in an element's name or value, or in an OCR line.
 * Used by the `wait_for` tool.
 */
export function observationContains(o: Observation, text: string): boolean {
  const t = text.toLowerCase();
  return (
    o.elements.some((e) => e.name.toLowerCase().includes(t) || (e.value ?? '').toLowerCase().includes(t)) ||
    o.lines.some((l) => l.text.toLowerCase().includes(t))
  );
}
