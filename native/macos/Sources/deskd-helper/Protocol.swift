// Protocol 1 of the deskd macOS helper: JSON lines over stdio.
// The TypeScript statement of the same protocol is src/platform/macos/protocol.ts; keep them in step.
import Foundation

let protocolVersion = 1
let helperVersion = "0.2.0"

/// An error answered as {"ok": false, "error": {"code", "message"}}. Codes: see protocol.ts HelperErrorCodeSchema.
struct HelperError: Error {
    let code: String
    let message: String
    init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Operations and the TCC permissions each needs (announced in the hello line).
let operations: [(name: String, permissions: [String])] = [
    ("displays", []),
    ("capture", ["screenRecording"]),
    ("axTree", ["accessibility"]),
    ("press", ["accessibility"]),
    ("setValue", ["accessibility"]),
    ("focus", ["accessibility"]),
    ("focused", ["accessibility"]),
    ("windows", []),
    ("screenLocked", []),
    ("permissions", []),
    ("axElementAt", ["accessibility"]),
    ("axOwner", ["accessibility"]),
    ("axUrl", ["accessibility"]),
    ("windowAt", []),
    ("typeText", ["accessibility"]),
    ("scroll", ["accessibility"]),
    ("axTable", ["accessibility"]),
]

/// A JSON object as parsed by JSONSerialization.
typealias JSONObject = [String: Any]

/// Typed reads of request parameters; a wrong type is a BAD_REQUEST.
struct Params {
    let raw: JSONObject

    func int(_ key: String) throws -> Int? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, !isBool(n) else { throw HelperError("BAD_REQUEST", "'\(key)' must be a number") }
        return n.intValue
    }
    func requiredInt(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw HelperError("BAD_REQUEST", "'\(key)' is required") }
        return v
    }
    func double(_ key: String) throws -> Double? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, !isBool(n) else { throw HelperError("BAD_REQUEST", "'\(key)' must be a number") }
        return n.doubleValue
    }
    func string(_ key: String) throws -> String? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw HelperError("BAD_REQUEST", "'\(key)' must be a string") }
        return s
    }
    func requiredString(_ key: String) throws -> String {
        guard let v = try string(key) else { throw HelperError("BAD_REQUEST", "'\(key)' is required") }
        return v
    }
    func bool(_ key: String) throws -> Bool? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, isBool(n) else { throw HelperError("BAD_REQUEST", "'\(key)' must be a boolean") }
        return n.boolValue
    }
    /// A {x, y, width, height} object in global points.
    func rect(_ key: String) throws -> CGRect? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        guard let o = v as? JSONObject else { throw HelperError("BAD_REQUEST", "'\(key)' must be an object") }
        let p = Params(raw: o)
        guard let x = try p.double("x"), let y = try p.double("y"), let w = try p.double("width"), let h = try p.double("height"), w > 0, h > 0 else {
            throw HelperError("BAD_REQUEST", "'\(key)' needs numeric x, y and positive width, height")
        }
        return CGRect(x: x, y: y, width: w, height: h)
    }
}

private func isBool(_ n: NSNumber) -> Bool {
    CFGetTypeID(n) == CFBooleanGetTypeID()
}

/// A finite number for JSON (JSONSerialization throws an ObjC exception on NaN/Inf).
func finite(_ d: Double) -> Double { d.isFinite ? d : 0 }

/// {x, y, width, height} for JSON.
func frameJSON(_ r: CGRect) -> JSONObject {
    ["x": finite(Double(r.origin.x)), "y": finite(Double(r.origin.y)), "width": finite(Double(r.size.width)), "height": finite(Double(r.size.height))]
}

/// `value ?? NSNull()` for JSON nulls.
func orNull(_ v: Any?) -> Any { v ?? NSNull() }
