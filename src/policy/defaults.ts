import { parsePolicy } from './parse.js';
import type { Policy } from './schema.js';

/**
 * The embedded default policy, used when no `--policy` / `DESKD_POLICY` file is given. Strict on
 * purpose: it allows nothing that changes the screen without a person saying yes; the user allows
 * apps by writing a policy file (see `examples/policy.yaml`).
 *
 * - Perception: everything is visible except password managers, keychains and system settings (masked).
 * - Terminals, password managers and system settings: every input action is denied.
 * - Dangerous chords (cmd+q, cmd+option+esc, ctrl+alt+backspace, ctrl+alt+delete): ask.
 * - `wait`, `screenshot`, `observe`: allowed (masked apps stay masked in what they return).
 * - Anything else, i.e. input into an app no rule lists: ask (`defaults.unmatched: ask`).
 * - Password fields (engine invariant): typing denied, values never read.
 *
 * App names are matched against the process name, the macOS bundle id and the X11 WM_CLASS,
 * case-insensitively; `*` is a wildcard.
 */
export const DEFAULT_POLICY_YAML = `# deskd embedded default policy (src/policy/defaults.ts)
version: 1

defaults:
  unmatched: ask        # input into apps no rule lists waits for the operator
  perceive: allow

limits:
  actionsPerSecond: 10
  burst: 20
  maxTypeChars: 2000

approvals:
  timeoutMs: 120000

perception:
  mask: &sensitive
    # password managers and keychains
    - "1Password*"
    - "com.1password.*"
    - "com.agilebits.onepassword*"
    - "Bitwarden"
    - "com.bitwarden.desktop"
    - "KeePass*"
    - "org.keepassxc.keepassxc"
    - "Keychain Access"
    - "com.apple.keychainaccess"
    - "Passwords"
    - "com.apple.Passwords"
    - "seahorse"
    - "org.gnome.seahorse.Application"
    # system settings
    - "System Settings"
    - "System Preferences"
    - "com.apple.systempreferences"
    - "gnome-control-center"
    - "org.gnome.Settings"
    - "systemsettings"
    - "xfce4-settings-manager"

rules:
  - id: allow-readonly
    effect: allow
    description: waiting, screenshots and observations change nothing (masks still apply)
    match:
      actions: ["@readonly"]

  - id: deny-terminals
    effect: deny
    description: no input into terminal emulators
    match:
      actions: ["@input"]
      app:
        - "xterm"
        - "uxterm"
        - "*rxvt*"
        - "gnome-terminal*"
        - "Terminal"
        - "com.apple.Terminal"
        - "iTerm*"
        - "com.googlecode.iterm2"
        - "konsole"
        - "org.kde.konsole"
        - "alacritty"
        - "org.alacritty"
        - "kitty"
        - "net.kovidgoyal.kitty"
        - "wezterm*"
        - "com.github.wez.wezterm"
        - "org.wezfurlong.wezterm"
        - "xfce4-terminal"
        - "mate-terminal"
        - "lxterminal"
        - "qterminal"
        - "tilix"
        - "com.gexperts.Tilix"
        - "terminator"
        - "foot"
        - "footclient"
        - "ghostty"
        - "com.mitchellh.ghostty"
        - "kgx"
        - "org.gnome.Console"
        - "ptyxis"
        - "org.gnome.Ptyxis"
        - "Warp"
        - "dev.warp.Warp-Stable"
        - "Hyper"
        - "co.zeit.hyper"

  - id: deny-sensitive-apps
    effect: deny
    description: no input into password managers, keychains or system settings
    match:
      actions: ["@input"]
      app: *sensitive

  - id: ask-dangerous-chords
    effect: ask
    description: quitting apps, force-quit, killing the X server and ctrl+alt+delete need a person
    match:
      keys: ["cmd+q", "cmd+option+esc", "ctrl+alt+backspace", "ctrl+alt+delete"]
`;

let cached: Policy | undefined;

/** The embedded default policy, parsed and frozen (parsed once). */
export function defaultPolicy(): Policy {
  cached ??= parsePolicy(DEFAULT_POLICY_YAML, 'embedded default policy');
  return cached;
}
