import Foundation

/// 0.834 -> "83%", in the given locale (the user's by default).
public func percent(_ probability: Float, locale: Locale = .current) -> String {
    Double(probability).formatted(.percent.precision(.fractionLength(0)).locale(locale))
}

/// The text the app shows for a prediction; the SwiftUI view only lays it out.
public struct ResultText: Equatable, Sendable {
    /// How the headline is coloured: a two-class verdict is a yes or a no; the label of a
    /// model of more classes is neither.
    public enum Tone: Equatable, Sendable {
        case positive
        case negative
        case neutral
    }

    /// "Hot dog!", "Sandwich!".
    public let title: String
    public let tone: Tone
    /// "Probability 83%".
    public let probability: String
    /// Two classes: how close the call was, "Hot dog! at 50% or more; this photo: 12%".
    /// More classes: the runners-up, "Hamburger 20% · Pizza 5%".
    public let detail: String

    /// How many runners-up a model of more than two classes shows.
    public static let runnersUp = 2

    public init(_ prediction: Prediction, locale: Locale = .current) {
        let verdict = prediction.verdict
        title = verdict.displayName
        probability = "Probability \(percent(verdict.confidence, locale: locale))"
        if prediction.isBinary {
            tone = verdict.isPositive ? .positive : .negative
            detail = "\(DisplayName.of(verdict.positiveLabel)) at \(percent(verdict.threshold, locale: locale)) "
                + "or more; this photo: \(percent(verdict.positiveConfidence, locale: locale))"
        } else {
            tone = .neutral
            detail = prediction.runnersUp(Self.runnersUp)
                .map { "\(DisplayName.plain($0.label)) \(percent($0.confidence, locale: locale))" }
                .joined(separator: " · ")
        }
    }
}

extension ModelInfo {
    /// The screen's title: "Hot dog?" for two classes, "Hamburger, sandwich or pizza?" for more.
    public var question: String {
        if labels.count == 2 {
            return "\(DisplayName.plain(positiveLabel))?"
        }
        let names = labels.map { $0.replacingOccurrences(of: "_", with: " ") }
        return DisplayName.plain(names.dropLast().joined(separator: ", ") + " or " + names[names.count - 1]) + "?"
    }

    /// The line under the result, e.g. "Model: Hot dog! / Not hot dog! (224 px, squash, mlkit 0.1.0)".
    public var summary: String {
        let names = labels.map(DisplayName.of).joined(separator: " / ")
        let size = imageSize.map { "\($0) px, " } ?? ""
        let version = toolkitVersion.map { ", mlkit \($0)" } ?? ""
        return "Model: \(names) (\(size)\(resizeMode.rawValue)\(version))"
    }
}
