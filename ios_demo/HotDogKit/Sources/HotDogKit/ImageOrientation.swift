/// The EXIF orientation (`CGImagePropertyOrientation`) of a photo that UIKit shows with a
/// given `UIImage.Orientation`, by raw value, so that the mapping is compiled and tested
/// without UIKit.
///
/// A `UIImage` keeps the camera's pixels as they were shot and says how to turn them
/// (`imageOrientation`); its `cgImage` is the unturned pixels. Vision must be told the
/// same turn, or it classifies a photo lying on its side. The two enums name the same
/// turns alike but number them differently:
/// - `UIImage.Orientation` (`UIImageOrientation` in UIKit's UIImage.h, an NSInteger enum):
///   up 0, down 1, left 2, right 3, upMirrored 4, downMirrored 5, leftMirrored 6,
///   rightMirrored 7 (https://developer.apple.com/documentation/uikit/uiimage/orientation;
///   the values as listed in https://learn.microsoft.com/en-us/dotnet/api/uikit.uiimageorientation).
/// - `CGImagePropertyOrientation` (ImageIO's CGImageProperties.h, a uint32_t enum, the TIFF/EXIF
///   orientation tag): up 1, upMirrored 2, down 3, downMirrored 4, leftMirrored 5, right 6,
///   rightMirrored 7, left 8 (https://developer.apple.com/documentation/imageio/cgimagepropertyorientation;
///   https://learn.microsoft.com/en-us/dotnet/api/imageio.cgimagepropertyorientation).
public enum ImageOrientation: UInt32, CaseIterable, Sendable {
    case up = 1
    case upMirrored = 2
    case down = 3
    case downMirrored = 4
    case leftMirrored = 5
    case right = 6
    case rightMirrored = 7
    case left = 8

    /// The orientation of the `UIImage.Orientation` whose raw value is `rawValue`; nil for a
    /// value UIKit does not define (the app then treats the photo as upright).
    public init?(uiImageOrientation rawValue: Int) {
        switch rawValue {
        case 0: self = .up
        case 1: self = .down
        case 2: self = .left
        case 3: self = .right
        case 4: self = .upMirrored
        case 5: self = .downMirrored
        case 6: self = .leftMirrored
        case 7: self = .rightMirrored
        default: return nil
        }
    }

    /// `CGImagePropertyOrientation(rawValue:)` of this value.
    public var exifValue: UInt32 { rawValue }
}
