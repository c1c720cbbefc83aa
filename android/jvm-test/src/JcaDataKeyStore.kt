// The data key store of the host-JVM test, over JCA: the library's data key
// is wrapped with AES-256-GCM under a wrapping key that stays in this JVM's
// memory (standing in for an Android Keystore key that never leaves secure
// hardware); only the wrapped form (12-byte IV ‖ ciphertext ‖ tag) is
// written, to a file. The same contract as AndroidDataKeyStore.kt.

import cn.zhangban.ffi.DataKeyStore
import cn.zhangban.ffi.DataKeyStoreException
import java.io.File
import java.security.SecureRandom
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

class JcaDataKeyStore(private val dir: File) : DataKeyStore {
    private val wrappingKey: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    val wrappedFile = File(dir, "data-key.wrapped")
    val loads = AtomicInteger(0)

    override suspend fun loadKey(): ByteArray? {
        loads.incrementAndGet()
        if (!wrappedFile.exists()) return null
        val blob = wrappedFile.readBytes()
        if (blob.size < 12 + 16) throw DataKeyStoreException.Failure("wrapped key file too short")
        return try {
            Cipher.getInstance("AES/GCM/NoPadding").run {
                init(Cipher.DECRYPT_MODE, wrappingKey, GCMParameterSpec(128, blob, 0, 12))
                doFinal(blob, 12, blob.size - 12)
            }
        } catch (e: javax.crypto.AEADBadTagException) {
            throw DataKeyStoreException.Unavailable() // another wrapping key: as if it were wiped
        }
    }

    override suspend fun storeKey(key: ByteArray) {
        dir.mkdirs()
        val iv = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val sealed = Cipher.getInstance("AES/GCM/NoPadding").run {
            init(Cipher.ENCRYPT_MODE, wrappingKey, GCMParameterSpec(128, iv))
            doFinal(key)
        }
        key.fill(0)
        val fresh = File(dir, "data-key.wrapped.new")
        fresh.writeBytes(iv + sealed)
        if (!fresh.renameTo(wrappedFile)) throw DataKeyStoreException.Failure("cannot replace the wrapped key")
    }
}

/** A key store that always gives `key` (null: none) and keeps nothing. */
class FixedDataKeyStore(private val key: ByteArray?) : DataKeyStore {
    override suspend fun loadKey(): ByteArray? = key?.copyOf()
    override suspend fun storeKey(key: ByteArray) = throw DataKeyStoreException.Failure("read-only test key store")
}
