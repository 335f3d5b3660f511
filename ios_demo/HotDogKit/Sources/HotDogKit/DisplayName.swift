/// What the app shows for a label: the folder names the toolkit uses as labels, made
/// readable. Underscores become spaces, the first letter is capitalised, and an
/// exclamation mark is added: "hot_dog" -> "Hot dog!", "not_hot_dog" -> "Not hot dog!".
public enum DisplayName {
    public static func of(_ label: String) -> String {
        let text = plain(label)
        if text == "?" {
            return text
        }
        return text.hasSuffix("!") ? text : text + "!"
    }

    /// The same without the exclamation mark, for lists: "ice_cream" -> "Ice cream".
    public static func plain(_ label: String) -> String {
        let words = label.split(whereSeparator: { $0 == "_" || $0.isWhitespace })
        if words.isEmpty {
            return "?"
        }
        let text = words.joined(separator: " ")
        return text.prefix(1).uppercased() + text.dropFirst()
    }
}
