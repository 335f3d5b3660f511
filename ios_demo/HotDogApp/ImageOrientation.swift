import HotDogKit
import ImageIO
import UIKit

extension CGImagePropertyOrientation {
    /// The EXIF orientation of a photo that UIKit shows with `orientation`: the mapping of
    /// raw values is HotDogKit's `ImageOrientation` (tested there); a value UIKit adds
    /// later is treated as upright.
    init(_ orientation: UIImage.Orientation) {
        self = ImageOrientation(uiImageOrientation: orientation.rawValue)
            .flatMap { CGImagePropertyOrientation(rawValue: $0.exifValue) } ?? .up
    }
}
