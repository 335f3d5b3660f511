import Foundation
import XCTest
@testable import HotDogKit

/// `ModelContract.check`, the check the app runs on the loaded model at launch, on the
/// description of a real `mlkit export --coreml` (Resources/exported_model.json, written and
/// kept fresh by tests/test_ios_demo_contract.py), and on variants of it made here.
final class ModelContractTests: XCTestCase {
    private func exported() throws -> ModelDescription {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "exported_model", withExtension: "json",
                                                  subdirectory: "Resources"),
                                "the fixture is missing: see tests/test_ios_demo_contract.py")
        return try JSONDecoder().decode(ModelDescription.self, from: Data(contentsOf: url))
    }

    private func assertUnexpected(_ model: ModelDescription, mentions words: [String],
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelContract.check(model), file: file, line: line) { error in
            guard case .unexpectedModel? = error as? ClassifierError else {
                return XCTFail("expected ClassifierError.unexpectedModel, got \(error)", file: file, line: line)
            }
            for word in words {
                XCTAssertTrue(error.localizedDescription.contains(word), "\(error.localizedDescription) lacks \(word)",
                              file: file, line: line)
            }
            XCTAssertTrue(error.localizedDescription.contains("mlkit export --coreml"), file: file, line: line)
        }
    }

    func testARealExportIsAccepted() throws {
        let info = try ModelContract.check(try exported())
        XCTAssertEqual(info.labels, ["hot_dog", "not_hot_dog"])
        XCTAssertEqual(info.positiveLabel, "hot_dog")
        XCTAssertEqual(info.threshold, 0.5)
        XCTAssertEqual(info.resizeMode, .squash)
        XCTAssertEqual(info.imageSize, 96)
        XCTAssertNil(info.datasetHash)  // a model trained without a dataset record
    }

    func testTheFixtureUsesTheContractNames() throws {
        let model = try exported()
        XCTAssertEqual(model.inputs.map(\.name), [ModelContract.inputName])
        XCTAssertEqual(Set(model.outputs.map(\.name)), [ModelContract.predictedLabelName, ModelContract.probabilitiesName])
    }

    func testAWrongInputNameIsRejected() throws {
        var model = try exported()
        model.inputs[0].name = "input_1"
        assertUnexpected(model, mentions: ["no image input named \"image\""])
    }

    func testAnInputThatIsNoImageIsRejected() throws {
        var model = try exported()
        model.inputs[0] = ModelDescription.Feature(name: "image", type: .multiArray)
        assertUnexpected(model, mentions: ["no image input"])
    }

    func testMissingLabelsAreRejected() throws {
        var model = try exported()
        model.metadata["labels"] = nil
        XCTAssertThrowsError(try ModelContract.check(model)) {
            XCTAssertEqual($0 as? ModelInfoError, .missingKey("labels"))
        }
        model = try exported()
        model.classLabels = nil  // not a classifier
        assertUnexpected(model, mentions: ["classes"])
        model = try exported()
        model.classLabels = ["hot_dog"]
        assertUnexpected(model, mentions: ["hot_dog", "not_hot_dog"])
        model = try exported()
        model.classLabels = ["not_hot_dog", "hot_dog"]  // another output order than the metadata's
        assertUnexpected(model, mentions: ["classes"])
    }

    func testAWrongSizeIsRejected() throws {
        var model = try exported()
        model.inputs[0].width = 224
        assertUnexpected(model, mentions: ["224 x 96", "not a square"])
        model = try exported()
        model.inputs[0].width = 224
        model.inputs[0].height = 224
        assertUnexpected(model, mentions: ["224 x 224", "image_size 96"])
        model = try exported()
        model.inputs[0].height = nil
        assertUnexpected(model, mentions: ["not a square"])
        model = try exported()
        model.metadata["image_size"] = "0"
        XCTAssertThrowsError(try ModelContract.check(model)) {
            guard case .invalidValue(key: "image_size", _, _)? = $0 as? ModelInfoError else {
                return XCTFail("expected an invalid image_size, got \($0)")
            }
        }
    }

    func testOtherOutputsAreRejected() throws {
        var model = try exported()
        model.predictedProbabilitiesName = "probabilities"
        assertUnexpected(model, mentions: ["classLabel", "classLabelProbs"])
        model = try exported()
        model.outputs = model.outputs.map { ModelDescription.Feature(name: $0.name, type: .multiArray) }
        assertUnexpected(model, mentions: ["classLabelProbs"])
    }

    func testBadMetadataIsRejectedWithItsMessage() throws {
        var model = try exported()
        model.metadata["resize_mode"] = "stretch"
        XCTAssertThrowsError(try ModelContract.check(model)) {
            XCTAssertTrue($0.localizedDescription.contains("resize_mode"))
        }
    }

    func testAThreeClassModelIsAccepted() throws {
        // What `mlkit export --coreml` writes for a hamburger / sandwich / pizza model.
        var model = try exported()
        let labels = ["hamburger", "sandwich", "pizza"]
        model.classLabels = labels
        model.metadata["labels"] = #"["hamburger", "sandwich", "pizza"]"#
        model.metadata["positive_label"] = "hamburger"
        let info = try ModelContract.check(model)
        XCTAssertEqual(info.labels, labels)
        XCTAssertEqual(info.question, "Hamburger, sandwich or pizza?")
    }

    func testARealThreeClassExportIsAccepted() throws {
        // Resources/exported_model_3class.json: a real three-class export, written and kept
        // fresh by tests/test_multiclass_model.py.
        let url = try XCTUnwrap(Bundle.module.url(forResource: "exported_model_3class", withExtension: "json",
                                                  subdirectory: "Resources"),
                                "the fixture is missing: see tests/test_multiclass_model.py")
        var model = try JSONDecoder().decode(ModelDescription.self, from: Data(contentsOf: url))
        let info = try ModelContract.check(model)
        XCTAssertEqual(info.labels, ["hamburger", "pizza", "sandwich"])
        XCTAssertEqual(info.question, "Hamburger, pizza or sandwich?")
        let p = try Prediction(classifications: [.init("sandwich", 0.2), .init("pizza", 0.45), .init("hamburger", 0.35)],
                               info: info)
        XCTAssertEqual(p.top, Classification("pizza", 0.45))
        XCTAssertEqual(p.top(2).map(\.label), ["pizza", "hamburger"])
        model.classLabels = ["hamburger", "sandwich", "pizza"]  // another order than the metadata's
        assertUnexpected(model, mentions: ["classes"])
    }

    func testTheDescriptionRoundTripsThroughJSON() throws {
        let model = try exported()
        let again = try JSONDecoder().decode(ModelDescription.self, from: JSONEncoder().encode(model))
        XCTAssertEqual(again, model)
    }
}
