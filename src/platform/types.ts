/**
 * The platform layer: the raw, OS-specific primitives deskd is built on.
 *
 * Modelled on Playwright's `RawMouse` / `RawKeyboard` split (packages/playwright-core/src/server/input.ts):
 * backends only send raw events and read raw state; generic layers (`src/perception`, `src/actuation`,
 * `src/policy`, the HTTP app) hold logic and never import a backend. The one factory that may import a
 * backend folder is `src/platform/index.ts`.
 *
 * Coordinate space: every point and rectangle here is in **logical screen points** in the global desktop
 * space (on macOS, Quartz global display coordinates: origin at the top-left of the primary display,
 * y down, other displays may have negative origins). Images carry their own `scale` (pixels per point).
 */

/** A rectangle in logical screen points. */
export interface Rect {
  /** Left edge, points (may be negative on multi-display macOS setups). */
  x: number;
  /** Top edge, points (may be negative). */
  y: number;
  /** Width, points (≥ 0). */
  width: number;
  /** Height, points (≥ 0). */
  height: number;
}

/** A point in logical screen points. */
export interface Point {
  x: number;
  y: number;
}

/**
 * One display as the backend reports it.
 * Source: X11 (RandR / root window size, scale always 1); macOS `CGDisplayBounds` + `NSScreen.backingScaleFactor`.
 */
export interface DisplayInfo {
  /** Stable id within this session (X11 screen number; macOS CGDirectDisplayID). */
  id: number;
  /** Global frame of the display, in logical points. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Backing scale factor: physical pixels per logical point (1 on X11, 2 on Retina). */
  scaleFactor: number;
  /** True for the display holding the menu bar / the X11 default screen. */
  primary: boolean;
}

/**
 * A captured image, RGBA 8 bits per channel, row-major, no padding.
 * `width`/`height` are in image pixels; `scale` = image pixels per logical point; `origin` is the
 * global position, in points, of image pixel (0, 0).
 */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 4;
  scale: number;
  origin: Point;
}

/** Screen capture. Linux: nut-js `screen.grab` (libnut, XGetImage). macOS: ScreenCaptureKit through the native helper. */
export interface RawCapture {
  /** Displays currently attached. */
  displays(): Promise<DisplayInfo[]>;
  /**
   * Capture a display (or a region of it, in points). Returns pixels at the display's native scale.
   * The pixels are read-only: a backend may hand the same buffer to several callers (the X11 backend answers
   * an unchanged screen with the frame it returned before), so a caller that edits pixels copies first
   * (`maskImage` does).
   * @throws DeskdError `CAPTURE_FAILED`, `PERMISSION_DENIED_SCREEN_RECORDING`, `DISPLAY_NOT_FOUND`.
   */
  capture(displayId: number, region?: Rect): Promise<RawImage>;
  /**
   * Optional (Linux with the X DAMAGE extension, `linux/x11Damage.ts`): note this moment, so that
   * {@link drawnSince} can later tell whether anything was drawn on the screen after it. Call it right BEFORE
   * a capture: it resolves once the display server will report any drawing after it. Resolves null when the
   * backend cannot tell (no DAMAGE extension, no connection); callers then capture as usual. Never throws.
   */
  drawMark?(): Promise<DrawMark | null>;
  /**
   * Optional, with {@link drawMark}: false only when it is certain that nothing was drawn on any display
   * since `mark` (a capture taken after the mark still holds the screen's pixels); true when something was
   * drawn or the backend cannot tell (connection lost or replaced since the mark). Never throws.
   */
  drawnSince?(mark: DrawMark): Promise<boolean>;
}

/** An opaque moment noted by {@link RawCapture.drawMark}; only the backend that made it reads it. */
export interface DrawMark {
  readonly generation: number;
  readonly epoch: number;
}

