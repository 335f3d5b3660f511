import XCTest
@testable import HotDogKit

final class DisplayNameTests: XCTestCase {
    func testTheToolkitsLabels() {
        XCTAssertEqual(DisplayName.of("hot_dog"), "Hot dog!")
        XCTAssertEqual(DisplayName.of("not_hot_dog"), "Not hot dog!")
    }

    func testAnyLabel() {
        XCTAssertEqual(DisplayName.of("pizza"), "Pizza!")
        XCTAssertEqual(DisplayName.of("not_pizza"), "Not pizza!")
        XCTAssertEqual(DisplayName.of("ice_cream_cone"), "Ice cream cone!")
        XCTAssertEqual(DisplayName.of("éclair"), "Éclair!")
    }

    func testOnlyTheFirstLetterChanges() {
        XCTAssertEqual(DisplayName.of("not_NYC_pizza"), "Not NYC pizza!")
        XCTAssertEqual(DisplayName.of("Hot dog"), "Hot dog!")
    }

    func testPlainNamesForLists() {
        XCTAssertEqual(DisplayName.plain("ice_cream_cone"), "Ice cream cone")
        XCTAssertEqual(DisplayName.plain("hamburger"), "Hamburger")
        XCTAssertEqual(DisplayName.plain("__"), "?")
    }

    func testStrayUnderscoresAndSpaces() {
        XCTAssertEqual(DisplayName.of("_hot__dog_"), "Hot dog!")
        XCTAssertEqual(DisplayName.of("  hot dog "), "Hot dog!")
        XCTAssertEqual(DisplayName.of("wow!"), "Wow!")
        XCTAssertEqual(DisplayName.of(""), "?")
        XCTAssertEqual(DisplayName.of("__"), "?")
    }
}
