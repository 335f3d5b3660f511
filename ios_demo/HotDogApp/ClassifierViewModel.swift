import HotDogKit
import PhotosUI
import SwiftUI
import UIKit

/// The screen's state, on the main actor: every change the UI sees happens there.
///
/// Photos are classified by the `PhotoClassifier` actor. Only Sendable values cross to it
/// and back: a `Photo` (a CGImage and its orientation, made here from the UIImage) goes in,
/// a `Prediction` or `ModelInfo` comes out. The UIImage itself stays on the main actor,
/// where SwiftUI shows it.
@MainActor
final class ClassifierViewModel: ObservableObject {
    enum Status {
        case loadingModel
        case ready
        case classifying
        case done(Prediction)
        case failed(String)
    }

    @Published private(set) var photo: UIImage?
    @Published private(set) var status: Status = .loadingModel
    /// What the model's metadata says, once it is loaded.
    @Published private(set) var modelInfo: ModelInfo?

    private let classifier: PhotoClassifier
    private var work: Task<Void, Never>?
    /// Counts photos, so that a result that arrives after a newer photo is dropped.
    private var generation = 0

    init(classifier: PhotoClassifier = .shared) {
        self.classifier = classifier
    }

    func loadModel() async {
        do {
            modelInfo = try await classifier.prepare()
            if case .loadingModel = status {
                status = .ready
            }
        } catch {
            status = .failed(error.localizedDescription)
        }
    }

    /// A photo from the library (PhotosPicker).
    func classify(_ item: PhotosPickerItem) {
        let current = begin()
        // The completion-handler form: it is called with Sendable values (Data), and the
        // item is not sent anywhere, whether or not this SDK marks PhotosPickerItem Sendable.
        // @Sendable: PhotosUI calls it on a queue of its own; it only hops to the main actor.
        _ = item.loadTransferable(type: Data.self) { @Sendable result in
            Task { @MainActor in
                self.received(result, for: current)
            }
        }
    }

    /// A photo from the camera.
    func classify(_ image: UIImage) {
        show(image, for: begin())
    }

    /// A new photo: the one before is cancelled and its result, if it comes, ignored.
    private func begin() -> Int {
        work?.cancel()
        work = nil
        generation += 1
        status = .classifying
        return generation
    }

    private func received(_ result: Result<Data?, any Error>, for current: Int) {
        guard current == generation else { return }
        switch result {
        case let .success(data?):
            if let image = UIImage(data: data) {
                show(image, for: current)
            } else {
                status = .failed(ClassifierError.unreadablePhoto.localizedDescription)
            }
        case .success(nil), .failure:
            status = .failed(ClassifierError.unreadablePhoto.localizedDescription)
        }
    }

    /// Shows the photo, then runs it through the model on the classifier's actor.
    private func show(_ image: UIImage, for current: Int) {
        photo = image
        guard let input = Photo(image) else {
            status = .failed(ClassifierError.unreadablePhoto.localizedDescription)
            return
        }
        let classifier = self.classifier
        // The task inherits the main actor; `await classifier.classify(input)` sends only
        // `input` (Sendable) to the actor and gets a Prediction (Sendable) back.
        work = Task {
            let outcome: Result<Prediction, any Error>
            do {
                outcome = .success(try await classifier.classify(input))
            } catch {
                outcome = .failure(error)
            }
            guard !Task.isCancelled, current == generation else { return }  // a newer photo took over
            switch outcome {
            case let .success(prediction):
                status = .done(prediction)
            case let .failure(error):
                status = .failed(error.localizedDescription)
            }
        }
    }
}
