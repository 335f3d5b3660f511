import XCTest
@testable import HotDogKit

/// The crop/scale choice and the messages the app shows, without Vision or Core ML.
final class AppLogicTests: XCTestCase {
    func testResizeModeChoosesVisionsCropAndScale() {
        // squash (the toolkit's default) must not be Vision's default .centerCrop, which
        // would cut the sides off every photo.
        XCTAssertEqual(ResizeMode.squash.cropAndScale, .scaleFill)
        XCTAssertEqual(ResizeMode.centerCrop.cropAndScale, .centerCrop)
        XCTAssertEqual(ResizeMode(rawValue: "squash")?.cropAndScale, .scaleFill)
        XCTAssertEqual(ResizeMode(rawValue: "center_crop")?.cropAndScale, .centerCrop)
        XCTAssertEqual(Set(ResizeMode.allCases.map(\.cropAndScale)), Set(CropAndScale.allCases))
    }

    func testTheMissingModelMessageSaysHowToExportIt() {
        let message = ClassifierError.modelMissing.localizedDescription
        XCTAssertTrue(message.contains("HotDogClassifier.mlmodel"))
        XCTAssertTrue(message.contains("mlkit export MODEL_DIR --coreml --output ios_demo/HotDogApp/HotDogClassifier.mlmodel"))
        XCTAssertTrue(message.contains("ios_demo/README.md"))
    }

    func testTheUnexpectedModelMessagesSayWhatIsWrong() {
        let message = ClassifierError.unexpectedModel("it has no image input named \"image\"").localizedDescription
        XCTAssertEqual(message, "HotDogClassifier.mlmodel is not a model exported by `mlkit export --coreml`: "
            + "it has no image input named \"image\". Export it again.")
        let unusable = ClassifierError.modelUnusable("compiled for a newer iOS").localizedDescription
        XCTAssertTrue(unusable.contains("compiled for a newer iOS") && unusable.contains("mlkit export --coreml"))
    }

    func testPhotoMessages() {
        XCTAssertEqual(ClassifierError.unreadablePhoto.localizedDescription, "This photo could not be read. Try another one.")
        XCTAssertEqual(ClassifierError.predictionFailed("Vision returned no classifications.").localizedDescription,
                       "The photo could not be classified: Vision returned no classifications.")
    }

    func testTheModelFileIsNamedAfterTheContract() {
        XCTAssertEqual(ClassifierError.modelFile, "\(ModelContract.modelName).mlmodel")
    }
}
