import XCTest
@testable import HotDogKit

final class ImageOrientationTests: XCTestCase {
    /// UIImage.Orientation's raw values (UIKit) -> CGImagePropertyOrientation's (ImageIO), as
    /// Apple's headers number them (sources in ImageOrientation.swift).
    private let expected: [(uiKit: Int, name: String, exif: UInt32)] = [
        (0, "up", 1), (1, "down", 3), (2, "left", 8), (3, "right", 6),
        (4, "upMirrored", 2), (5, "downMirrored", 4), (6, "leftMirrored", 5), (7, "rightMirrored", 7),
    ]

    func testEveryUIKitOrientation() throws {
        for (uiKit, name, exif) in expected {
            let orientation = try XCTUnwrap(ImageOrientation(uiImageOrientation: uiKit), name)
            XCTAssertEqual(orientation.exifValue, exif, name)
            XCTAssertEqual("\(orientation)", name, "the same turn has the same name in both enums")
        }
    }

    func testTheMappingIsOneToOne() {
        let values = (0..<8).compactMap { ImageOrientation(uiImageOrientation: $0)?.exifValue }
        XCTAssertEqual(Set(values), Set(1...8))
        XCTAssertEqual(ImageOrientation.allCases.map(\.exifValue), Array(1...8))
    }

    func testUnknownValuesAreNotGuessed() {
        for raw in [-1, 8, 9, 100] {
            XCTAssertNil(ImageOrientation(uiImageOrientation: raw), "\(raw)")
        }
    }

    func testAPortraitPhotoFromTheCamera() {
        // The camera stores portrait photos as landscape pixels with UIImage.Orientation.right,
        // which EXIF calls 6 ("rotate 90° clockwise to display").
        XCTAssertEqual(ImageOrientation(uiImageOrientation: 3), .right)
        XCTAssertEqual(ImageOrientation.right.exifValue, 6)
    }
}
