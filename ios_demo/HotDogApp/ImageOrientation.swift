import ImageIO
import UIKit

extension CGImagePropertyOrientation {
    /// The EXIF orientation of a photo that UIKit shows with `orientation`.
    ///
    /// A `UIImage` keeps the camera's pixels as they were shot and says how to turn them
    /// (`imageOrientation`); its `cgImage` is the unturned pixels. Vision must be told the
    /// same turn, or it classifies a photo lying on its side.
    init(_ orientation: UIImage.Orientation) {
        switch orientation {
        case .up: self = .up
        case .upMirrored: self = .upMirrored
        case .down: self = .down
        case .downMirrored: self = .downMirrored
        case .left: self = .left
        case .leftMirrored: self = .leftMirrored
        case .right: self = .right
        case .rightMirrored: self = .rightMirrored
        @unknown default: self = .up
        }
    }
}
