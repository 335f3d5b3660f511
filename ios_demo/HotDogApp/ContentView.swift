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
            // "Hot dog?", or "Hamburger, sandwich or pizza?" for a model of more classes.
            .navigationTitle(model.modelInfo?.question ?? "Hot dog?")
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
        case let .done(prediction):
            VerdictView(prediction: prediction)
        case let .failed(message):
            Label(message, systemImage: "exclamationmark.triangle.fill")
                .foregroundStyle(.red)
                .multilineTextAlignment(.leading)
        }
    }
}

struct VerdictView: View {
    let prediction: Prediction

    var body: some View {
        // HotDogKit decides every word; this view only lays them out.
        let text = ResultText(prediction)
        VStack(spacing: 6) {
            Text(text.title)
                .font(.system(size: 44, weight: .heavy, design: .rounded))
                .foregroundStyle(color(text.tone))
            Text(text.probability)
                .font(.title3)
            if !text.detail.isEmpty {
                Text(text.detail)
                    .font(.caption)
                    .foregroundStyle(.secondary)
            }
        }
        .accessibilityElement(children: .combine)
    }

    private func color(_ tone: ResultText.Tone) -> Color {
        switch tone {
        case .positive: return .green
        case .negative: return .red
        case .neutral: return .primary
        }
    }
}

struct ModelInfoView: View {
    let info: ModelInfo

    var body: some View {
        // e.g. "Model: Hot dog! / Not hot dog! (224 px, squash, mlkit 0.1.0)"
        Text(info.summary)
            .font(.caption2)
            .foregroundStyle(.secondary)
    }
}
