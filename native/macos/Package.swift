// swift-tools-version:5.9
// deskd's macOS helper: ScreenCaptureKit capture, AXUIElement trees and actions, TCC checks,
// spoken as JSON lines over stdio (protocol 1, see docs/macos.md and src/platform/macos/protocol.ts).
// Build: `swift build -c release` → .build/release/deskd-helper (or `node scripts/build-macos-helper.mjs`).
import PackageDescription

let package = Package(
    name: "deskd-helper",
    // SCScreenshotManager (the one-shot capture API) needs macOS 14.
    platforms: [.macOS(.v14)],
    products: [.executable(name: "deskd-helper", targets: ["deskd-helper"])],
    targets: [
        .executableTarget(
            name: "deskd-helper",
            path: "Sources/deskd-helper",
            linkerSettings: [
                .linkedFramework("AppKit"),
                .linkedFramework("ApplicationServices"),
                .linkedFramework("ScreenCaptureKit"),
                .linkedFramework("ImageIO"),
            ]
        ),
    ]
)
