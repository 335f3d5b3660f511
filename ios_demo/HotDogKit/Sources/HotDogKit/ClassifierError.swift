import Foundation

/// What went wrong while loading the model or classifying a photo, said so that the user
/// knows what to do.
public enum ClassifierError: Error, Equatable, LocalizedError {
    /// The app bundle has no compiled model.
    case modelMissing
    /// Core ML could not load it; the detail is Core ML's message.
    case modelUnusable(String)
    /// It is not the classifier `mlkit export --coreml` writes; the detail says how.
    case unexpectedModel(String)
    case unreadablePhoto
    case predictionFailed(String)

    /// The file the project expects, `HotDogClassifier.mlmodel`.
    public static let modelFile = "\(ModelContract.modelName).mlmodel"

    public var errorDescription: String? {
        let file = Self.modelFile
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