/** Mouse buttons as named by the OpenAI computer-use tool (`left`, `right`, `wheel` = middle, `back`, `forward`). */
export type MouseButton = 'left' | 'right' | 'middle' | 'back' | 'forward';

/** Raw pointer events. All coordinates in logical global points. */
export interface RawMouse {
  /** Move the pointer instantly to a point. */
  move(p: Point): Promise<void>;
  /** Press a button at the current position. */
  down(button: MouseButton): Promise<void>;
  /** Release a button at the current position. */
  up(button: MouseButton): Promise<void>;
  /**
   * Move to `p`, press and release `button`: the same events as `move`, `down`, `up` in that order, sent
   * at once where the backend keeps them in order (X11's one connection: one round trip instead of three,
   * issue 15). Settles when all were processed. Absent: the caller sends the three one after the other.
   */
  click?(p: Point, button: MouseButton): Promise<void>;
  /** Scroll by whole wheel steps: positive `dy` scrolls down, positive `dx` scrolls right. */
  wheel(dx: number, dy: number): Promise<void>;
  /**
   * Scroll by exactly `dx`, `dy` logical points at the current position (positive down/right), where the
   * platform can post scroll events in pixels (macOS: `CGEventCreateScrollWheelEvent2` with
   * `kCGScrollEventUnitPixel`, through the helper). Absent where only wheel clicks exist (X11 core
   * buttons 4–7): scrolls are then rounded to wheel steps (`src/actuation/scroll.ts`).
   */
  scrollPoints?(dx: number, dy: number): Promise<void>;
  /** Current pointer position. */
  position(): Promise<Point>;
}

/**
 * Raw key events. Key names are deskd's canonical names (see `src/platform/keys.ts`): lower-case
 * modifiers `ctrl`, `shift`, `alt`, `meta` (cmd/super), named keys (`enter`, `tab`, `escape`, `f5`, …)
 * and single characters.
 */
export interface RawKeyboard {
  /** Press a key (held until `up`). */
  down(key: string): Promise<void>;
  /** Release a key. */
  up(key: string): Promise<void>;
  /** Type literal text into the focused element (no chord interpretation). */
  type(text: string): Promise<void>;
  /** True if `down`/`up` can press this canonical key (checked before anything is dispatched). Absent = every key. */
  supportsKey?(key: string): boolean;
  /**
   * The first character of `text` that `type` cannot deliver, or null when it can deliver all of it.
   * Meant for planning, so that an untypeable text fails (`TEXT_NOT_TYPEABLE`) before its first chunk is typed.
   * Synchronous and cheap (X11: uses the last keymap read). Absent = every character.
   */
  supportsText?(text: string): string | null;
}

/** An accessibility node as a backend reads it, already mapped to deskd's role vocabulary. */
export interface RawAXNode {
  /** Backend-specific handle, opaque to generic code (AT-SPI `bus:path`, macOS helper element id). */
  handle: string;
  /** Role in deskd's vocabulary (button, textbox, link, …); see `src/platform/roles.ts`. */
  role: string;
  /** The platform's own role name (AT-SPI role name, AXRole), for debugging. */
  platformRole: string;
  name: string;
  /** Current value (text of an entry, numeric value of a slider/progress bar), if any. Never set for password fields. */
  value?: string;
  description?: string;
  /** Bounds in logical global points, or null when the node has no on-screen extent. */
  bounds: Rect | null;
  /** Normalised states: focused, enabled, checked, selected, editable, expanded, password, visible, showing, active, focusable. */
  states: string[];
  /** Action names the node supports (AT-SPI action names, AX actions mapped: press, activate, …). */
  actions: string[];
  /**
   * Range of a slider, spin button or progress bar, when the platform reports one (AT-SPI
   * `org.a11y.atspi.Value` `MinimumValue`/`MaximumValue`/`MinimumIncrement`; the macOS helper does not send
   * `AXMinValue`/`AXMaxValue` yet).
   * `step` is absent when the platform reports 0 (continuous).
   */
  range?: ValueRange;
  /**
   * Process id of the application, on application roots only (AT-SPI: `GetConnectionUnixProcessID` of the
   * application's bus name; macOS: the `axTree` answer's app pid). Lets generic code match elements to windows (occlusion).
   */
  pid?: number | null;
  /**
   * Set on an object shown in another window of the window system than its top-level accessible window's
   * (a GTK 4 popover or menu is a surface of its own): that window's `WindowInfo.id`. Occlusion is judged
   * against it for the object and what it holds.
   */
  windowId?: string;
  children: RawAXNode[];
}

