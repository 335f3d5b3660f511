import Foundation

/// One label and its probability, as Vision reports a classification
/// (`VNClassificationObservation.identifier` and `.confidence`).
public struct Classification: Equatable, Sendable {
    public let label: String
    public let confidence: Float

    public init(_ label: String, _ confidence: Float) {
        self.label = label
        self.confidence = confidence
    }
}

/// What the app says about a photo: the toolkit's decision rule (`toolkit.predict.decide`)
/// applied to the model's probabilities, for any number of classes.
///
/// Two labels: the positive label wins when its probability is at least the threshold;
/// otherwise the other label does (with a threshold of 0.5, the more probable label).
/// More labels: the most probable label (the first of equals); the threshold is the
/// two-class rule and does not apply.
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
        if classifications.count > 2 {
            // max(by:) keeps the first of equals, as the toolkit's argmax does given labels in output order.
            let best = classifications.max(by: { $0.confidence < $1.confidence }) ?? positive
            self.init(label: best.label, confidence: best.confidence, isPositive: best.label == positiveLabel,
                      positiveLabel: positiveLabel, positiveConfidence: positive.confidence, threshold: threshold)
            return
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
        // In the model's output order, so that ties go to the first label as in the toolkit.
        let ordered = info.labels.compactMap { label in classifications.first(where: { $0.label == label }) }
        try self.init(classifications: ordered, positiveLabel: info.positiveLabel, threshold: info.threshold)
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

/// Everything the app shows for one photo, for a classifier of any number of classes:
/// the toolkit's verdict, and every class ranked by probability (the top k of it).
///
/// A two-class model (hot dog / not hot dog) is shown as a verdict; a model of more
/// classes (e.g. hamburger / sandwich / pizza) as its decided label with the runners-up.
public struct Prediction: Equatable, Sendable {
    public let verdict: Verdict
    /// Every class of the model, most probable first; equal probabilities in the model's
    /// output order.
    public let ranked: [Classification]

    /// Two classes: the app shows a yes/no verdict and the threshold rule.
    public var isBinary: Bool { ranked.count == 2 }

    /// The decided label and its probability (the hot dog verdict for two classes).
    public var top: Classification { Classification(verdict.label, verdict.confidence) }

    public init(classifications: [Classification], info: ModelInfo) throws {
        let verdict = try Verdict(classifications: classifications, info: info)
        if let missing = info.labels.first(where: { label in !classifications.contains(where: { $0.label == label }) }) {
            throw VerdictError.missingLabel(missing)
        }
        let order = Dictionary(uniqueKeysWithValues: info.labels.enumerated().map { ($1, $0) })
        var seen = Set<String>()
        let unique = classifications.filter { seen.insert($0.label).inserted }
        self.verdict = verdict
        self.ranked = unique.sorted {
            $0.confidence != $1.confidence ? $0.confidence > $1.confidence : order[$0.label, default: 0] < order[$1.label, default: 0]
        }
    }

    /// The `k` most probable classes (fewer when the model has fewer), most probable first.
    public func top(_ k: Int) -> [Classification] {
        Array(ranked.prefix(max(0, k)))
    }

    /// The most probable classes other than the decided one, for the line under it
    /// ("Sandwich 20% · Pizza 5%"); none for a two-class verdict.
    public func runnersUp(_ k: Int) -> [Classification] {
        isBinary ? [] : Array(ranked.filter { $0.label != verdict.label }.prefix(max(0, k)))
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
