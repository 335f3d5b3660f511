import HotDogKit
import PhotosUI
import SwiftUI
import UIKit

/// The screen's state. Photos are classified by `PhotoClassifier` off the main thread;
/// this object, and so every change the UI sees, stays on the main actor.
@MainActor
final class ClassifierViewModel: ObservableObject {
    enum Status {
        case loadingModel
        case ready
        case classifying
        case done(Verdict)
        case failed(String)
    }

    @Published private(set) var photo: UIImage?
    @Published private(set) var status: Status = .loadingModel
    /// What the model's metadata says, once it is loaded.
    @Published private(set) var modelInfo: ModelInfo?

    private let classifier: PhotoClassifier
    private var work: Task<Void, Never>?

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
        start {
            guard let data = try await item.loadTransferable(type: Data.self), let image = UIImage(data: data) else {
                throw ClassifierError.unreadablePhoto
            }
            return image
        }
    }

    /// A photo from the camera.
    func classify(_ image: UIImage) {
        start { image }
    }

    /// Runs one photo through the model; a newer photo cancels the one before.
    private func start(_ getPhoto: @escaping () async throws -> UIImage) {
        work?.cancel()
        status = .classifying
        work = Task {
            do {
                let image = try await getPhoto()
                try Task.checkCancellation()
                photo = image
                let verdict = try await classifier.classify(image)
                try Task.checkCancellation()
                status = .done(verdict)
            } catch is CancellationError {
                // A newer photo took over; its task reports.
            } catch {
                if !Task.isCancelled {
                    status = .failed(error.localizedDescription)
                }
            }
        }
    }
}
