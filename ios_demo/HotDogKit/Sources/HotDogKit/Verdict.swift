import Foundation

/// One label and its probability, as Vision reports a classification
/// (`VNClassificationObservation.identifier` and `.confidence`).
public typealias Classification = (label: String, confidence: Float)

/// What the app says about a photo: the toolkit's decision rule (`toolkit.predict.decide`)
/// applied to the model's probabilities.
///
/// The positive label wins when its probability is at least the threshold; otherwise the
/// most probable other label does. With two labels and a threshold of 0.5 that is the
/// most probable label.
public struct Verdict: Equatable, Sendable {
    /// The decided label, e.g. "not_hot_dog".
    public let label: String
    /// The probability of `label`, 0...1.
    public let confidence: Float
    public let isPositive: Bool
    /// The label the model looks for, and its probability whatever the verdict.
    public let positiveLabel: String
    public let positiveConfidence: Float
    public let threshold: Float

    /// "Hot dog!", "Not hot dog!".
    public var displayName: String { DisplayName.of(label) }

    public init(classifications: [Classification], positiveLabel: String, threshold: Float) throws {
        if classifications.isEmpty {
            throw VerdictError.noClassifications
        }
        if !(threshold >= 0 && threshold <= 1) {
            throw VerdictError.invalidThreshold(threshold)
        }
        for item in classifications where !(item.confidence.isFinite && item.confidence >= 0) {
            throw VerdictError.invalidConfidence(label: item.label, value: item.confidence)
        }
        guard let positive = classifications.first(where: { $0.label == positiveLabel }) else {
            throw VerdictError.missingLabel(positiveLabel)
        }
        if positive.confidence >= threshold {
            self.init(label: positive.label, confidence: positive.confidence, isPositive: true,
                      positiveLabel: positiveLabel, positiveConfidence: positive.confidence, threshold: threshold)
            return
        }
        // max(by:) keeps the first of equals, as the toolkit's argmax does given labels in output order.
        guard let best = classifications.filter({ $0.label != positiveLabel })
            .max(by: { $0.confidence < $1.confidence }) else {
            throw VerdictError.onlyPositiveLabel(positiveLabel)
        }
        self.init(label: best.label, confidence: best.confidence, isPositive: false,
                  positiveLabel: positiveLabel, positiveConfidence: positive.confidence, threshold: threshold)
    }

    /// As above, with the positive label and threshold the model carries; a label the
    /// model does not list means the app is running some other model.
    public init(classifications: [Classification], info: ModelInfo) throws {
        if let stranger = classifications.first(where: { !info.labels.contains($0.label) }) {
            throw VerdictError.unknownLabel(stranger.label, known: info.labels)
        }
        try self.init(classifications: classifications, positiveLabel: info.positiveLabel,
                      threshold: info.threshold)
    }

    private init(label: String, confidence: Float, isPositive: Bool, positiveLabel: String,
                 positiveConfidence: Float, threshold: Float) {
        self.label = label
        self.confidence = confidence
        self.isPositive = isPositive
        self.positiveLabel = positiveLabel
        self.positiveConfidence = positiveConfidence
        self.threshold = threshold
    }
}

/// Why no verdict could be reached; each message says what it means for the user.
public enum VerdictError: Error, Equatable {
    case noClassifications
    case invalidThreshold(Float)
    case invalidConfidence(label: String, value: Float)
    case missingLabel(String)
    case onlyPositiveLabel(String)
    case unknownLabel(String, known: [String])
}

extension VerdictError: LocalizedError {
    public var errorDescription: String? {
        switch self {
        case .noClassifications:
            return "The model returned no classifications for this photo."
        case let .invalidThreshold(value):
            return "The threshold \(value) is not a number from 0 to 1."
        case let .invalidConfidence(label, value):
            return "The model returned the probability \(value) for \"\(label)\", which is not a probability."
        case let .missingLabel(label):
            return "The model returned no probability for \"\(label)\"; is it the model exported for this app?"
        case let .onlyPositiveLabel(label):
            return "The model returned a probability for \"\(label)\" only, so there is nothing to say otherwise."
        case let .unknownLabel(label, known):
            return "The model returned the label \"\(label)\", which its metadata does not list (\(known)); "
                + "export the model again with `mlkit export --coreml`."
        }
    }
}
