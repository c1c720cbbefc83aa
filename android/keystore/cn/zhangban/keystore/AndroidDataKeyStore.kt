// The data key store on Android: the library's 32-byte data key (which
// seals the resident's personal data in the store) is wrapped with an
// AES-256-GCM key in the Android Keystore — StrongBox when the device has
// one, else the TEE — and only the wrapped form (12-byte IV ‖ ciphertext ‖
// tag) is written, to a 0600 file in the app's no-backup directory. The
// wrapping key never leaves secure hardware. Implements the uniffi foreign
// trait `DataKeyStore` (ADR 0141).
//
// Written to compile in this Gradle module on a developer's machine with
// the Android SDK (API 28+ for StrongBox); this repository's test machine
// has no Android SDK, so it is not compiled there. The host-JVM test runs
// the same contract over JCA (android/jvm-test/src/JcaDataKeyStore.kt).

package cn.zhangban.keystore

import android.content.Context
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import cn.zhangban.ffi.DataKeyStore
import cn.zhangban.ffi.DataKeyStoreException
import java.io.File
import java.security.KeyStore
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * @param alias the Android Keystore alias of the wrapping key.
 * @param requireUserAuthentication unwrapping needs the user's biometric or
 *   device credential within `authValiditySeconds` (the library then opens
 *   locked until `Client.unlock()` after the user authenticated).
 */
class AndroidDataKeyStore(
    context: Context,
    private val alias: String = "zhangban-data-key-wrap",
    private val requireUserAuthentication: Boolean = false,
    private val authValiditySeconds: Int = 300,
) : DataKeyStore {
    private val keyStore: KeyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
    // noBackupFilesDir: never in a cloud or adb backup (the wrapping key
    // could not follow it to another device anyway).
    private val wrapped = File(context.noBackupFilesDir, "zhangban-data-key.wrapped")

    override suspend fun loadKey(): ByteArray? = withContext(Dispatchers.IO) {
        if (!wrapped.exists()) return@withContext null
        val blob = wrapped.readBytes()
        if (blob.size < 12 + 16) throw DataKeyStoreException.Failure("wrapped key file too short")
        val key = keyStore.getKey(alias, null) as? SecretKey
            ?: throw DataKeyStoreException.Unavailable() // the wrapping key was wiped
        try {
            Cipher.getInstance("AES/GCM/NoPadding").run {
                init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, blob, 0, 12))
                doFinal(blob, 12, blob.size - 12)
            }
        } catch (e: UserNotAuthenticatedException) {
            throw DataKeyStoreException.NotAuthorised()
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw DataKeyStoreException.Unavailable()
        } catch (e: AEADBadTagException) {
            throw DataKeyStoreException.Unavailable()
        } catch (e: Exception) {
            throw DataKeyStoreException.Failure("keystore: ${e.javaClass.simpleName}")
        }
    }

    override suspend fun storeKey(key: ByteArray) = withContext(Dispatchers.IO) {
        try {
            val wrapping = (keyStore.getKey(alias, null) as? SecretKey) ?: generate()
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.ENCRYPT_MODE, wrapping) // the Keystore picks the IV
            val sealed = cipher.doFinal(key)
            val fresh = File(wrapped.parentFile, wrapped.name + ".new")
            fresh.delete()
            fresh.createNewFile()
            fresh.setReadable(false, false); fresh.setReadable(true, true)
            fresh.setWritable(false, false); fresh.setWritable(true, true)
            fresh.outputStream().use { out ->
                out.write(cipher.iv)
                out.write(sealed)
                out.fd.sync()
            }
            if (!fresh.renameTo(wrapped)) throw DataKeyStoreException.Failure("cannot replace the wrapped key")
        } catch (e: DataKeyStoreException) {
            throw e
        } catch (e: UserNotAuthenticatedException) {
            throw DataKeyStoreException.NotAuthorised()
        } catch (e: Exception) {
            throw DataKeyStoreException.Failure("keystore: ${e.javaClass.simpleName}")
        } finally {
            key.fill(0)
        }
    }

    private fun generate(): SecretKey = try {
        generate(strongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P)
    } catch (e: StrongBoxUnavailableException) {
        generate(strongBox = false) // no StrongBox: the TEE
    }

    private fun generate(strongBox: Boolean): SecretKey {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setKeySize(256)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(true)
            .apply {
                if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) setIsStrongBoxBacked(true)
                if (requireUserAuthentication) {
                    setUserAuthenticationRequired(true)
                    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                        setUserAuthenticationParameters(
                            authValiditySeconds,
                            KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL,
                        )
                    }
                }
            }
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore").run {
            init(spec)
            generateKey()
        }
    }
}