/** The range of a value-bearing element (slider, spin button, progress bar), in the element's own units. */
export interface ValueRange {
  min: number;
  max: number;
  /** Smallest change (AT-SPI `MinimumIncrement`), when known and non-zero. */
  step?: number;
}

/** The focused application and window. */
export interface FocusInfo {
  /** Application name (process name, or the accessible application name). */
  app: string;
  pid: number | null;
  /** Window title, if known. */
  window: string | null;
  /** Window bounds, points, if known. */
  windowBounds?: Rect | null;
}

/** Limits on an accessibility traversal (Peekaboo's AXTraversalPolicy: depth 12, 400 elements). */
export interface AXBudget {
  maxDepth: number;
  maxNodes: number;
  /** Wall-clock budget in milliseconds. */
  timeMs: number;
}

/** Result of an accessibility snapshot. */
export interface AXSnapshot {
  /** One root per application read. */
  roots: RawAXNode[];
  /** True when a budget cut the traversal short. */
  truncated: boolean;
  /** Node count read. */
  nodeCount: number;
}

/** Whether an accessibility backend is working as it should (see {@link RawAccessibility.status}). */
export interface AccessibilityStatus {
  /** True when trees may be missing applications: the bus connection was lost or cannot be made. */
  degraded: boolean;
  /** What went wrong, one sentence, when degraded. */
  reason?: string;
}

/** The application and top-level window that own an accessible element (see {@link RawAccessibility.ownerOf}). */
export interface ElementOwner {
  /** Application name (process name, else the accessible application name), or null when unknown. */
  app: string | null;
  /** Process id of the application, or null when the bus does not say. */
  pid: number | null;
  /** Title of the element's top-level window ancestor, or null. */
  windowTitle: string | null;
  /** Bounds of that window, logical global points, or null. */
  windowBounds: Rect | null;
}

