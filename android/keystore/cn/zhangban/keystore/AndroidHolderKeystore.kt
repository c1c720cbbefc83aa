// The holder keystore on Android: P-256 keys in the Android Keystore —
// StrongBox when the device has one, else the TEE — implementing the uniffi
// foreign trait `HolderKeystore`. The private key never leaves the secure
// hardware; SHA256withECDSA gives DER, converted here to the raw r‖s of JWS.
//
// Written to compile in this Gradle module on a developer's machine with
// the Android SDK (API 28+ for StrongBox); this repository's test machine
// has no Android SDK, so it is not compiled there. The host-JVM test runs
// the same contract over JCA (android/jvm-test/src/JcaKeystore.kt).

package cn.zhangban.keystore

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import android.security.keystore.KeyPermanentlyInvalidatedException
import cn.zhangban.ffi.HolderKeystore
import cn.zhangban.ffi.KeystoreException
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Base64
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * @param requireUserAuthentication every signature needs the user's
 *   biometric or device credential (`setUserAuthenticationRequired`); the
 *   app must then sign inside an authenticated window or a BiometricPrompt.
 */
class AndroidHolderKeystore(
    private val requireUserAuthentication: Boolean = false,
    private val authValiditySeconds: Int = 30,
) : HolderKeystore {
    private val keyStore: KeyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    override suspend fun createKey(alias: String): String = withContext(Dispatchers.IO) {
        val existing = keyStore.getCertificate(alias)?.publicKey as? ECPublicKey
        if (existing != null) return@withContext publicJwk(existing)
        val pub = try {
            generate(alias, strongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P)
        } catch (e: StrongBoxUnavailableException) {
            generate(alias, strongBox = false) // no StrongBox: the TEE
        } catch (e: Exception) {
            throw KeystoreException.Failure("keystore: ${e.javaClass.simpleName}")
        }
        publicJwk(pub)
    }

    private fun generate(alias: String, strongBox: Boolean): ECPublicKey {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
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
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore")
        generator.initialize(spec)
        return generator.generateKeyPair().public as ECPublicKey
    }

    override suspend fun sign(alias: String, message: ByteArray): ByteArray = withContext(Dispatchers.IO) {
        val key = keyStore.getKey(alias, null) as? PrivateKey ?: throw KeystoreException.KeyUnavailable()
        val der = try {
            Signature.getInstance("SHA256withECDSA").run {
                initSign(key)
                update(message)
                sign()
            }
        } catch (e: UserNotAuthenticatedException) {
            throw KeystoreException.NotAuthorised()
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw KeystoreException.KeyUnavailable()
        } catch (e: Exception) {
            throw KeystoreException.Failure("keystore: ${e.javaClass.simpleName}")
        }
        derToRaw(der)
    }

    override suspend fun deleteKey(alias: String) = withContext(Dispatchers.IO) {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }

    companion object {
        private val b64 = Base64.getUrlEncoder().withoutPadding()

        fun fixed32(v: BigInteger): ByteArray {
            val bytes = v.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
            require(bytes.size <= 32)
            return ByteArray(32 - bytes.size) + bytes
        }

        fun publicJwk(key: ECPublicKey): String {
            val x = b64.encodeToString(fixed32(key.w.affineX))
            val y = b64.encodeToString(fixed32(key.w.affineY))
            return """{"crv":"P-256","kty":"EC","x":"$x","y":"$y"}"""
        }

        /** ASN.1 DER SEQUENCE { INTEGER r, INTEGER s } → r‖s (64 bytes). */
        fun derToRaw(der: ByteArray): ByteArray {
            var i = 0
            fun byte(): Int = der[i++].toInt() and 0xff
            fun length(): Int {
                val first = byte()
                if (first and 0x80 == 0) return first
                var len = 0
                repeat(first and 0x7f) { len = (len shl 8) or byte() }
                return len
            }
            if (byte() != 0x30 || length() != der.size - i) throw KeystoreException.Failure("not a DER signature")
            fun integer(): BigInteger {
                if (byte() != 0x02) throw KeystoreException.Failure("not a DER integer")
                val len = length()
                return BigInteger(1, der.copyOfRange(i, i + len)).also { i += len }
            }
            val r = integer()
            val s = integer()
            return fixed32(r) + fixed32(s)
        }
    }
}
