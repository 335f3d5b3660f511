import HotDogKit
import PhotosUI
import SwiftUI
import UIKit

@MainActor
struct ContentView: View {
    @StateObject private var model = ClassifierViewModel()
    @State private var pickedItem: PhotosPickerItem?
    @State private var showingCamera = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 20) {
                PhotoView(photo: model.photo)
                StatusView(status: model.status)
                    .frame(minHeight: 120)
                buttons
                if let info = model.modelInfo {
                    ModelInfoView(info: info)
                }
            }
            .padding()
            .navigationTitle("Hot dog?")
        }
        .task {
            await model.loadModel()
        }
        .onChange(of: pickedItem) { item in
            guard let item else { return }
            pickedItem = nil
            model.classify(item)
        }
        .fullScreenCover(isPresented: $showingCamera) {
            CameraPicker { image in
                showingCamera = false
                if let image {
                    model.classify(image)
                }
            }
            .ignoresSafeArea()
        }
    }

    private var buttons: some View {
        HStack {
            PhotosPicker(selection: $pickedItem, matching: .images) {
                Label("Choose Photo", systemImage: "photo.on.rectangle")
                    .frame(maxWidth: .infinity)
            }
            if CameraPicker.isAvailable {
                Button {
                    showingCamera = true
                } label: {
                    Label("Take Photo", systemImage: "camera")
                        .frame(maxWidth: .infinity)
                }
            }
        }
        .buttonStyle(.borderedProminent)
        .controlSize(.large)
    }
}

struct PhotoView: View {
    let photo: UIImage?

    var body: some View {
        ZStack {
            RoundedRectangle(cornerRadius: 16)
                .fill(Color(uiColor: .secondarySystemBackground))
            if let photo {
                // Image(uiImage:) shows the photo upright, as Vision is told to see it.
                Image(uiImage: photo)
                    .resizable()
                    .scaledToFit()
                    .clipShape(RoundedRectangle(cornerRadius: 16))
            } else {
                Image(systemName: "fork.knife")
                    .font(.system(size: 56))
                    .foregroundStyle(.secondary)
            }
        }
        .frame(maxWidth: .infinity, maxHeight: .infinity)
    }
}

struct StatusView: View {
    let status: ClassifierViewModel.Status

    var body: some View {
        switch status {
        case .loadingModel:
            ProgressView("Loading the model…")
        case .ready:
            Text("Choose a photo, or take one, of some food.")
                .foregroundStyle(.secondary)
        case .classifying:
            ProgressView("Looking…")
        case let .done(verdict):
            VerdictView(verdict: verdict)
        case let .failed(message):
            Label(message, systemImage: "exclamationmark.triangle.fill")
                .foregroundStyle(.red)
                .multilineTextAlignment(.leading)
        }
    }
}

struct VerdictView: View {
    let verdict: Verdict

    var body: some View {
        // How close the call was, e.g. "Hot dog! at 50% or more; this photo: 12%".
        let rule = "\(DisplayName.of(verdict.positiveLabel)) at \(percent(verdict.threshold)) or more; "
            + "this photo: \(percent(verdict.positiveConfidence))"
        VStack(spacing: 6) {
            Text(verdict.displayName)
                .font(.system(size: 44, weight: .heavy, design: .rounded))
                .foregroundStyle(verdict.isPositive ? Color.green : Color.red)
            Text("Probability \(percent(verdict.confidence))")
                .font(.title3)
            Text(rule)
                .font(.caption)
                .foregroundStyle(.secondary)
        }
        .accessibilityElement(children: .combine)
    }
}

struct ModelInfoView: View {
    let info: ModelInfo

    var body: some View {
        // e.g. "Model: Hot dog! / Not hot dog! (224 px, squash, mlkit 0.1.0)"
        let labels = info.labels.map(DisplayName.of).joined(separator: " / ")
        let size = info.imageSize.map { "\($0) px, " } ?? ""
        let version = info.toolkitVersion.map { ", mlkit \($0)" } ?? ""
        Text("Model: \(labels) (\(size)\(info.resizeMode.rawValue)\(version))")
            .font(.caption2)
            .foregroundStyle(.secondary)
    }
}

/// 0.834 -> "83%", in the user's locale.
func percent(_ probability: Float) -> String {
    Double(probability).formatted(.percent.precision(.fractionLength(0)))
}