/** Accessibility tree access. Linux: AT-SPI over D-Bus (dbus-next). macOS: AXUIElement via the native helper. */
export interface RawAccessibility {
  /**
   * Whether the backend is degraded (Linux: the AT-SPI bus connection was lost; a bus D-Bus starts anew
   * does not hold the applications started before). Reads state only, never calls the bus. Absent = never degraded.
   */
  status?(): AccessibilityStatus;
  /**
   * Snapshot the tree. `scope: 'focused'` reads the application owning the active window (falling back to all);
   * `scope: 'all'` reads every application on the bus.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when no accessibility bus/API can be reached.
   */
  snapshot(opts: { scope: 'focused' | 'all'; budget: AXBudget }): Promise<AXSnapshot>;
  /** The focused app and window, or null if nothing has focus. */
  focused(): Promise<FocusInfo | null>;
  /**
   * Perform a named action (e.g. AT-SPI `click`/`press`/`activate`, AX `AXPress`) on the node with this handle.
   * @returns false when the node has no such action.
   */
  doAction(handle: string, action: string): Promise<boolean>;
  /**
   * Replace the text of an editable element (AT-SPI `org.a11y.atspi.EditableText.SetTextContents`,
   * macOS `AXValue`). Absent when the backend cannot set values. The value is never logged.
   * @returns false when the node is not editable text (or the application refused).
   * @throws DeskdError `STALE_REF` when the node no longer exists; `ACCESSIBILITY_UNAVAILABLE`.
   */
  setValue?(handle: string, value: string): Promise<boolean>;
  /**
   * Hit-test: the deepest accessible element at a point (logical global points), returned alone
   * (`children: []`). `window` names the top-level window under the point (its pid picks the application;
   * without it every application is tried, top-level windows containing the point first).
   * Linux: the application of the window's pid on the AT-SPI bus, then
   * `org.a11y.atspi.Component.GetAccessibleAtPoint(x, y, 0 = screen)` descending child by child.
   * macOS: `AXUIElementCopyElementAtPosition` through the helper.
   * Answers the deepest element, or its nearest interactive ancestor when it is not interactive itself
   * (the button around a label).
   * @returns null when the application is on the accessibility bus and its window at the point has no
   *   element there.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the element cannot be determined: the bus cannot be
   *   reached, no application of the window's pid is on the bus, none of its accessible windows contains
   *   the point (or several do and none is the window), or the application does not answer.
   */
  elementAt?(p: Point, window?: WindowInfo): Promise<RawAXNode | null>;
  /**
   * Who owns an element, whether or not its window is on top: the application (name as `WindowInfo.app`
   * is derived: the process name, else the accessible application name) and its pid, and the element's
   * top-level window ancestor (title and bounds in logical points, null when it has none or no extents).
   * Linux: bus name → pid with `org.freedesktop.DBus.GetConnectionUnixProcessID` on the accessibility bus,
   * window by walking `Parent` up to the child of the application object.
   * @returns null when the element no longer exists.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached or the application does not answer.
   */
  ownerOf?(handle: string): Promise<ElementOwner | null>;
  /**
   * The URL of the document a browser window shows (Chromium: the `document web` node's
   * `org.a11y.atspi.Document.GetAttributes()` entry `URI`; macOS: `AXURL` / `AXDocument` of the web area).
   * Chromium exposes it only with `ACCESSIBILITY_ENABLED=1` and `--force-renderer-accessibility`.
   * @returns null when the window shows no document whose URL can be read (not a browser, page not
   *   exposed); callers treat null for a browser as "unknown".
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached.
   */
  urlOf?(window: WindowInfo): Promise<string | null>;
  /** Release connections. */
  close(): Promise<void>;
}

/**
 * A top-level window, as the window system reports it. Used by the policy engine to know which app an
 * action lands in, and to re-check right before dispatch that it is still the same window.
 */
export interface WindowInfo {
  /** Window-system id (X11 window id in hex, macOS CGWindowID). */
  id: string;
  /** Process name (Linux `/proc/PID/comm`, macOS localized app name), else WM_CLASS. */
  app: string | null;
  pid: number | null;
  /** X11 WM_CLASS class name (e.g. `XTerm`). */
  wmClass?: string | null;
  /** X11 WM_CLASS instance name (e.g. `xterm`). */
  instance?: string | null;
  /** macOS bundle identifier. */
  bundleId?: string | null;
  /** Window title. */
  title: string | null;
  /** Frame in logical global points. */
  bounds: Rect;
  /**
   * Linux X11: the application's own window (the X client window, inside any window-manager frame) in
   * global points. Toolkits that cannot know their screen position (GTK 4) report accessibility extents
   * relative to it (see `linux/atspi/windowOffset.ts`).
   */
  surface?: Rect;
  /**
   * Linux X11: `_GTK_FRAME_EXTENTS` of the client window (pixels: left, right, top, bottom), the invisible
   * margins client-side decorations draw their shadows into (GTK sets it when the window manager supports it).
   */
  frameExtents?: { left: number; right: number; top: number; bottom: number };
  /**
   * Linux X11: set when the top-level window is override-redirect — a menu, a dropdown list or a tooltip
   * its application placed itself (no window manager frames or focuses it).
   */
  overrideRedirect?: boolean;
}

