import { describe, it, expect } from 'vitest';
import { probeX11Display, x11OpErrorCode, x11SocketPath } from '../../src/platform/linux/x11Supervisor.js';

describe('x11SocketPath', () => {
  it('maps local display names to their unix socket and leaves remote ones unprobed', () => {
    expect(x11SocketPath(':0')).toBe('/tmp/.X11-unix/X0');
    expect(x11SocketPath(':170.0')).toBe('/tmp/.X11-unix/X170');
    expect(x11SocketPath('unix:12')).toBe('/tmp/.X11-unix/X12');
    expect(x11SocketPath('localhost:10.0')).toBeNull();
    expect(x11SocketPath('garbage')).toBeNull();
  });
});

describe('probeX11Display', () => {
  it('names the display when nothing listens, and does not probe remote displays', async () => {
    expect(await probeX11Display(undefined)).toBe('DISPLAY is not set');
    // :9999 is far above any display number this project starts.
    expect(await probeX11Display(':9999')).toMatch(/display :9999 \(\/tmp\/\.X11-unix\/X9999: ENOENT\)/);
    expect(await probeX11Display('remotehost:3')).toBeNull();
  });
});

describe('x11OpErrorCode', () => {
  it('maps capture operations to CAPTURE_FAILED and input operations to ACTION_FAILED', () => {
    expect(x11OpErrorCode('grab')).toBe('CAPTURE_FAILED');
    expect(x11OpErrorCode('screenSize')).toBe('CAPTURE_FAILED');
    expect(x11OpErrorCode('mouseMove')).toBe('ACTION_FAILED');
    expect(x11OpErrorCode('keyDown')).toBe('ACTION_FAILED');
  });
});
