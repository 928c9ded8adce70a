// `capture`: one still image of a display or a region of it with ScreenCaptureKit
// (SCScreenshotManager.captureImage, macOS 14+), encoded as PNG.
// The CoreGraphics capture calls nut-js uses are gone on macOS 26 (nut-tree/nut.js#625).
import CoreGraphics
import Foundation
import ImageIO
import ScreenCaptureKit
import UniformTypeIdentifiers

enum Capture {
    /// SCStreamError.userDeclined: the user refused (or has not granted) Screen Recording.
    static func isDenied(_ error: Error) -> Bool {
        if let e = error as? SCStreamError, e.code == .userDeclined { return true }
        let ns = error as NSError
        return ns.domain == SCStreamErrorDomain && ns.code == SCStreamError.Code.userDeclined.rawValue
    }

    static func deniedError() -> HelperError {
        HelperError(
            "PERMISSION_DENIED_SCREEN_RECORDING",
            "Screen Recording is not granted to \(Permissions.responsibleDescription()). Grant it in System Settings > Privacy & Security > Screen & System Audio Recording, then quit and reopen that app."
        )
    }

    /// Params: displayId, region? (global points), scale? ("points" default | "native"), showCursor?.
    static func run(_ p: Params) async throws -> JSONObject {
        let displayId = try p.requiredInt("displayId")
        let region = try p.rect("region")
        let scaleMode = try p.string("scale") ?? "points"
        guard scaleMode == "points" || scaleMode == "native" else { throw HelperError("BAD_REQUEST", "'scale' must be \"points\" or \"native\"") }
        let showCursor = try p.bool("showCursor") ?? false

        // Preflight first: asking ScreenCaptureKit without the grant would show the system prompt.
        guard CGPreflightScreenCaptureAccess() else { throw deniedError() }

        let content: SCShareableContent
        do {
            content = try await SCShareableContent.excludingDesktopWindows(false, onScreenWindowsOnly: true)
        } catch {
            if isDenied(error) { throw deniedError() }
            throw HelperError("CAPTURE_FAILED", "SCShareableContent failed: \(error.localizedDescription)")
        }
        guard let display = content.displays.first(where: { Int($0.displayID) == displayId }) else {
            let ids = content.displays.map { String($0.displayID) }.joined(separator: ", ")
            throw HelperError("DISPLAY_NOT_FOUND", "No active display has id \(displayId) (active: \(ids))")
        }

        let bounds = CGDisplayBounds(display.displayID) // global points
        var rect = bounds
        if let r = region {
            rect = r.intersection(bounds)
            if rect.isNull || rect.width < 1 || rect.height < 1 {
                throw HelperError("CAPTURE_FAILED", "The region \(r) lies outside display \(displayId) (\(bounds))")
            }
        }

        let filter = SCContentFilter(display: display, excludingWindows: [])
        let native = Double(filter.pointPixelScale) // pixels per point of this display
        let outScale = scaleMode == "native" ? native : 1.0

        let config = SCStreamConfiguration()
        // sourceRect is in the display's own point space (origin at its top-left).
        config.sourceRect = CGRect(x: rect.minX - bounds.minX, y: rect.minY - bounds.minY, width: rect.width, height: rect.height)
        config.width = max(1, Int((Double(rect.width) * outScale).rounded()))
        config.height = max(1, Int((Double(rect.height) * outScale).rounded()))
        config.showsCursor = showCursor
        config.pixelFormat = kCVPixelFormatType_32BGRA
        config.colorSpaceName = CGColorSpace.sRGB
        config.captureResolution = scaleMode == "native" ? .best : .nominal

        let image: CGImage
        do {
            image = try await SCScreenshotManager.captureImage(contentFilter: filter, configuration: config)
        } catch {
            if isDenied(error) { throw deniedError() }
            throw HelperError("CAPTURE_FAILED", "SCScreenshotManager.captureImage failed: \(error.localizedDescription)")
        }
        guard let png = pngData(image) else { throw HelperError("CAPTURE_FAILED", "PNG encoding failed") }
        return [
            "png": png.base64EncodedString(),
            "width": image.width,
            "height": image.height,
            "scale": Double(image.width) / Double(rect.width),
            "origin": ["x": finite(Double(rect.minX)), "y": finite(Double(rect.minY))],
            "displayId": displayId,
        ]
    }

    static func pngData(_ image: CGImage) -> Data? {
        let data = NSMutableData()
        guard let dest = CGImageDestinationCreateWithData(data as CFMutableData, UTType.png.identifier as CFString, 1, nil) else { return nil }
        CGImageDestinationAddImage(dest, image, nil)
        guard CGImageDestinationFinalize(dest) else { return nil }
        return data as Data
    }
}
