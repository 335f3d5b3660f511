import Foundation

/// How a photo becomes the model's square input: the way the model saw its training
/// images (`resize_mode` in `model.json`, copied into the Core ML metadata).
public enum ResizeMode: String, CaseIterable, Sendable {
    /// The whole photo scaled to a square, its aspect ratio ignored (Vision's `.scaleFill`).
    case squash = "squash"
    /// The largest centred square, then scaled (Vision's `.centerCrop`).
    case centerCrop = "center_crop"

    /// How Vision must crop and scale a photo to the model's input to match training.
    public var cropAndScale: CropAndScale {
        switch self {
        case .squash: return .scaleFill
        case .centerCrop: return .centerCrop
        }
    }
}

/// Vision's `VNImageCropAndScaleOption`, named here so that the choice is made (and
/// tested) without Vision; the app maps each case to the option of the same name.
/// Vision's own default is `.centerCrop`, which would cut the sides off every photo of a
/// squash-trained model.
public enum CropAndScale: String, CaseIterable, Sendable {
    case scaleFill
    case centerCrop
}

/// What the toolkit writes into the model's creator-defined metadata
/// (`MLModelMetadataKey.creatorDefinedKey`, a `[String: String]`), read back here
/// instead of being repeated as literals in the app.
public struct ModelInfo: Equatable, Sendable {
    /// The metadata keys, as the exporter spells them.
    public enum Key: String, CaseIterable, Sendable {
        case labels = "labels"
        case positiveLabel = "positive_label"
        case threshold = "threshold"
        case resizeMode = "resize_mode"
        case imageSize = "image_size"
        case toolkitVersion = "toolkit_version"
        case datasetHash = "dataset_hash"
    }

    /// The class labels in output order, e.g. `["hot_dog", "not_hot_dog"]`.
    public let labels: [String]
    /// The label the app looks for ("hot_dog").
    public let positiveLabel: String
    /// The positive verdict needs P(positive) >= threshold; 0...1.
    public let threshold: Float
    public let resizeMode: ResizeMode
    /// Side of the square input in pixels, when the metadata says.
    public let imageSize: Int?
    /// Where the model came from, when the metadata says (shown, never relied on).
    public let toolkitVersion: String?
    public let datasetHash: String?

    public init(labels: [String], positiveLabel: String, threshold: Float, resizeMode: ResizeMode = .squash,
                imageSize: Int? = nil, toolkitVersion: String? = nil, datasetHash: String? = nil) throws {
        if labels.count < 2 {
            throw ModelInfoError.invalidValue(key: Key.labels.rawValue, value: "\(labels)",
                                              expected: "at least two labels")
        }
        if Set(labels).count != labels.count {
            throw ModelInfoError.invalidValue(key: Key.labels.rawValue, value: "\(labels)",
                                              expected: "distinct labels")
        }
        if !labels.contains(positiveLabel) {
            throw ModelInfoError.invalidValue(key: Key.positiveLabel.rawValue, value: positiveLabel,
                                              expected: "one of the labels \(labels)")
        }
        // The negated form also rejects NaN.
        if !(threshold >= 0 && threshold <= 1) {
            throw ModelInfoError.invalidValue(key: Key.threshold.rawValue, value: "\(threshold)",
                                              expected: "a number from 0 to 1")
        }
        if let imageSize, imageSize <= 0 {
            throw ModelInfoError.invalidValue(key: Key.imageSize.rawValue, value: "\(imageSize)",
                                              expected: "a positive number of pixels")
        }
        self.labels = labels
        self.positiveLabel = positiveLabel
        self.threshold = threshold
        self.resizeMode = resizeMode
        self.imageSize = imageSize
        self.toolkitVersion = toolkitVersion
        self.datasetHash = datasetHash
    }

    /// Reads the creator-defined metadata of a model exported by `mlkit export --coreml`.
    ///
    /// `labels`, `positive_label`, `threshold` and `resize_mode` are required: without them
    /// the app would have to guess how to prepare a photo or how to decide.
    public init(metadata: [String: String]) throws {
        let labelsText = try ModelInfo.required(.labels, in: metadata)
        let labels: [String]
        do {
            labels = try JSONDecoder().decode([String].self, from: Data(labelsText.utf8))
        } catch {
            throw ModelInfoError.invalidValue(key: Key.labels.rawValue, value: labelsText,
                                              expected: "a JSON array of strings, e.g. [\"hot_dog\",\"not_hot_dog\"]")
        }

        let thresholdText = try ModelInfo.required(.threshold, in: metadata)
        guard let threshold = Float(thresholdText.trimmingCharacters(in: .whitespaces)) else {
            throw ModelInfoError.invalidValue(key: Key.threshold.rawValue, value: thresholdText,
                                              expected: "a decimal number from 0 to 1, e.g. 0.5")
        }

        let resizeText = try ModelInfo.required(.resizeMode, in: metadata)
        guard let resizeMode = ResizeMode(rawValue: resizeText) else {
            let known = ResizeMode.allCases.map(\.rawValue).joined(separator: " or ")
            throw ModelInfoError.invalidValue(key: Key.resizeMode.rawValue, value: resizeText, expected: known)
        }

        var imageSize: Int?
        if let sizeText = metadata[Key.imageSize.rawValue] {
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces)) else {
                throw ModelInfoError.invalidValue(key: Key.imageSize.rawValue, value: sizeText,
                                                  expected: "a whole number of pixels")
            }
            imageSize = size
        }

        let positiveLabel = try ModelInfo.required(.positiveLabel, in: metadata)
        try self.init(labels: labels, positiveLabel: positiveLabel, threshold: threshold,
                      resizeMode: resizeMode, imageSize: imageSize,
                      toolkitVersion: ModelInfo.informative(.toolkitVersion, in: metadata),
                      datasetHash: ModelInfo.informative(.datasetHash, in: metadata))
    }

    private static func required(_ key: Key, in metadata: [String: String]) throws -> String {
        guard let value = metadata[key.rawValue] else {
            throw ModelInfoError.missingKey(key.rawValue)
        }
        return value
    }

    /// An informative value; empty (e.g. no dataset hash for a model trained without one) is absent.
    private static func informative(_ key: Key, in metadata: [String: String]) -> String? {
        guard let value = metadata[key.rawValue], !value.isEmpty else {
            return nil
        }
        return value
    }
}

/// Why a model's metadata cannot be used; each message says what to do.
public enum ModelInfoError: Error, Equatable, LocalizedError {
    case missingKey(String)
    case invalidValue(key: String, value: String, expected: String)

    public var errorDescription: String? {
        switch self {
        case let .missingKey(key):
            return "The model's metadata has no \"\(key)\". Export the model with `mlkit export --coreml` "
                + "(it writes the labels, threshold and resize mode into the model) and build the app again."
        case let .invalidValue(key, value, expected):
            return "The model's metadata \"\(key)\" is \(value), expected \(expected). "
                + "Export the model again with `mlkit export --coreml`."
        }
    }
}
