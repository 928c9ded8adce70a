/**
 * Telling toolkit class names from element names, for every backend and for perception.
 *
 * GTK 4 gives an accessible object without a label its widget type name as `Name` (measured on
 * gnome-calculator: `GtkButton` for π and x², `GtkImage` for backspace, `GtkMenuButton`, `GtkSourceView`
 * for the display); Qt and AppKit/AX have the same habit (`QPushButton`, `NSButton`, `AXButton`). Such a
 * name says nothing a person sees, so it is treated as no name at all (screen readers then fall back to
 * the label relation, the label child, the tooltip, …; see `docs/perception.md`, "Naming rule").
 */

/**
 * Prefixes of toolkit type names: GTK/GDK/libadwaita/libhandy/GtkSourceView/WebKitGTK, Qt (`Q` + capital:
 * `QPushButton`, `QWidget`), AppKit/UIKit (`NS`, `UI`), macOS AX roles (`AX`), wxWidgets (`wx`), VCL (`Vcl`),
 * Java Swing (`J` + capital is too common in names, left out).
 */
const CLASS_NAME = /^(?:Gtk|Gdk|Adw|Hdy|Gsv|WebKit|Qt|Q|NS|UI|AX|wx|Vcl)[A-Z][a-z][A-Za-z0-9_]*$/;

/**
 * True when `name` is a toolkit class name rather than a name a person reads (`GtkButton`, `GtkImage`,
 * `AdwGizmo`, `QPushButton`, `NSButton`, `AXGroup`, `Gtk.Button`, `GtkMenuButton.flat`). A single
 * CamelCase token whose first hump is a toolkit prefix; words with spaces, lower-case words and ordinary
 * CamelCase words (`JavaScript`, `GitHub`) are names.
 */
export function isToolkitClassName(name: string | null | undefined): boolean {
  const s = (name ?? '').trim();
  if (s === '' || /\s/.test(s)) return false;
  // `Gtk.Button` / `Gtk::Button` (language bindings) and `GtkMenuButton.flat` (CSS-style suffixes) too.
  const joined = s.replace(/^(Gtk|Gdk|Adw|Qt)(?:\.|::)/, '$1');
  return CLASS_NAME.test(joined.split('.')[0]!);
}
