// swift-tools-version:5.9
// Zhangban's Swift package: the uniffi-generated Swift (ios/Sources/Zhangban)
// over the Rust library in ZhangbanFFI.xcframework (built by
// ios/build-xcframework.sh on a Mac with Xcode; see ios/README.md).
import PackageDescription

let package = Package(
    name: "Zhangban",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Zhangban", targets: ["Zhangban"]),
        // The Secure Enclave HolderKeystore and the Keychain DataKeyStore.
        .library(name: "ZhangbanKeystore", targets: ["ZhangbanKeystore"]),
    ],
    targets: [
        // The static library and the C module ZhangbanFFIFFI (header + modulemap).
        .binaryTarget(name: "ZhangbanFFIBinary", path: "ZhangbanFFI.xcframework"),
        // The generated Swift bindings (committed; checked by ios/check-swift.sh).
        .target(
            name: "Zhangban",
            dependencies: ["ZhangbanFFIBinary"],
            path: "Sources/Zhangban"
        ),
        // Hand-written: CryptoKit SecureEnclave.P256 behind HolderKeystore,
        // the Keychain (this device only) behind DataKeyStore.
        .target(
            name: "ZhangbanKeystore",
            dependencies: ["Zhangban"],
            path: "Sources/ZhangbanKeystore"
        ),
    ]
)
