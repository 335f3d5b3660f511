import SwiftUI

@main
struct HotDogApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
