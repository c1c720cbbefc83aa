// The holder keystore of the host-JVM test, over JCA: P-256 keys made by
// KeyPairGenerator("EC") and kept in this JVM only; SHA256withECDSA
// signatures converted from DER to the raw r‖s that JWS wants. The core
// never sees a private key: it gets the public JWK and signatures.

import cn.zhangban.ffi.HolderKeystore
import cn.zhangban.ffi.KeystoreException
import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Base64
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger

/** A JWS-style unsigned big-endian integer of exactly 32 bytes. */
fun fixed32(v: BigInteger): ByteArray {
    val bytes = v.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
    require(bytes.size <= 32) { "coordinate longer than 32 bytes" }
    return ByteArray(32 - bytes.size) + bytes
}

/** ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }` → raw r‖s (64 bytes). */
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
    require(byte() == 0x30) { "not a DER sequence" }
    val total = length()
    require(total == der.size - i) { "DER length mismatch" }
    fun integer(): BigInteger {
        require(byte() == 0x02) { "not a DER integer" }
        val len = length()
        val v = BigInteger(1, der.copyOfRange(i, i + len))
        i += len
        return v
    }
    val r = integer()
    val s = integer()
    require(i == der.size) { "trailing bytes after the DER signature" }
    return fixed32(r) + fixed32(s)
}

private val b64 = Base64.getUrlEncoder().withoutPadding()

/** The public JWK of a P-256 key: {"kty":"EC","crv":"P-256","x":…,"y":…}. */
fun publicJwk(key: ECPublicKey): String {
    val x = b64.encodeToString(fixed32(key.w.affineX))
    val y = b64.encodeToString(fixed32(key.w.affineY))
    return """{"crv":"P-256","kty":"EC","x":"$x","y":"$y"}"""
}

class JcaKeystore : HolderKeystore {
    private val keys = ConcurrentHashMap<String, KeyPair>()
    val signatures = AtomicInteger(0)

    override suspend fun createKey(alias: String): String {
        val pair = keys.computeIfAbsent(alias) {
            KeyPairGenerator.getInstance("EC").apply {
                initialize(ECGenParameterSpec("secp256r1"))
            }.generateKeyPair()
        }
        return publicJwk(pair.public as ECPublicKey)
    }

    override suspend fun sign(alias: String, message: ByteArray): ByteArray {
        val pair = keys[alias] ?: throw KeystoreException.KeyUnavailable()
        val der = Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
        signatures.incrementAndGet()
        return derToRaw(der)
    }

    override suspend fun deleteKey(alias: String) {
        keys.remove(alias)
    }

    fun aliases(): Set<String> = keys.keys.toSet()
}

/** A keystore whose platform call fails with an unexpected exception. */
class BrokenKeystore : HolderKeystore {
    override suspend fun createKey(alias: String): String = throw IllegalStateException("keystore daemon died")
    override suspend fun sign(alias: String, message: ByteArray): ByteArray = throw KeystoreException.NotAuthorised()
    override suspend fun deleteKey(alias: String) {}
}