/** Options of a window read. */
export interface WindowReadOptions {
  /**
   * Read the window system now. Backends may reuse a read for a short time (Linux: 150 ms, dropped by
   * `invalidate`); the dispatch-time `TARGET_CHANGED` re-check always asks for a fresh one.
   */
  fresh?: boolean;
}

/** Top-level windows: Linux X11 (one X protocol connection, `linux/x11Client.ts`), macOS (CGWindowList through the helper). */
export interface RawWindows {
  /** Visible top-level windows, top-most first. */
  list(opts?: WindowReadOptions): Promise<WindowInfo[]>;
  /** The top-most visible window containing a point, or null (desktop). */
  windowAt(p: Point, opts?: WindowReadOptions): Promise<WindowInfo | null>;
  /** The window receiving keyboard input, or null. */
  focused(opts?: WindowReadOptions): Promise<WindowInfo | null>;
  /** Drop any reused read (the executor calls it after every dispatched action). Absent = nothing is reused. */
  invalidate?(): void;
  /**
   * Raise a top-level window and give it the keyboard focus (the `focus_window` action). X11: EWMH
   * `_NET_ACTIVE_WINDOW` through the window manager when one runs, else `XRaiseWindow` + `XSetInputFocus`.
   * Absent = not supported.
   * @throws DeskdError `WINDOW_NOT_FOUND` when no such window is mapped; `ACTION_FAILED` when the focus did not move.
   */
  activate?(id: string): Promise<void>;
  /**
   * Called after deskd clicked inside window `id`: on a display without a window manager (deskd's own
   * Xvfb) give it the keyboard focus, as a desktop's click-to-focus does; with a window manager (which
   * does that itself) nothing. Absent = the platform's own focus handling is enough (macOS).
   */
  clickToFocus?(id: string): Promise<void>;
  /** Whether the session's screen is locked (macOS `CGSessionCopyCurrentDictionary`); absent = never. */
  screenLocked?(): Promise<boolean>;
  /**
   * Note the moment right before a capture, to ask {@link touchedSince} after it (Linux X11: the server's
   * SubstructureNotify events on the root, `linux/x11WindowWatch.ts`). Null when it cannot be noted now.
   * Absent = the platform cannot tell (macOS: the mask then rests on the window lists read beside and after
   * the capture alone).
   */
  mark?(): Promise<WindowMark | null>;
  /**
   * Every top-level window mapped, unmapped, moved, resized, restacked or reparented since `mark`, visible now
   * or not, as a window list (one entry per bounds it had: its bounds now, then each it was configured to),
   * for the perception mask: a window shown and gone again between two list reads is in it. Null when it
   * cannot be told (the connection changed, or too many changes to keep).
   */
  touchedSince?(mark: WindowMark): Promise<WindowInfo[] | null>;
}

/** A moment noted by `RawWindows.mark` (opaque). */
export interface WindowMark {
  readonly epoch: number;
}

/** Status of one OS permission. */
export type PermissionStatus = 'granted' | 'denied' | 'not-determined' | 'not-applicable' | 'unknown';

/** OS permissions deskd depends on (macOS TCC: Accessibility, Screen Recording). */
export interface RawPermissions {
  /** Status of each permission; on Linux both are `not-applicable`. */
  check(): Promise<{ accessibility: PermissionStatus; screenRecording: PermissionStatus }>;
}

/** Everything one backend provides. Created only by `createPlatform` in `src/platform/index.ts`. */
export interface Platform {
  /** `linux`, `macos` or `fake`. */
  readonly name: 'linux' | 'macos' | 'fake';
  readonly capture: RawCapture;
  readonly mouse: RawMouse;
  readonly keyboard: RawKeyboard;
  readonly accessibility: RawAccessibility;
  readonly permissions: RawPermissions;
  readonly windows: RawWindows;
  /** Release every resource (D-Bus connections, helper processes). */
  close(): Promise<void>;
}
