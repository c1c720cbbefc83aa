// One FFI round trip from Kotlin (JNA, host JVM), timed: a trivial exported
// function (ping) and a guide search in Chinese through the bindings.
// Run by android/jvm-bench.sh against an optimised build of the library and
// the loopback server; it syncs a store, then times the calls offline.
// Usage: java ... ZhangbanJvmBenchKt <info.properties> <store path> <quick: 0|1>
// Prints "kotlin <name>: <us> us/call (<n> calls)" lines for the script.

import cn.zhangban.ffi.*
import java.io.File
import java.util.Properties
import kotlinx.coroutines.runBlocking

/// The median of `rounds` timed batches of `calls`, after one warm-up batch
/// (the JIT and JNA's first-call binding).
fun micros(rounds: Int, calls: Int, body: () -> Unit): Double {
    repeat(3 * calls) { body() }
    val perCall = (1..rounds).map {
        val t0 = System.nanoTime()
        repeat(calls) { body() }
        (System.nanoTime() - t0) / 1000.0 / calls
    }.sorted()
    return perCall[perCall.size / 2]
}

fun main(args: Array<String>) = runBlocking {
    val info = Properties().apply { File(args[0]).reader(Charsets.UTF_8).use { load(it) } }
    val quick = args.getOrNull(2) == "1"
    // Searching signs nothing: the JCA keystore only completes the signature.
    val client = Client.open(args[1], info.getProperty("url"), info.getProperty("root_jwk"), JcaKeystore(),
        JcaDataKeyStore(java.io.File(args[1] + ".keys")))
    if (client.catalogInfo().guides == 0UL) client.sync()
    val guides = client.catalogInfo().guides
    check(guides > 1000UL) { "the catalog did not sync: $guides" }
    val rounds = if (quick) 3 else 9
    val pingCalls = if (quick) 20_000 else 200_000
    val searchCalls = if (quick) 50 else 400
    var sink = 0L
    val ping = micros(rounds, pingCalls) { sink += ping(7U).toLong() }
    println("kotlin ping: ${"%.3f".format(ping)} us/call ($pingCalls calls)")
    val version = micros(rounds, pingCalls / 10) { sink += libraryVersion().length }
    println("kotlin string result: ${"%.3f".format(version)} us/call (${pingCalls / 10} calls)")
    for ((q, limit) in listOf("魑魅" to 10U, "社保" to 1U, "社保" to 10U, "营业执照" to 10U)) {
        val us = micros(rounds, searchCalls) { sink += client.search(q, limit).size }
        println("kotlin search $q top $limit: ${"%.1f".format(us)} us/call ($searchCalls calls)")
    }
    client.close()
    if (sink == 42L) println("") // keeps the calls observable
}
