/**
 * Pure parts of the macOS backend: AX role/action mapping, password masking, permission combination,
 * and that every recorded transcript line matches the protocol schemas.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mapAXAction, mapAXRole, toRawNode } from '../../src/platform/macos/macAccessibility.js';
import { combinePermissions, fromAuthStatus } from '../../src/platform/macos/macPermissions.js';
import { HelloSchema, OPS, RequestSchema, ResponseSchema, type HelperAXNode, type OpName } from '../../src/platform/macos/protocol.js';
import { ROLES } from '../../src/platform/roles.js';
import { MACOS_FIXTURES } from '../helpers/macosFakeHelper.js';

describe('AX role mapping', () => {
  it.each([
    ['AXButton', undefined, 'button'],
    ['AXTextField', undefined, 'textbox'],
    ['AXTextArea', undefined, 'textbox'],
    ['AXSecureTextField', undefined, 'textbox'],
    ['AXTextField', 'AXSecureTextField', 'textbox'],
    ['AXTextField', 'AXSearchField', 'textbox'],
    ['AXLink', undefined, 'link'],
    ['AXCheckBox', undefined, 'checkbox'],
    ['AXCheckBox', 'AXToggle', 'togglebutton'],
    ['AXCheckBox', 'AXSwitch', 'checkbox'],
    ['AXRadioButton', undefined, 'radio'],
    ['AXRadioButton', 'AXTabButton', 'tab'],
    ['AXMenuItem', undefined, 'menuitem'],
    ['AXMenuBarItem', undefined, 'menuitem'],
    ['AXTabGroup', undefined, 'tablist'],
    ['AXHeading', undefined, 'heading'],
    ['AXStaticText', undefined, 'text'],
    ['AXImage', undefined, 'image'],
    ['AXTable', undefined, 'table'],
    ['AXRow', undefined, 'row'],
    ['AXRow', 'AXOutlineRow', 'treeitem'],
    ['AXCell', undefined, 'cell'],
    ['AXList', undefined, 'list'],
    ['AXWindow', undefined, 'window'],
    ['AXWindow', 'AXStandardWindow', 'window'],
    ['AXWindow', 'AXDialog', 'dialog'],
    ['AXSheet', undefined, 'dialog'],
    ['AXGroup', 'AXApplicationDialog', 'dialog'],
    ['AXGroup', 'AXApplicationAlertDialog', 'alert'],
    ['AXGroup', 'AXTabPanel', 'tabpanel'],
    ['AXProgressIndicator', undefined, 'progressbar'],
    ['AXSlider', undefined, 'slider'],
    ['AXWebArea', undefined, 'document'],
    ['AXGroup', undefined, 'group'],
    ['AXPopUpButton', undefined, 'combobox'],
    ['AXButton', 'AXCloseButton', 'button'],
    ['AXGroup', 'AXCloseButton', 'group'],
    ['AXSomethingNew', undefined, 'unknown'],
  ])('%s / %s → %s', (role, subrole, expected) => {
    expect(mapAXRole(role, subrole)).toBe(expected);
    expect(ROLES as readonly string[]).toContain(expected);
  });

  it('maps AX actions to deskd names', () => {
    expect(['AXPress', 'AXShowMenu', 'AXIncrement', 'AXScrollToVisible'].map(mapAXAction)).toEqual(['press', 'showmenu', 'increment', 'scrolltovisible']);
  });
});

describe('password masking', () => {
  const node = (extra: Partial<HelperAXNode>): HelperAXNode => ({ id: 's1:1', role: 'AXTextField', frame: { x: -10, y: 5, width: 100, height: 20 }, actions: [], children: [], ...extra });

  it('drops a value sent for a secure field, whichever way it is marked', () => {
    for (const extra of [{ role: 'AXSecureTextField' }, { subrole: 'AXSecureTextField' }, { secure: true }]) {
      const raw = toRawNode(node({ description: 'Password', value: 'hunter2', ...extra }));
      expect(raw.value).toBeUndefined();
      expect(raw.states).toContain('password');
      expect(raw.role).toBe('textbox');
      expect(JSON.stringify(raw)).not.toContain('hunter2');
    }
  });

  it('keeps the value of an ordinary text field and its negative global bounds', () => {
    const raw = toRawNode(node({ description: 'User', value: 'alice' }));
    expect(raw).toMatchObject({ name: 'User', value: 'alice', bounds: { x: -10, y: 5, width: 100, height: 20 } });
    expect(raw.states).not.toContain('password');
  });

  it('does not name a secure static text by its value', () => {
    expect(toRawNode(node({ role: 'AXStaticText', secure: true, value: 'hunter2' })).name).toBe('');
  });
});

describe('permission combination', () => {
  it('trusts live probes over the preflight flag', () => {
    expect(combinePermissions({ accessibility: { trusted: true, probe: 'ok' }, screenRecording: { preflight: false, probe: 'ok' } })).toEqual({
      accessibility: 'granted',
      screenRecording: 'granted',
    });
    expect(combinePermissions({ accessibility: { trusted: true, probe: 'denied' }, screenRecording: { preflight: true, probe: 'denied' } })).toEqual({
      accessibility: 'denied',
      screenRecording: 'denied',
    });
    expect(combinePermissions({ accessibility: { trusted: false, probe: 'error' }, screenRecording: { preflight: true, probe: 'error' } })).toEqual({
      accessibility: 'denied',
      screenRecording: 'granted',
    });
  });
  it('maps node-mac-permissions statuses', () => {
    expect(['authorized', 'denied', 'restricted', 'not determined', 'limited', undefined].map(fromAuthStatus)).toEqual([
      'granted',
      'denied',
      'denied',
      'not-determined',
      'granted',
      'unknown',
    ]);
  });
});

describe('recorded transcripts match the protocol', () => {
  const files = readdirSync(MACOS_FIXTURES).filter((f) => f.endsWith('.jsonl'));
  it('has the transcripts the issue asks for', () => {
    expect(files).toEqual(
      expect.arrayContaining(['displays-retina-negative.jsonl', 'ax-tree-truncated.jsonl', 'ax-password.jsonl', 'permission-denied.jsonl', 'crash-mid-request.jsonl']),
    );
  });
  it.each(files)('%s', (file) => {
    const records = readFileSync(join(MACOS_FIXTURES, file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const opById = new Map<number, OpName>();
    let hellos = 0;
    for (const r of records) {
      if (r.from === 'client') {
        const req = RequestSchema.parse(r.msg);
        expect(Object.keys(OPS)).toContain(req.op);
        OPS[req.op as OpName].params.parse(req.params);
        opById.set(req.id, req.op as OpName);
      } else if (r.from === 'helper' && r.msg?.type === 'hello') {
        HelloSchema.parse(r.msg);
        hellos++;
        opById.clear();
      } else if (r.from === 'helper' && r.msg) {
        const res = ResponseSchema.parse(r.msg);
        const op = opById.get(res.id);
        expect(op, `request for answer ${res.id}`).toBeDefined();
        if (res.ok) OPS[op!].result.parse(res.result);
      }
    }
    expect(hellos).toBeGreaterThan(0);
    // No secure field in any transcript carries a value.
    const walk = (n: HelperAXNode): void => {
      if (n.secure || n.role === 'AXSecureTextField' || n.subrole === 'AXSecureTextField') expect(n.value).toBeUndefined();
      n.children.forEach(walk);
    };
    for (const r of records) if (r.msg?.result?.root) walk(r.msg.result.root);
  });
});

describe('names of Object.prototype are not in the AX tables (an app answers its own roles and actions)', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('%s', (name) => {
    expect(mapAXRole(name)).toBe('unknown');
    expect(mapAXRole('AXButton', name)).toBe('button');
    expect(mapAXAction(name)).toBe(name.toLowerCase());
  });
});
