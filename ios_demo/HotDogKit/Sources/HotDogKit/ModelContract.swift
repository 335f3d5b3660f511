import Foundation

/// The names the app relies on in the model that `mlkit export --coreml` writes.
///
/// They are decided by the toolkit's exporter (`toolkit/export/coreml.py`);
/// `tests/test_ios_demo_contract.py` exports a model and checks it carries exactly
/// these names, so a rename on either side fails there and not on someone's iPhone.
public enum ModelContract {
    /// Xcode names the generated Swift class after the model file:
    /// `HotDogClassifier.mlmodel` gives `HotDogClassifier`, compiled to `HotDogClassifier.mlmodelc`.
    public static let modelName = "HotDogClassifier"
    /// The image input (RGB, square; Vision scales the photo to its size).
    public static let inputName = "image"
    /// The classifier's outputs: the most probable label, and the probability of each label.
    public static let predictedLabelName = "classLabel"
    public static let probabilitiesName = "classLabelProbs"

    /// What the app checks when it starts: the model is the classifier the toolkit exports
    /// (a square image input `image`, the outputs `classLabel` and `classLabelProbs`, class
    /// labels equal to the labels of its metadata) and its metadata is complete. Returns
    /// what the metadata says; throws `ClassifierError.unexpectedModel` or `ModelInfoError`.
    public static func check(_ model: ModelDescription) throws -> ModelInfo {
        guard let input = model.inputs.first(where: { $0.name == inputName }), input.type == .image else {
            throw ClassifierError.unexpectedModel("it has no image input named \"\(inputName)\"")
        }
        guard let width = input.width, let height = input.height, width > 0, width == height else {
            let size = "\(input.width.map(String.init) ?? "?") x \(input.height.map(String.init) ?? "?")"
            throw ClassifierError.unexpectedModel("its input \"\(inputName)\" is \(size) pixels, not a square")
        }
        guard model.predictedFeatureName == predictedLabelName, model.predictedProbabilitiesName == probabilitiesName,
              model.outputs.first(where: { $0.name == predictedLabelName })?.type == .string,
              model.outputs.first(where: { $0.name == probabilitiesName })?.type == .dictionary else {
            throw ClassifierError.unexpectedModel("it is not a classifier with the outputs "
                + "\"\(predictedLabelName)\" and \"\(probabilitiesName)\"")
        }
        let info = try ModelInfo(metadata: model.metadata)
        guard let classLabels = model.classLabels, classLabels == info.labels else {
            throw ClassifierError.unexpectedModel("its classes \(model.classLabels ?? []) are not the labels "
                + "\(info.labels) its metadata lists")
        }
        if let size = info.imageSize, size != width {
            throw ClassifierError.unexpectedModel("its input is \(width) x \(height) pixels but its metadata "
                + "says image_size \(size)")
        }
        return info
    }
}

/// The parts of a Core ML model's description (`MLModelDescription`) the app checks, as
/// plain values: the app fills it from the loaded model, the tests from a JSON fixture
/// that `tests/test_ios_demo_contract.py` writes from a real export
/// (`Tests/HotDogKitTests/Resources/exported_model.json`).
public struct ModelDescription: Codable, Equatable, Sendable {
    /// `MLFeatureType`, named as `MLFeatureType`'s cases.
    public enum FeatureType: String, Codable, Sendable {
        case invalid, int64, double, string, image, multiArray, dictionary, sequence, state
    }

    public struct Feature: Codable, Equatable, Sendable {
        public var name: String
        public var type: FeatureType
        /// An image's size in pixels (`MLImageConstraint.pixelsWide`, `.pixelsHigh`).
        public var width: Int?
        public var height: Int?

        public init(name: String, type: FeatureType, width: Int? = nil, height: Int? = nil) {
            self.name = name
            self.type = type
            self.width = width
            self.height = height
        }
    }

    public var inputs: [Feature]
    public var outputs: [Feature]
    public var predictedFeatureName: String?
    public var predictedProbabilitiesName: String?
    /// `MLModelDescription.classLabels` as strings; nil when the model is not a classifier.
    public var classLabels: [String]?
    /// The creator-defined metadata (`MLModelMetadataKey.creatorDefinedKey`).
    public var metadata: [String: String]

    public init(inputs: [Feature], outputs: [Feature], predictedFeatureName: String?,
                predictedProbabilitiesName: String?, classLabels: [String]?, metadata: [String: String]) {
        self.inputs = inputs
        self.outputs = outputs
        self.predictedFeatureName = predictedFeatureName
        self.predictedProbabilitiesName = predictedProbabilitiesName
        self.classLabels = classLabels
        self.metadata = metadata
    }
}
