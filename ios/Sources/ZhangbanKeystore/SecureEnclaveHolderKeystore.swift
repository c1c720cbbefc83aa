// The holder keystore on iOS: P-256 keys in the Secure Enclave (CryptoKit
// `SecureEnclave.P256`), implementing the uniffi foreign trait
// `HolderKeystore` of the generated bindings. The private key never leaves
// the enclave; what persists is its opaque `dataRepresentation` (a handle
// only this device's enclave can use) in the Keychain, per alias.
//
// Written to compile with Xcode 15+ (iOS 15+); there is no Swift toolchain
// on the machine this repository is tested on, so it is not compiled there.

import CryptoKit
import Foundation
import LocalAuthentication
import Security
import Zhangban

public final class SecureEnclaveHolderKeystore: HolderKeystore {
    private let service: String
    private let requireUserPresence: Bool

    /// `requireUserPresence`: every signature needs Face ID / Touch ID or the passcode.
    public init(service: String = "cn.zhangban.holder-keys", requireUserPresence: Bool = false) {
        self.service = service
        self.requireUserPresence = requireUserPresence
    }

    public func createKey(alias: String) async throws -> String {
        if let existing = try load(alias) {
            return Self.publicJwk(existing.publicKey)
        }
        guard SecureEnclave.isAvailable else {
            throw KeystoreError.Failure(reason: "no Secure Enclave on this device")
        }
        var flags: SecAccessControlCreateFlags = [.privateKeyUsage]
        if requireUserPresence { flags.insert(.userPresence) }
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, &error)
        else {
            throw KeystoreError.Failure(reason: "access control: \(String(describing: error))")
        }
        do {
            let key = try SecureEnclave.P256.Signing.PrivateKey(accessControl: access)
            try store(alias, key.dataRepresentation)
            return Self.publicJwk(key.publicKey)
        } catch let e as KeystoreError {
            throw e
        } catch {
            throw KeystoreError.Failure(reason: "secure enclave: \(error.localizedDescription)")
        }
    }

    public func sign(alias: String, message: Data) async throws -> Data {
        guard let key = try load(alias) else { throw KeystoreError.KeyUnavailable }
        do {
            // CryptoKit hashes with SHA-256 (ES256); `rawRepresentation` is r‖s,
            // 64 bytes, exactly the JWS form (no DER to convert).
            let signature = try key.signature(for: message)
            return signature.rawRepresentation
        } catch let e as LAError where e.code == .userCancel || e.code == .authenticationFailed {
            throw KeystoreError.NotAuthorised
        } catch {
            throw KeystoreError.Failure(reason: "secure enclave: \(error.localizedDescription)")
        }
    }

    public func deleteKey(alias: String) async throws {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
        ]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeystoreError.Failure(reason: "keychain delete: \(status)")
        }
    }

    // MARK: - the enclave key's handle in the Keychain

    private func store(_ alias: String, _ handle: Data) throws {
        let item: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
            kSecAttrAccessible as String: kSecAttrAccessibleWhenUnlockedThisDeviceOnly,
            kSecValueData as String: handle,
        ]
        let status = SecItemAdd(item as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw KeystoreError.Failure(reason: "keychain add: \(status)")
        }
    }

    private func load(_ alias: String) throws -> SecureEnclave.P256.Signing.PrivateKey? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
            kSecReturnData as String: true,
        ]
        var out: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &out)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let handle = out as? Data else {
            throw KeystoreError.Failure(reason: "keychain read: \(status)")
        }
        do {
            return try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: handle)
        } catch {
            // The enclave no longer knows the handle (device restored to another phone).
            throw KeystoreError.KeyUnavailable
        }
    }

    /// {"crv":"P-256","kty":"EC","x":…,"y":…} from the 64-byte x‖y.
    static func publicJwk(_ key: P256.Signing.PublicKey) -> String {
        let raw = key.rawRepresentation
        func b64url(_ d: Data) -> String {
            d.base64EncodedString()
                .replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let x = b64url(raw.prefix(32))
        let y = b64url(raw.suffix(32))
        return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(x)\",\"y\":\"\(y)\"}"
    }
}
