/// The names the app relies on in the model that `mlkit export --coreml` writes.
///
/// They are decided by the toolkit's exporter (`toolkit/export/coreml.py`);
/// `tests/test_ios_demo_contract.py` exports a model and checks it carries exactly
/// these names, so a rename on either side fails there and not on someone's iPhone.
public enum ModelContract {
    /// Xcode names the generated Swift class after the model file:
    /// `HotDogClassifier.mlmodel` gives `HotDogClassifier`, compiled to `HotDogClassifier.mlmodelc`.
    public static let modelName = "HotDogClassifier"
    /// The image input (RGB, square; Vision scales the photo to its size).
    public static let inputName = "image"
    /// The classifier's outputs: the most probable label, and the probability of each label.
    public static let predictedLabelName = "classLabel"
    public static let probabilitiesName = "classLabelProbs"
}
