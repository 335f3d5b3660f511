// swift-tools-version:5.7
// The model-independent logic of the HotDogApp sample: Foundation only (no Vision, no
// Core ML), so `swift test` runs on macOS and on Linux.
import PackageDescription

let package = Package(
    name: "HotDogKit",
    platforms: [.iOS(.v16), .macOS(.v12)],
    products: [
        .library(name: "HotDogKit", targets: ["HotDogKit"]),
    ],
    targets: [
        .target(name: "HotDogKit"),
        .testTarget(name: "HotDogKitTests", dependencies: ["HotDogKit"]),
    ]
)
