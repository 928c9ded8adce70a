// Parity with the Linux backend (issue 21): `windowAt` (stacking order and occlusion at a point), `typeText`
// (any Unicode text), `scroll` (in pixels), `axTable` (table/row/cell reading).
// Sources: CoreGraphics CGWindow.h (CGWindowListCopyWindowInfo: on-screen windows front to back),
// CGEvent.h (CGEventKeyboardSetUnicodeString; CGEventCreateScrollWheelEvent2 with kCGScrollEventUnitPixel,
// "about ten pixels per line" by default), AppKit NSAccessibility (AXRows, AXColumns, AXHeader, AXVisibleRows,
// AXRowIndexRange / AXColumnIndexRange as CFRange AXValues on cells).
// Never compiled or run on a Mac: the TypeScript side is tested against authored transcripts (tests/fixtures/macos).
import AppKit
import ApplicationServices
import CoreGraphics
import Foundation

enum Parity {
    /// `windowAt`: every on-screen window containing (x, y), front to back (all layers), each with its index
    /// in the full front-to-back list (`order`, 0 = frontmost). The TypeScript side picks the first layer-0
    /// window and reports the windows in front of it as occluding the point.
    @MainActor
    static func windowAt(_ p: Params) throws -> JSONObject {
        guard let x = try p.double("x"), let y = try p.double("y") else { throw HelperError("BAD_REQUEST", "'x' and 'y' are required") }
        let all = (Windows.list()["windows"] as? [JSONObject]) ?? []
        var stack: [JSONObject] = []
        for (i, w) in all.enumerated() {
            guard let b = w["bounds"] as? JSONObject,
                  let bx = (b["x"] as? NSNumber)?.doubleValue, let by = (b["y"] as? NSNumber)?.doubleValue,
                  let bw = (b["width"] as? NSNumber)?.doubleValue, let bh = (b["height"] as? NSNumber)?.doubleValue
            else { continue }
            if x >= bx && y >= by && x < bx + bw && y < by + bh {
                var e = w
                e["order"] = i
                stack.append(e)
            }
        }
        let front = NSWorkspace.shared.frontmostApplication.map { Int($0.processIdentifier) }
        return ["point": ["x": x, "y": y], "stack": stack, "frontmostPid": orNull(front)]
    }

    /// Observed limit of one CGEventKeyboardSetUnicodeString event (longer strings are cut); chunks never split
    /// a surrogate pair.
    static let unicodeChunk = 20

