import Foundation
import XCTest
@testable import HotDogKit

final class PredictionTests: XCTestCase {
    private let english = Locale(identifier: "en_US")

    private func info(_ labels: [String], threshold: Float = 0.5) throws -> ModelInfo {
        try ModelInfo(labels: labels, positiveLabel: labels[0], threshold: threshold)
    }

    private func predict(_ pairs: [(String, Float)], _ info: ModelInfo) throws -> Prediction {
        try Prediction(classifications: pairs.map { Classification($0.0, $0.1) }, info: info)
    }

    func testTwoClassesAreAVerdict() throws {
        let p = try predict([("not_hot_dog", 0.88), ("hot_dog", 0.12)], try info(["hot_dog", "not_hot_dog"]))
        XCTAssertTrue(p.isBinary)
        XCTAssertEqual(p.top, Classification("not_hot_dog", 0.88))
        XCTAssertFalse(p.verdict.isPositive)
        XCTAssertEqual(p.runnersUp(2), [])
        let text = ResultText(p, locale: english)
        XCTAssertEqual(text.title, "Not hot dog!")
        XCTAssertEqual(text.tone, .negative)
        XCTAssertEqual(text.probability, "Probability 88%")
        XCTAssertEqual(text.detail, "Hot dog! at 50% or more; this photo: 12%")
    }

    func testThePositiveVerdictIsGreen() throws {
        let p = try predict([("hot_dog", 0.7), ("not_hot_dog", 0.3)], try info(["hot_dog", "not_hot_dog"], threshold: 0.6))
        let text = ResultText(p, locale: english)
        XCTAssertEqual(text.title, "Hot dog!")
        XCTAssertEqual(text.tone, .positive)
        XCTAssertEqual(text.detail, "Hot dog! at 60% or more; this photo: 70%")
    }

    func testThreeClassesShowTheTopLabelAndTheRunnersUp() throws {
        // A hamburger / sandwich / pizza model runs through the same code, unchanged.
        let model = try info(["hamburger", "sandwich", "pizza"])
        let p = try predict([("pizza", 0.1), ("hamburger", 0.2), ("sandwich", 0.7)], model)
        XCTAssertFalse(p.isBinary)
        XCTAssertEqual(p.top, Classification("sandwich", 0.7))
        XCTAssertEqual(p.ranked.map(\.label), ["sandwich", "hamburger", "pizza"])
        XCTAssertEqual(p.top(2).map(\.label), ["sandwich", "hamburger"])
        XCTAssertEqual(p.top(10).count, 3)
        XCTAssertEqual(p.top(0), [])
        XCTAssertEqual(p.runnersUp(1).map(\.label), ["hamburger"])
        let text = ResultText(p, locale: english)
        XCTAssertEqual(text.title, "Sandwich!")
        XCTAssertEqual(text.tone, .neutral)
        XCTAssertEqual(text.probability, "Probability 70%")
        XCTAssertEqual(text.detail, "Hamburger 20% · Pizza 10%")
    }

    func testManyClassesShowTwoRunnersUp() throws {
        let labels = ["apple", "banana", "ice_cream", "pizza", "taco"]
        let p = try predict(zip(labels, [0.05, 0.1, 0.6, 0.15, 0.1]).map { ($0, $1) }, try info(labels))
        XCTAssertEqual(p.ranked.map(\.label), ["ice_cream", "pizza", "banana", "taco", "apple"])  // ties in label order
        XCTAssertEqual(ResultText(p, locale: english).title, "Ice cream!")
        XCTAssertEqual(ResultText(p, locale: english).detail, "Pizza 15% · Banana 10%")
    }

    func testMoreClassesDecideByTheHighestProbability() throws {
        // toolkit.predict.decide: the threshold is the two-class rule; with more classes the
        // most probable label wins, whatever the threshold says (issue 13).
        let model = try info(["hamburger", "sandwich", "pizza"], threshold: 0.3)
        let p = try predict([("hamburger", 0.35), ("sandwich", 0.4), ("pizza", 0.25)], model)
        XCTAssertEqual(p.top, Classification("sandwich", 0.4))
        XCTAssertFalse(p.verdict.isPositive)
        XCTAssertEqual(p.ranked.first?.label, "sandwich")
        XCTAssertEqual(ResultText(p, locale: english).detail, "Hamburger 35% · Pizza 25%")
        // below 0.5 and still the most probable: the positive label wins
        let q = try predict([("hamburger", 0.45), ("sandwich", 0.3), ("pizza", 0.25)], try info(["hamburger", "sandwich", "pizza"]))
        XCTAssertEqual(q.top, Classification("hamburger", 0.45))
        XCTAssertTrue(q.verdict.isPositive)
    }

    func testTiesGoToTheFirstLabelWhateverVisionsOrder() throws {
        let model = try info(["hot_dog", "not_hot_dog"], threshold: 0.6)
        let a = try predict([("not_hot_dog", 0.5), ("hot_dog", 0.5)], model)
        let b = try predict([("hot_dog", 0.5), ("not_hot_dog", 0.5)], model)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.ranked.map(\.label), ["hot_dog", "not_hot_dog"])
        let three = try info(["a", "b", "c"], threshold: 0.9)
        XCTAssertEqual(try predict([("c", 0.4), ("b", 0.4), ("a", 0.2)], three).top.label, "b")
    }

    func testEveryLabelMustHaveAProbability() throws {
        let model = try info(["hamburger", "sandwich", "pizza"])
        XCTAssertThrowsError(try predict([("hamburger", 0.6), ("sandwich", 0.4)], model)) {
            XCTAssertEqual($0 as? VerdictError, .missingLabel("pizza"))
        }
        XCTAssertThrowsError(try predict([("hamburger", 0.6), ("sandwich", 0.2), ("pizza", 0.1), ("taco", 0.1)], model)) {
            XCTAssertEqual($0 as? VerdictError, .unknownLabel("taco", known: ["hamburger", "sandwich", "pizza"]))
        }
    }

    func testPercentIsRoundedAndLocalised() {
        XCTAssertEqual(percent(0.834, locale: english), "83%")
        XCTAssertEqual(percent(0.836, locale: english), "84%")
        XCTAssertEqual(percent(1, locale: english), "100%")
        XCTAssertEqual(percent(0, locale: english), "0%")
        XCTAssertNotEqual(percent(0.5, locale: Locale(identifier: "fr_FR")), "50%")  // "50 %" with a narrow space
    }

    func testModelInfoTexts() throws {
        let hotDog = try ModelInfo(labels: ["hot_dog", "not_hot_dog"], positiveLabel: "hot_dog", threshold: 0.5,
                                   resizeMode: .squash, imageSize: 224, toolkitVersion: "0.1.0")
        XCTAssertEqual(hotDog.question, "Hot dog?")
        XCTAssertEqual(hotDog.summary, "Model: Hot dog! / Not hot dog! (224 px, squash, mlkit 0.1.0)")
        let food = try ModelInfo(labels: ["hamburger", "hot_dog", "pizza"], positiveLabel: "pizza", threshold: 0.5,
                                 resizeMode: .centerCrop)
        XCTAssertEqual(food.question, "Hamburger, hot dog or pizza?")
        XCTAssertEqual(food.summary, "Model: Hamburger! / Hot dog! / Pizza! (center_crop)")
    }
}
