import CoreML
import HotDogKit
import UIKit
import Vision

/// Classifies photos with the exported model, off the main thread.
///
/// There is one model instance for the app: it is loaded on first use and kept, since
/// loading reads the weights and prepares the compute units, which takes longer than a
/// prediction. All work runs on one serial queue, which also guards the cached model.
final class PhotoClassifier: @unchecked Sendable {
    static let shared = PhotoClassifier()

    /// The loaded model and what its metadata says about it.
    private struct LoadedModel {
        let vision: VNCoreMLModel
        let info: ModelInfo
    }

    private let queue = DispatchQueue(label: "HotDogApp.PhotoClassifier", qos: .userInitiated)
    private var loaded: LoadedModel?  // only touched on `queue`

    private init() {}

    /// Loads the model unless it is loaded, so that a missing or unusable model is
    /// reported when the app starts rather than at the first photo.
    func prepare() async throws -> ModelInfo {
        try await onQueue { try self.loadedModel().info }
    }

    func classify(_ image: UIImage) async throws -> Verdict {
        try await onQueue { try self.classifyNow(image) }
    }

    private func onQueue<T>(_ work: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try work() })
            }
        }
    }

    // MARK: - On `queue`

    private func classifyNow(_ image: UIImage) throws -> Verdict {
        let model = try loadedModel()
        // The pixels stay as shot; Vision turns them upright with the photo's orientation.
        let orientation = CGImagePropertyOrientation(image.imageOrientation)
        let handler: VNImageRequestHandler
        if let cgImage = image.cgImage {
            handler = VNImageRequestHandler(cgImage: cgImage, orientation: orientation, options: [:])
        } else if let ciImage = image.ciImage {
            handler = VNImageRequestHandler(ciImage: ciImage, orientation: orientation, options: [:])
        } else {
            throw ClassifierError.unreadablePhoto
        }

        let request = VNCoreMLRequest(model: model.vision)
        // Scale the photo to the model's square input the way its training images were.
        request.imageCropAndScaleOption = model.info.resizeMode.cropAndScaleOption
        do {
            try handler.perform([request])
        } catch {
            throw ClassifierError.predictionFailed(error.localizedDescription)
        }
        guard let observations = request.results as? [VNClassificationObservation], !observations.isEmpty else {
            throw ClassifierError.predictionFailed("Vision returned no classifications.")
        }
        return try Verdict(classifications: observations.map { (label: $0.identifier, confidence: $0.confidence) },
                           info: model.info)
    }

    private func loadedModel() throws -> LoadedModel {
        if let loaded {
            return loaded
        }
        let coreMLModel = try Self.loadCoreMLModel()
        let info = try Self.checkContract(of: coreMLModel)
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

    /// Checks that the model is the classifier `mlkit export --coreml` writes, and reads
    /// the labels, threshold and resize mode from its metadata.
    private static func checkContract(of model: MLModel) throws -> ModelInfo {
        let description = model.modelDescription
        guard description.inputDescriptionsByName[ModelContract.inputName]?.type == .image else {
            throw ClassifierError.unexpectedModel("it has no image input named \"\(ModelContract.inputName)\"")
        }
        guard description.predictedFeatureName == ModelContract.predictedLabelName,
              description.predictedProbabilitiesName == ModelContract.probabilitiesName else {
            throw ClassifierError.unexpectedModel("it is not a classifier with the outputs "
                + "\"\(ModelContract.predictedLabelName)\" and \"\(ModelContract.probabilitiesName)\"")
        }
        let metadata = description.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String] ?? [:]
        let info = try ModelInfo(metadata: metadata)
        if let classLabels = description.classLabels as? [String], Set(classLabels) != Set(info.labels) {
            throw ClassifierError.unexpectedModel("its classes \(classLabels) are not the labels "
                + "\(info.labels) its metadata lists")
        }
        return info
    }
}

extension ResizeMode {
    /// Vision's name for the same resize.
    var cropAndScaleOption: VNImageCropAndScaleOption {
        switch self {
        case .squash: return .scaleFill
        case .centerCrop: return .centerCrop
        }
    }
}

/// What went wrong, said so that the user knows what to do.
enum ClassifierError: LocalizedError {
    case modelMissing
    case modelUnusable(String)
    case unexpectedModel(String)
    case unreadablePhoto
    case predictionFailed(String)

    var errorDescription: String? {
        let file = "\(ModelContract.modelName).mlmodel"
        switch self {
        case .modelMissing:
            return "The model is missing: the app was built without \(file). Export it with "
                + "`mlkit export MODEL_DIR --coreml --output ios_demo/HotDogApp/\(file)`, "
                + "then build and run again (see ios_demo/README.md)."
        case let .modelUnusable(detail):
            return "Core ML could not load \(file) (\(detail)). Export it again with `mlkit export --coreml`."
        case let .unexpectedModel(detail):
            return "\(file) is not a model exported by `mlkit export --coreml`: \(detail). Export it again."
        case .unreadablePhoto:
            return "This photo could not be read. Try another one."
        case let .predictionFailed(detail):
            return "The photo could not be classified: \(detail)"
        }
    }
}