    /// `typeText`: post a key-down/key-up pair per chunk of the text's UTF-16 units with the chunk set as the
    /// event's Unicode string (virtual key 0; apps that translate key codes themselves may ignore it).
    static func typeText(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw AX.accessibilityDenied() }
        let text = try p.requiredString("text")
        let units = Array(text.utf16)
        var chunks = 0
        var i = 0
        let src = CGEventSource(stateID: .hidSystemState)
        while i < units.count {
            var end = min(i + unicodeChunk, units.count)
            if end < units.count, UTF16.isLeadSurrogate(units[end - 1]) { end -= 1 }
            var chunk = Array(units[i..<end])
            guard let down = CGEvent(keyboardEventSource: src, virtualKey: 0, keyDown: true),
                  let up = CGEvent(keyboardEventSource: src, virtualKey: 0, keyDown: false)
            else { throw HelperError("INTERNAL", "CGEvent(keyboardEventSource:) returned nil") }
            down.keyboardSetUnicodeString(stringLength: chunk.count, unicodeString: &chunk)
            up.keyboardSetUnicodeString(stringLength: chunk.count, unicodeString: &chunk)
            down.post(tap: .cghidEventTap)
            up.post(tap: .cghidEventTap)
            chunks += 1
            i = end
            usleep(2000)
        }
        return ["done": true, "chunks": chunks, "utf16Length": units.count]
    }

    /// `scroll`: one pixel-unit scroll event (CGEventCreateScrollWheelEvent2, 2 wheels) at (x, y) if given.
    /// deltaY > 0 scrolls the content toward its end (like turning a wheel down), hence wheel1 = -deltaY;
    /// deltaX > 0 toward the right end, wheel2 = -deltaX.
    static func scroll(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw AX.accessibilityDenied() }
        let dx = Int32(clamping: Int((try p.double("deltaX") ?? 0).rounded()))
        let dy = Int32(clamping: Int((try p.double("deltaY") ?? 0).rounded()))
        let src = CGEventSource(stateID: .hidSystemState)
        if let x = try p.double("x"), let y = try p.double("y") {
            let at = CGPoint(x: x, y: y)
            CGEvent(mouseEventSource: src, mouseType: .mouseMoved, mouseCursorPosition: at, mouseButton: .left)?.post(tap: .cghidEventTap)
        }
        guard let ev = CGEvent(scrollWheelEvent2Source: src, units: .pixel, wheelCount: 2, wheel1: -dy, wheel2: -dx, wheel3: 0)
        else { throw HelperError("INTERNAL", "CGEventCreateScrollWheelEvent2 returned nil") }
        if let x = try p.double("x"), let y = try p.double("y") { ev.location = CGPoint(x: x, y: y) }
        ev.post(tap: .cghidEventTap)
        return ["done": true, "unit": "pixel", "deltaX": Int(dx), "deltaY": Int(dy)]
    }

    static func range(_ v: CFTypeRef?) -> (Int, Int)? {
        guard let v = v, CFGetTypeID(v) == AXValueGetTypeID() else { return nil }
        var r = CFRange()
        guard AXValueGetValue(v as! AXValue, .cfRange, &r) else { return nil }
        return (r.location, r.length)
    }

    static func text(_ el: AXUIElement) -> String? {
        let role = AX.string(AX.copy(el, "AXRole").1) ?? ""
        if role == "AXSecureTextField" { return nil }
        for a in ["AXValue", "AXTitle", "AXDescription"] {
            if let s = AX.valueString(AX.copy(el, a).1) ?? AX.string(AX.copy(el, a).1), !s.isEmpty { return s }
        }
        // A cell often holds one AXStaticText / AXTextField child with the text.
        let (kids, _) = AX.children(el, max: 4)
        for k in kids { if let s = text(k) { return s } }
        return nil
    }

    /// `axTable`: the AXTable/AXOutline `element`'s header titles (AXColumns → AXHeader / AXTitle), rows (AXRows,
    /// at most `maxRows`, default 200) and their cells (the row's AXChildren; AXRowIndexRange /
    /// AXColumnIndexRange when the cell reports them, else the row's AXIndex and the child's position).
    static func table(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw AX.accessibilityDenied() }
        let el = try AX.element(try p.requiredString("element"))
        let role = AX.string(AX.copy(el, "AXRole").1) ?? ""
        guard role == "AXTable" || role == "AXOutline" || role == "AXGrid" else {
            throw HelperError("ACTION_UNSUPPORTED", "Element is \(role), not an AXTable/AXOutline/AXGrid")
        }
        let maxRows = try p.int("maxRows") ?? 200
        let maxColumns = try p.int("maxColumns") ?? 50
        let columns = (AX.copy(el, "AXColumns").1 as? [AXUIElement]) ?? []
        let headers: [Any] = columns.prefix(maxColumns).map { c in
            if let h = AX.axElement(AX.copy(c, "AXHeader").1) { return orNull(text(h)) }
            return orNull(AX.string(AX.copy(c, "AXTitle").1))
        }
        let rows = (AX.copy(el, "AXRows").1 as? [AXUIElement]) ?? []
        var out: [JSONObject] = []
        for (ri, row) in rows.prefix(maxRows).enumerated() {
            let rowIndex = (AX.copy(row, "AXIndex").1 as? NSNumber)?.intValue ?? ri
            let (cells, _) = AX.children(row, max: maxColumns)
            var cellsOut: [JSONObject] = []
            for (ci, cell) in cells.enumerated() {
                let rr = range(AX.copy(cell, "AXRowIndexRange").1)
                let cr = range(AX.copy(cell, "AXColumnIndexRange").1)
                let secure = (AX.string(AX.copy(cell, "AXRole").1) ?? "") == "AXSecureTextField"
                var c: JSONObject = [
                    "row": rr?.0 ?? rowIndex, "column": cr?.0 ?? ci,
                    "rowSpan": rr?.1 ?? 1, "columnSpan": cr?.1 ?? 1,
                    "role": AX.string(AX.copy(cell, "AXRole").1) ?? "AXUnknown",
                    "text": secure ? NSNull() : orNull(text(cell)),
                ]
                if secure { c["secure"] = true }
                cellsOut.append(c)
            }
            var r: JSONObject = ["index": rowIndex, "cells": cellsOut]
            if let s = AX.bool(AX.copy(row, "AXSelected").1) { r["selected"] = s }
            out.append(r)
        }
        return [
            "role": role,
            "rowCount": rows.count, "columnCount": columns.count,
            "headers": headers, "rows": out,
            "truncated": rows.count > maxRows || columns.count > maxColumns,
        ]
    }
}
