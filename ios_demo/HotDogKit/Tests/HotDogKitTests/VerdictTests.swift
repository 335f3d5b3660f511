import XCTest
@testable import HotDogKit

final class VerdictTests: XCTestCase {
    private let labels = ["hot_dog", "not_hot_dog"]

    private func verdict(_ positive: Float, threshold: Float = 0.5) throws -> Verdict {
        try Verdict(classifications: [.init("hot_dog", positive), .init("not_hot_dog", 1 - positive)],
                    positiveLabel: "hot_dog", threshold: threshold)
    }

    func testPositiveAtTheThresholdIsPositive() throws {
        let v = try verdict(0.5)
        XCTAssertTrue(v.isPositive)
        XCTAssertEqual(v.label, "hot_dog")
        XCTAssertEqual(v.confidence, 0.5)
        XCTAssertEqual(v.displayName, "Hot dog!")
    }

    func testJustBelowTheThresholdIsTheOtherLabel() throws {
        let v = try verdict(Float(0.75).nextDown, threshold: 0.75)
        XCTAssertFalse(v.isPositive)
        XCTAssertEqual(v.label, "not_hot_dog")
        XCTAssertEqual(v.confidence, 1 - Float(0.75).nextDown, accuracy: 1e-6)
        XCTAssertEqual(v.positiveConfidence, Float(0.75).nextDown)
        XCTAssertEqual(v.displayName, "Not hot dog!")
    }

    func testAHighThresholdOverrulesTheMostProbableLabel() throws {
        // 0.7 is the most probable, but the model was tuned to say "hot dog" only from 0.8.
        let v = try verdict(0.7, threshold: 0.8)
        XCTAssertEqual(v.label, "not_hot_dog")
        XCTAssertEqual(v.threshold, 0.8)
    }

    func testALowThresholdSaysHotDogMoreOften() throws {
        XCTAssertTrue(try verdict(0.25, threshold: 0.25).isPositive)
        XCTAssertTrue(try verdict(0, threshold: 0).isPositive)
        XCTAssertFalse(try verdict(Float(1).nextDown, threshold: 1).isPositive)
        XCTAssertTrue(try verdict(1, threshold: 1).isPositive)
    }

    func testTheOrderOfClassificationsDoesNotMatter() throws {
        // Vision sorts observations by confidence, the model lists them in label order.
        let sorted = try Verdict(classifications: [.init("not_hot_dog", 0.9), .init("hot_dog", 0.1)],
                                 positiveLabel: "hot_dog", threshold: 0.5)
        XCTAssertEqual(sorted.label, "not_hot_dog")
        XCTAssertEqual(sorted.confidence, 0.9)
        XCTAssertEqual(sorted.positiveConfidence, 0.1)
    }

    func testMoreThanTwoLabelsTheMostProbableWins() throws {
        // The same cases as toolkit.predict.decide's test: the threshold is the two-class rule.
        func decide(_ p: [Float]) throws -> String {
            try Verdict(classifications: zip(["cat", "dog", "other"], p).map { Classification($0.0, $0.1) },
                        positiveLabel: "dog", threshold: 0.6).label
        }
        XCTAssertEqual(try decide([0.5, 0.3, 0.2]), "cat")
        XCTAssertEqual(try decide([0.1, 0.6, 0.3]), "dog")
        XCTAssertEqual(try decide([0.2, 0.5, 0.3]), "dog")   // below the threshold, yet the most probable
        XCTAssertEqual(try decide([0.4, 0.2, 0.4]), "cat")   // a tie: the first, as argmax
    }

    func testBelowTheThresholdTheOtherOfTwoLabelsWins() throws {
        let v = try Verdict(classifications: [.init("hot_dog", 0.55), .init("not_hot_dog", 0.45)],
                            positiveLabel: "hot_dog", threshold: 0.6)
        XCTAssertEqual(v.label, "not_hot_dog")
        XCTAssertFalse(v.isPositive)
    }

    func testWithModelInfo() throws {
        let info = try ModelInfo(labels: labels, positiveLabel: "hot_dog", threshold: 0.6)
        let v = try Verdict(classifications: [.init("hot_dog", 0.55), .init("not_hot_dog", 0.45)], info: info)
        XCTAssertEqual(v.label, "not_hot_dog")
        XCTAssertEqual(v.confidence, 0.45)
    }

    func testUnknownLabelsAreRejected() throws {
        let info = try ModelInfo(labels: labels, positiveLabel: "hot_dog", threshold: 0.5)
        XCTAssertThrowsError(try Verdict(classifications: [.init("hot_dog", 0.5), .init("pizza", 0.5)], info: info)) {
            XCTAssertEqual($0 as? VerdictError, .unknownLabel("pizza", known: self.labels))
        }
    }

    func testMissingOrBrokenClassificationsAreErrors() {
        XCTAssertThrowsError(try Verdict(classifications: [], positiveLabel: "hot_dog", threshold: 0.5)) {
            XCTAssertEqual($0 as? VerdictError, .noClassifications)
        }
        XCTAssertThrowsError(try Verdict(classifications: [.init("not_hot_dog", 1)], positiveLabel: "hot_dog",
                                         threshold: 0.5)) {
            XCTAssertEqual($0 as? VerdictError, .missingLabel("hot_dog"))
        }
        XCTAssertThrowsError(try Verdict(classifications: [.init("hot_dog", 0.2)], positiveLabel: "hot_dog",
                                         threshold: 0.5)) {
            XCTAssertEqual($0 as? VerdictError, .onlyPositiveLabel("hot_dog"))
        }
        XCTAssertThrowsError(try Verdict(classifications: [.init("hot_dog", -0.1), .init("not_hot_dog", 1.1)],
                                         positiveLabel: "hot_dog", threshold: 0.5)) {
            XCTAssertEqual($0 as? VerdictError, .invalidConfidence(label: "hot_dog", value: -0.1))
        }
        XCTAssertThrowsError(try Verdict(classifications: [.init("hot_dog", .nan), .init("not_hot_dog", 0.5)],
                                         positiveLabel: "hot_dog", threshold: 0.5))
        for threshold: Float in [-0.01, 1.01, .nan] {
            XCTAssertThrowsError(try verdict(0.5, threshold: threshold)) {
                XCTAssertNotNil($0 as? VerdictError)
            }
        }
    }

    func testErrorsExplainThemselves() {
        let error: Error = VerdictError.unknownLabel("pizza", known: labels)
        XCTAssertTrue(error.localizedDescription.contains("pizza"))
        XCTAssertTrue(error.localizedDescription.contains("mlkit export"))
    }
}
