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
        // Resources/exported_model.json: a real export's description, written by
        // tests/test_ios_demo_contract.py (see ModelContractTests).
        .testTarget(name: "HotDogKitTests", dependencies: ["HotDogKit"], resources: [.copy("Resources")]),
    ]
)
