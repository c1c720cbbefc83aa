// The data key store on iOS: the library's 32-byte data key (which seals
// the resident's personal data in the store) kept as a Keychain item with
// `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: encrypted by the
// Keychain's hardware-protected class key, readable after the first unlock
// since boot (so background sync can open the store), never in an iCloud
// or iTunes backup and never migrated to another device. Implements the
// uniffi foreign trait `DataKeyStore` of the generated bindings (ADR 0141).
//
// Written to compile with Xcode 15+ (iOS 15+); there is no Swift toolchain
// on the machine this repository is tested on, so it is not compiled there.

import Foundation
import Security
import Zhangban

public final class KeychainDataKeyStore: DataKeyStore {
    private let service: String
    private let account: String

    public init(service: String = "cn.zhangban.data-key", account: String = "personal-data") {
        self.service = service
        self.account = account
    }

    private var query: [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
    }

    public func loadKey() async throws -> Data? {
        var q = query
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var out: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &out)
        switch status {
        case errSecSuccess:
            guard let data = out as? Data else {
                throw DataKeyStoreError.Failure(reason: "keychain item is not data")
            }
            return data
        case errSecItemNotFound:
            return nil
        case errSecInteractionNotAllowed:
            // Before the first unlock since boot: try again later.
            throw DataKeyStoreError.NotAuthorised
        default:
            throw DataKeyStoreError.Failure(reason: "keychain read: \(status)")
        }
    }

    public func storeKey(key: Data) async throws {
        let deleted = SecItemDelete(query as CFDictionary)
        guard deleted == errSecSuccess || deleted == errSecItemNotFound else {
            throw DataKeyStoreError.Failure(reason: "keychain delete: \(deleted)")
        }
        var item = query
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        item[kSecAttrSynchronizable as String] = false
        item[kSecValueData as String] = key
        let status = SecItemAdd(item as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw DataKeyStoreError.Failure(reason: "keychain write: \(status)")
        }
    }
}
