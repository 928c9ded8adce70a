/**
 * Issue 22, console: through the console's own routes and its session cookie (the operator), the page has
 * a screen picker, `GET /v1/workspaces` lists every workspace, and the screenshot and observe the console
 * sends with the picked `workspace` show that workspace's screen and elements. Attacker: an agent credential
 * cannot sign in to the console, cannot read its session route, lists only its own workspaces and is refused
 * another agent's screen (WORKSPACE_FORBIDDEN), also when it sends a console cookie along with its bearer.
 * Fake platform (tests/helpers/fakeWorkspaces.ts): each screen is one colour.
 */
import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { buildFakeWorkspacesApp, WORKSPACE_FILLS, WS_OPERATOR_TOKEN, type FakeWorkspacesApp } from '../helpers/fakeWorkspaces.js';

const H = { host: '127.0.0.1:7820' };
const CSRF = { 'x-deskd-console': '1' };

let t: FakeWorkspacesApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function login(): Promise<string> {
  const r = await t!.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: WS_OPERATOR_TOKEN } });
  expect(r.statusCode, r.body).toBe(200);
  return `deskd_console=${/deskd_console=([^;]+)/.exec(String(r.headers['set-cookie']))![1]}`;
}

/** The RGB of the screenshot's centre pixel. */
async function centre(png: Buffer): Promise<number[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const i = (Math.floor(info.height / 2) * info.width + Math.floor(info.width / 2)) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

describe('the console shows each workspace\'s screen (issue 22)', () => {
  it('the operator\'s console session lists every workspace and shows the picked one\'s screen and elements', async () => {
    t = await buildFakeWorkspacesApp();
    await t.agents.add({ id: 'alpha', role: 'actor' });
    await t.agents.add({ id: 'beta', role: 'actor' });
    const make = async (agent: string) => (await t!.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent, name: `${agent}'s` } })).json().id as string;
    const wa = await make('alpha');
    const wb = await make('beta');
    const page = await t.app.inject({ method: 'GET', url: '/', headers: H });
    expect(page.body).toContain('id="workspace"');
    const cookie = await login();
    const asConsole = { ...H, cookie };

    const list = await t.app.inject({ method: 'GET', url: '/v1/workspaces', headers: asConsole });
    expect(list.statusCode).toBe(200);
    expect((list.json().workspaces as Array<{ id: string; owner: string }>).map((w) => [w.id, w.owner])).toEqual([[wa, 'agent:alpha'], [wb, 'agent:beta']]);

    // The screenshot the console fetches: its own desktop without `workspace`, the picked workspace's with it.
    const shot = async (ws?: string) => {
      const r = await t!.app.inject({ method: 'GET', url: `/v1/screenshot?format=png${ws ? `&workspace=${ws}` : ''}`, headers: asConsole });
      expect(r.statusCode, r.body.slice(0, 200)).toBe(200);
      return centre(r.rawPayload);
    };
    expect(await shot()).toEqual([255, 255, 255]);
    expect(await shot(wa)).toEqual(WORKSPACE_FILLS[0]!.slice(0, 3));
    expect(await shot(wb)).toEqual(WORKSPACE_FILLS[1]!.slice(0, 3));
    // The observe the console sends (cookie + CSRF header, `workspace` in the body).
    const observe = async (ws?: string) => {
      const r = await t!.app.inject({ method: 'POST', url: '/v1/observe', headers: { ...asConsole, ...CSRF }, payload: { ocr: true, accessibility: true, ...(ws ? { workspace: ws } : {}) } });
      expect(r.statusCode, r.body.slice(0, 200)).toBe(200);
      return (r.json().elements as Array<{ name: string }>).map((e) => e.name);
    };
    expect(await observe(wb)).toContain('ws1-button');
    expect(await observe(wb)).not.toContain('own-button');
    expect(await observe()).toContain('own-button');
    // A deleted workspace is 404 (the console then goes back to the user's desktop).
    await t.app.inject({ method: 'DELETE', url: `/v1/workspaces/${wa}`, headers: { ...asConsole, ...CSRF } });
    const gone = await t.app.inject({ method: 'GET', url: `/v1/screenshot?format=png&workspace=${wa}`, headers: asConsole });
    expect(gone.json().error.code).toBe('WORKSPACE_NOT_FOUND');
  });

  it('attacker: an agent credential cannot use the console, nor its routes, to see another agent\'s workspace', async () => {
    t = await buildFakeWorkspacesApp();
    const { token: alpha } = await t.agents.add({ id: 'alpha', role: 'actor' });
    await t.agents.add({ id: 'beta', role: 'actor' });
    const make = async (agent: string) => (await t!.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent } })).json().id as string;
    const wa = await make('alpha');
    const wb = await make('beta');
    const asAlpha = { ...H, authorization: `Bearer ${alpha}` };

    // The console is the operator's: an agent token does not sign in, and the session route refuses it.
    const signIn = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: alpha } });
    expect(signIn.statusCode).toBe(401);
    expect(signIn.headers['set-cookie']).toBeUndefined();
    const session = await t.app.inject({ method: 'GET', url: '/console/session', headers: asAlpha });
    expect(session.statusCode).toBe(403);
    expect(session.json().error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');

    // The console's data routes with the agent's own credential: only its own workspace.
    const list = await t.app.inject({ method: 'GET', url: '/v1/workspaces', headers: asAlpha });
    expect((list.json().workspaces as Array<{ id: string }>).map((w) => w.id)).toEqual([wa]);
    const shot = await t.app.inject({ method: 'GET', url: `/v1/screenshot?format=jpeg&workspace=${wb}`, headers: asAlpha });
    expect(shot.statusCode).toBe(403);
    expect(shot.json().error.code).toBe('WORKSPACE_FORBIDDEN');
    const obs = await t.app.inject({ method: 'POST', url: '/v1/observe', headers: { ...asAlpha, ...CSRF }, payload: { ocr: true, workspace: wb } });
    expect(obs.statusCode).toBe(403);
    expect(obs.json().error.code).toBe('WORKSPACE_FORBIDDEN');
    // Bound to its workspace, the agent's plain screenshot is its own screen, never the user's desktop.
    const own = await t.app.inject({ method: 'GET', url: '/v1/screenshot?format=png', headers: asAlpha });
    expect(await centre(own.rawPayload)).toEqual(WORKSPACE_FILLS[0]!.slice(0, 3));

    // Even with the operator's console cookie alongside, the agent's bearer decides who it is.
    const cookie = await login();
    const mixed = await t.app.inject({ method: 'GET', url: `/v1/screenshot?format=jpeg&workspace=${wb}`, headers: { ...asAlpha, cookie } });
    expect(mixed.statusCode).toBe(403);
    expect(mixed.json().error.code).toBe('WORKSPACE_FORBIDDEN');
    // A forged session cookie is no credential at all.
    const forged = await t.app.inject({ method: 'GET', url: `/v1/screenshot?format=jpeg&workspace=${wb}`, headers: { ...H, cookie: 'deskd_console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    expect(forged.statusCode).toBe(401);
  });
});
