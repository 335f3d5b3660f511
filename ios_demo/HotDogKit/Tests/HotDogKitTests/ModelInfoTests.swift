import XCTest
@testable import HotDogKit

final class ModelInfoTests: XCTestCase {
    /// The creator-defined metadata `mlkit export --coreml` writes (tests/test_ios_demo_contract.py
    /// checks these keys and values against a real export).
    static let exportedMetadata: [String: String] = [
        "labels": "[\"hot_dog\", \"not_hot_dog\"]",
        "positive_label": "hot_dog",
        "threshold": "0.5",
        "resize_mode": "squash",
        "image_size": "96",
        "toolkit_version": "0.1.0",
        "dataset_hash": "0123456789abcdef",
    ]

    private func metadata(_ changes: [String: String?]) -> [String: String] {
        var out = Self.exportedMetadata
        for (key, value) in changes {
            out[key] = value
        }
        return out
    }

    private func assertInvalid(_ key: ModelInfo.Key, _ value: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelInfo(metadata: metadata([key.rawValue: value])), file: file, line: line) {
            guard case let .invalidValue(badKey, _, _)? = $0 as? ModelInfoError else {
                return XCTFail("expected ModelInfoError.invalidValue, got \($0)", file: file, line: line)
            }
            XCTAssertEqual(badKey, key.rawValue, file: file, line: line)
            XCTAssertTrue($0.localizedDescription.contains(key.rawValue), file: file, line: line)
        }
    }

    func testReadsWhatTheToolkitWrites() throws {
        let info = try ModelInfo(metadata: Self.exportedMetadata)
        XCTAssertEqual(info.labels, ["hot_dog", "not_hot_dog"])
        XCTAssertEqual(info.positiveLabel, "hot_dog")
        XCTAssertEqual(info.threshold, 0.5)
        XCTAssertEqual(info.resizeMode, .squash)
        XCTAssertEqual(info.imageSize, 96)
        XCTAssertEqual(info.toolkitVersion, "0.1.0")
        XCTAssertEqual(info.datasetHash, "0123456789abcdef")
    }

    func testCompactJSONAndOtherValues() throws {
        let info = try ModelInfo(metadata: metadata([
            "labels": #"["not_hot_dog","hot_dog"]"#, "threshold": "0.35", "resize_mode": "center_crop",
            "author": "someone", // keys the app does not read are ignored
        ]))
        XCTAssertEqual(info.labels, ["not_hot_dog", "hot_dog"])
        XCTAssertEqual(info.threshold, 0.35)
        XCTAssertEqual(info.resizeMode, .centerCrop)
    }

    func testOptionalKeysMayBeAbsent() throws {
        let info = try ModelInfo(metadata: metadata(["image_size": nil, "toolkit_version": nil, "dataset_hash": nil]))
        XCTAssertNil(info.imageSize)
        XCTAssertNil(info.toolkitVersion)
        XCTAssertNil(info.datasetHash)
        // A model trained without a dataset record has an empty hash.
        XCTAssertNil(try ModelInfo(metadata: metadata(["dataset_hash": ""])).datasetHash)
    }

    func testEachRequiredKeyIsRequired() {
        for key in [ModelInfo.Key.labels, .positiveLabel, .threshold, .resizeMode] {
            XCTAssertThrowsError(try ModelInfo(metadata: metadata([key.rawValue: nil]))) {
                XCTAssertEqual($0 as? ModelInfoError, .missingKey(key.rawValue))
                XCTAssertTrue($0.localizedDescription.contains(key.rawValue))
                XCTAssertTrue($0.localizedDescription.contains("mlkit export --coreml"))
            }
        }
        XCTAssertThrowsError(try ModelInfo(metadata: [:]))
    }

    func testMalformedLabels() {
        for bad in ["", "hot_dog,not_hot_dog", "[\"hot_dog\", \"not_hot_dog\"", "{\"hot_dog\": 0}", "[1, 2]",
                    "[\"hot_dog\"]", "[\"hot_dog\", \"hot_dog\"]", "[]"] {
            assertInvalid(.labels, bad)
        }
    }

    func testPositiveLabelMustBeALabel() {
        assertInvalid(.positiveLabel, "pizza")
        assertInvalid(.positiveLabel, "")
    }

    func testBadThresholds() {
        for bad in ["", "half", "1.5", "-0.1", "nan", "0,5"] {
            assertInvalid(.threshold, bad)
        }
    }

    func testThresholdBoundaries() throws {
        XCTAssertEqual(try ModelInfo(metadata: metadata(["threshold": "0"])).threshold, 0)
        XCTAssertEqual(try ModelInfo(metadata: metadata(["threshold": "1"])).threshold, 1)
        XCTAssertEqual(try ModelInfo(metadata: metadata(["threshold": " 0.25 "])).threshold, 0.25)
    }

    func testUnknownResizeModeAndBadImageSize() {
        assertInvalid(.resizeMode, "stretch")
        assertInvalid(.resizeMode, "center-crop")
        assertInvalid(.imageSize, "big")
        assertInvalid(.imageSize, "0")
    }

    func testKeysAreDistinct() {
        let keys = ModelInfo.Key.allCases.map(\.rawValue)
        XCTAssertEqual(Set(keys).count, keys.count)
    }
}
