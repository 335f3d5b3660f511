import CoreML
import HotDogKit
import ImageIO
import UIKit
import Vision

/// A photo as Vision needs it: the pixels as shot and how to turn them upright. Both are
/// Sendable (CoreGraphics declares CGImage, which is immutable, Sendable from iOS 7, see
/// https://forums.swift.org/t/swift-6-cgimage-how-do-i-silence-this-error/72939;
/// CGImagePropertyOrientation is a C enum), so a photo can leave the main actor where
/// UIKit made it, without sending the UIImage itself.
struct Photo: Sendable {
    let cgImage: CGImage
    let orientation: CGImagePropertyOrientation

    /// Nil for an image with no bitmap behind it (e.g. one made from a CIImage only).
    @MainActor init?(_ image: UIImage) {
        guard let cgImage = image.cgImage else {
            return nil
        }
        self.cgImage = cgImage
        // The pixels stay as shot; Vision turns them upright with the photo's orientation.
        self.orientation = CGImagePropertyOrientation(image.imageOrientation)
    }
}

/// Classifies photos with the exported model, off the main thread.
///
/// An actor: its state (the one loaded model, kept since loading reads the weights and
/// prepares the compute units, which takes longer than a prediction) is reached only
/// through it, one call at a time, on the concurrency pool and never on the main actor.
/// What goes in (`Photo`) and what comes out (`ModelInfo`, `Prediction`) is Sendable;
/// the Core ML and Vision objects, which are not, never leave it.
actor PhotoClassifier {
    static let shared = PhotoClassifier()

    /// The loaded model and what its metadata says about it.
    private struct LoadedModel {
        let vision: VNCoreMLModel
        let info: ModelInfo
    }

    private var loaded: LoadedModel?

    private init() {}

    /// Loads the model unless it is loaded, so that a missing or unusable model is
    /// reported when the app starts rather than at the first photo.
    func prepare() throws -> ModelInfo {
        try loadedModel().info
    }

    /// Runs Vision synchronously: a prediction takes tens of milliseconds, and holding
    /// the actor meanwhile is what makes a second photo wait for the first.
    func classify(_ photo: Photo) throws -> Prediction {
        let model = try loadedModel()
        let handler = VNImageRequestHandler(cgImage: photo.cgImage, orientation: photo.orientation, options: [:])
        let request = VNCoreMLRequest(model: model.vision)
        // Scale the photo to the model's square input the way its training images were.
        request.imageCropAndScaleOption = model.info.resizeMode.cropAndScale.visionOption
        do {
            try handler.perform([request])
        } catch {
            throw ClassifierError.predictionFailed(error.localizedDescription)
        }
        guard let observations = request.results as? [VNClassificationObservation], !observations.isEmpty else {
            throw ClassifierError.predictionFailed("Vision returned no classifications.")
        }
        return try Prediction(classifications: observations.map { Classification($0.identifier, $0.confidence) },
                              info: model.info)
    }

    private func loadedModel() throws -> LoadedModel {
        if let loaded {
            return loaded
        }
        let coreMLModel = try Self.loadCoreMLModel()
        // The same check HotDogKit's tests run on a real export (ModelContractTests).
        let info = try ModelContract.check(ModelDescription(coreMLModel.modelDescription))
        let vision: VNCoreMLModel
        do {
            vision = try VNCoreMLModel(for: coreMLModel)
        } catch {
            throw ClassifierError.modelUnusable(error.localizedDescription)
        }
        let model = LoadedModel(vision: vision, info: info)
        loaded = model
        return model
    }

    private static func loadCoreMLModel() throws -> MLModel {
        // Xcode's generated class force-unwraps the compiled model's URL: look first, to
        // say what to do instead of crashing.
        guard Bundle.main.url(forResource: ModelContract.modelName, withExtension: "mlmodelc") != nil else {
            throw ClassifierError.modelMissing
        }
        let configuration = MLModelConfiguration()
        #if targetEnvironment(simulator)
        configuration.computeUnits = .cpuOnly  // the Simulator has no Neural Engine: stay on the CPU
        #endif
        do {
            return try HotDogClassifier(configuration: configuration).model
        } catch {
            throw ClassifierError.modelUnusable(error.localizedDescription)
        }
    }
}

extension ModelDescription {
    /// The parts of Core ML's description that `ModelContract.check` reads.
    init(_ description: MLModelDescription) {
        func features(_ byName: [String: MLFeatureDescription]) -> [Feature] {
            byName.keys.sorted().compactMap { name in
                guard let feature = byName[name] else { return nil }
                let image = feature.imageConstraint
                return Feature(name: name, type: FeatureType(feature.type),
                               width: image.map { $0.pixelsWide }, height: image.map { $0.pixelsHigh })
            }
        }
        self.init(inputs: features(description.inputDescriptionsByName),
                  outputs: features(description.outputDescriptionsByName),
                  predictedFeatureName: description.predictedFeatureName,
                  predictedProbabilitiesName: description.predictedProbabilitiesName,
                  classLabels: description.classLabels?.compactMap { $0 as? String },
                  metadata: description.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String] ?? [:])
    }
}

extension ModelDescription.FeatureType {
    init(_ type: MLFeatureType) {
        switch type {
        case .int64: self = .int64
        case .double: self = .double
        case .string: self = .string
        case .image: self = .image
        case .multiArray: self = .multiArray
        case .dictionary: self = .dictionary
        case .sequence: self = .sequence
        case .invalid: self = .invalid
        // .state (iOS 18 SDKs) and any later kind: none is an image classifier's. `default`,
        // not `@unknown default`, which would warn about .state with newer SDKs.
        default: self = .invalid
        }
    }
}

extension CropAndScale {
    /// Vision's option of the same name.
    var visionOption: VNImageCropAndScaleOption {
        switch self {
        case .scaleFill: return .scaleFill
        case .centerCrop: return .centerCrop
        }
    }
}
