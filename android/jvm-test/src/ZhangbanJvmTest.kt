// The generated Kotlin bindings on the host JVM (JNA), against the real
// server on loopback started by android/jvm-test.sh. Starts nothing itself.
// Usage: java ... ZhangbanJvmTestKt <info.properties> <store dir>
// Exits non-zero on the first failed check; prints "N passed, 0 failed".

import cn.zhangban.ffi.*
import java.io.File
import java.util.Base64
import java.util.Properties
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess

var passed = 0

fun check(name: String, ok: Boolean, detail: () -> String = { "" }) {
    if (!ok) {
        println("FAIL $name ${detail()}")
        println("kotlin checks: $passed passed, 1 failed")
        exitProcess(1)
    }
    passed++
    println("ok   $name")
}

class Heard : OutboxObserver, StatusObserver, SyncObserver, Logger {
    val outbox = CopyOnWriteArrayList<OutboxState>()
    val status = CopyOnWriteArrayList<String>()
    val progress = CopyOnWriteArrayList<SyncProgress>()
    val logs = CopyOnWriteArrayList<String>()
    override fun onOutboxChange(entry: OutboxEntry) { outbox.add(entry.state) }
    override fun onStatus(event: StatusEvent) { status.add(event.state) }
    override fun onProgress(progress: SyncProgress) { this.progress.add(progress) }
    override fun log(level: LogLevel, target: String, message: String) { logs.add("$level $target $message") }
}

// An app observer with a bug: it throws on every call. The library must
// carry on (and log that an observer failed), not abort the process.
// Its first sync report and its SENDING report also hold the library's
// thread until the test lets go, so the test cancels while the work is
// certainly still under way.
class Throwing : SyncObserver, OutboxObserver {
    val calls = AtomicInteger()
    val first = CompletableDeferred<Unit>()
    val sending = CompletableDeferred<Unit>()
    val release = CountDownLatch(1)
    val releaseSend = CountDownLatch(1)
    override fun onProgress(progress: SyncProgress) {
        calls.incrementAndGet()
        if (first.complete(Unit)) release.await(30, TimeUnit.SECONDS)
        throw IllegalStateException("the app's own bug")
    }
    override fun onOutboxChange(entry: OutboxEntry) {
        calls.incrementAndGet()
        if (entry.state == OutboxState.SENDING && sending.complete(Unit)) releaseSend.await(30, TimeUnit.SECONDS)
        throw IllegalStateException("the app's own bug")
    }
}

// Starts `work`, cancels its coroutine once `reached` (the library's thread
// is then held in an observer), then lets the library go on. Returns the job.
suspend fun CoroutineScope.cancelWhileHeld(
    reached: CompletableDeferred<Unit>, release: CountDownLatch, work: suspend () -> Unit,
): Job {
    val job = launch { work() }
    withTimeout(30_000) { reached.await() }
    job.cancelAndJoin()
    release.countDown()
    return job
}

suspend fun eventually(what: String, done: () -> Boolean) {
    repeat(600) { if (done()) return; delay(50) }
    check("eventually $what", false)
}

fun main(args: Array<String>) = runBlocking {
    val info = Properties().apply { File(args[0]).reader(Charsets.UTF_8).use { load(it) } }
    val url = info.getProperty("url")
    val closedUrl = info.getProperty("closed_url")
    val root = info.getProperty("root_jwk")
    val store = File(args[1], "phone.db").path
    val heard = Heard()
    setLogger(heard, LogLevel.DEBUG)

    // The device key lives in the JVM's JCA keystore; the library gets
    // only its public JWK and raw ES256 signatures.
    val keys = JcaKeystore()
    // The data key that seals personal data: wrapped by a JCA AES-GCM key.
    val dataKeys = JcaDataKeyStore(File(args[1], "phone.keys"))
    val broken = Client.open(File(args[1], "broken.db").path, url, root, BrokenKeystore(),
        JcaDataKeyStore(File(args[1], "broken.keys")))
    check("a keystore that throws gives ZhangbanException.Keystore, not a crash",
        runCatching { broken.enrol("ZB-DEMO-2026") }.exceptionOrNull() is ZhangbanException.Keystore)
    broken.close()

    // Enrol and sync.
    val online = Client.open(store, url, root, keys, dataKeys)
    online.addSyncObserver(heard)
    online.addStatusObserver(heard)
    check("device not enrolled yet is ZhangbanException.NotEnrolled",
        runCatching { online.device() }.exceptionOrNull() is ZhangbanException.NotEnrolled)
    val device = online.enrol("ZB-DEMO-2026")
    check("enrol with ZB-DEMO-2026", device.deviceId.isNotEmpty())
    check("the enrolled key is the JCA key (created in the JVM)", keys.aliases().size == 1) { "${keys.aliases()}" }
    val report = online.sync()
    check("sync fetched the catalog", report.guidesUpserted > 0UL) { "$report" }
    check("sync fetched the wallet", (report.licencesReceived ?: 0U) > 0U) { "$report" }
    check("the token came from an ES256 signature by the JCA key", keys.signatures.get() >= 1) { "${keys.signatures.get()}" }
    check("sync progress listener fired",
        heard.progress.any { it is SyncProgress.Catalog } && heard.progress.contains(SyncProgress.Wallet)) { "${heard.progress}" }

    // Search in Chinese.
    val hits = online.search("户口", 10U)
    check("search 户口 finds guides", hits.isNotEmpty())
    check("search highlights 【户口】", hits[0].highlighted.contains("【")) { hits[0].highlighted }
    // How residents ask: a colloquial term, pinyin initials, a department filter.
    val dibao = online.search("低保", 5U)
    check("search 低保 finds 最低生活保障 through the lexicon",
        dibao.firstOrNull()?.let { it.name == "最低生活保障" && it.matched == SearchMatch.SYNONYM } == true
    ) { dibao.map { "${it.name}/${it.matched}" }.toString() }
    val hkqy = online.search("hkqy", 5U)
    check("search hkqy finds 户口迁移审批 by its pinyin initials",
        hkqy.firstOrNull()?.let { it.name == "户口迁移审批" && it.matched == SearchMatch.PINYIN } == true
    ) { hkqy.map { "${it.name}/${it.matched}" }.toString() }
    val civil = online.searchIn("登记", "区民政局", 50U)
    check("searchIn keeps one department's items",
        civil.isNotEmpty() && civil.all { it.department == "区民政局" }) { civil.map { it.department }.toString() }
    val guide = online.guide(hits[0].guideId)
    check("guide of the first hit", guide.id == hits[0].guideId && guide.json.contains(guide.name))
    check("unknown guide is ZhangbanException.NotFound",
        runCatching { online.guide("no-such-guide") }.exceptionOrNull() is ZhangbanException.NotFound)
    val wallet = online.wallet()
    check("wallet holds a valid licence", wallet.isNotEmpty() && wallet[0].state == WalletLicenceState.VALID) { "$wallet" }

    check("ping crosses the FFI and back", ping(7U) == 7U)
    online.close()

    // No network: the submission queues, the flush finds no server.
    val offline = Client.open(store, closedUrl, root, keys, dataKeys)
    val draft = Draft(
        id = "kotlin-draft-1",
        guideId = info.getProperty("guide_id"),
        formVersion = info.getProperty("form_version").toUInt(),
        valuesJson = info.getProperty("values_json"),
    )
    // The offline submission attaches the business licence from the wallet
    // instead of a paper proof: the field holds a wallet reference; the
    // key-bound presentation is made (by the JCA key) when it goes out.
    val business = wallet.firstOrNull { it.claimsJson.contains("legal_representative") }
    check("the wallet holds the business licence", business != null) { wallet.map { it.vct }.toString() }
    val licenceRef = "\"${info.getProperty("licence_field")}\":{\"wallet_licence\":\"${business!!.licenceId}\"," +
        "\"disclose\":[\"licence_name\",\"holder_name\",\"licence_id\"]}"
    val otherValues = info.getProperty("licence_values_json").trim()
    val withLicence = Draft(
        id = "kotlin-draft-1",
        guideId = info.getProperty("licence_guide_id"),
        formVersion = info.getProperty("licence_form_version").toUInt(),
        valuesJson = if (otherValues == "{}") "{$licenceRef}" else otherValues.dropLast(1) + ",$licenceRef}",
    )
    offline.addOutboxObserver(heard)
    offline.saveDraft(withLicence)
    val clientId = offline.submit(withLicence)
    check("submit offline with an attached licence queues it", offline.outbox().single().state == OutboxState.QUEUED)
    check("outbox listener fired on queue", heard.outbox.contains(OutboxState.QUEUED))
    val none = offline.flush()
    check("flush with no network reports offline", none.offline && none.accepted == 0U) { "$none" }
    check("network failure is ZhangbanException.Network",
        runCatching { offline.enrol("ZB-DEMO-2026") }.exceptionOrNull() is ZhangbanException.Network)
    offline.close()

    // Online again: the flush delivers it exactly once.
    val phone = Client.open(store, url, root, keys, dataKeys)
    phone.addOutboxObserver(heard)
    phone.addStatusObserver(heard)
    val signedBefore = keys.signatures.get()
    var delivered: FlushReport? = null
    for (i in 0 until 60) {
        val r = phone.flush()
        if (r.accepted == 1U) { delivered = r; break }
        delay(500)
    }
    check("flush once online delivers it", delivered != null)
    val entry = phone.outbox().single()
    check("outbox entry accepted with a tracking number",
        entry.clientId == clientId && entry.state == OutboxState.ACCEPTED && entry.trackingNumber != null) { "$entry" }
    check("outbox listener fired on acceptance", heard.outbox.contains(OutboxState.ACCEPTED)) { "${heard.outbox}" }
    // Accepted means the server verified the attached licence's
    // presentation: its key binding was signed by the JCA key (one
    // signature for the token, one for the presentation).
    check("the attached licence's key binding was signed in the JVM",
        keys.signatures.get() >= signedBefore + 2) { "${keys.signatures.get()} vs $signedBefore" }
    check("the server accepted the submission with the attached licence",
        entry.guideId == withLicence.guideId) { "$entry" }
    phone.sync()
    check("status listener heard 'submitted'", heard.status.contains("submitted")) { "${heard.status}" }

    // Show a licence, verify it as an inspector.
    val licence = phone.wallet()[0]
    val fields = listOf("licence_name", "holder_name")
    val shown = phone.show(licence.licenceId, fields, null)
    check("show makes a QR PNG", shown.png.size > 8 && shown.png[1] == 'P'.code.toByte() && shown.mode == ShowMode.Dynamic)
    val inspector = phone.inspector()
    val verdict = inspector.verify(shown.frame, null)
    check("inspector: valid and bound", verdict.valid && verdict.bound && verdict.code == "valid") { "$verdict" }
    val kb = String(shown.presentation.substringAfterLast('~').substringBefore('.').let { Base64.getUrlDecoder().decode(it) })
    check("the 亮证 key binding is ES256", kb.contains("\"alg\":\"ES256\"")) { kb }
    check("inspector: only the chosen fields",
        verdict.claimsJson.contains("holder_name") && !verdict.claimsJson.contains("\"licence_id\"")) { verdict.claimsJson }
    val replay = inspector.verify(shown.frame, null)
    check("inspector: a replay is refused, with zh/en text", !replay.valid && replay.zh.isNotEmpty()) { "$replay" }
    val card = phone.printCard(licence.licenceId, fields, null)
    check("print card is SVG", card.svg.contains("<svg"))
    val printed = inspector.verify(card.shown.frame, null)
    check("inspector: printed card valid and unbound", printed.valid && !printed.bound) { "$printed" }

    // A cancelled coroutine loses nothing: a sync cancelled at its first
    // progress report still ends with the whole catalog, and the observer
    // that threw there stays registered until removed.
    val fresh = Client.open(File(args[1], "cancel.db").path, url, root, JcaKeystore(),
        JcaDataKeyStore(File(args[1], "cancel.keys")))
    val throwing = Throwing()
    val syncId = fresh.addSyncObserver(throwing)
    val syncJob = cancelWhileHeld(throwing.first, throwing.release) { fresh.sync() }
    check("sync coroutine cancelled", syncJob.isCancelled)
    fresh.sync()
    val whole = phone.catalogInfo()
    eventually("the cancelled sync's catalog is whole") { fresh.catalogInfo() == whole }
    val topHits = { c: Client -> c.search("办理", 500U).map { it.guideId } }
    check("cancelled sync: the whole catalog (${whole.guides} guides), searched alike",
        whole.guides > 1000UL && topHits(fresh) == topHits(phone)) { "${fresh.catalogInfo()} vs $whole" }
    check("a throwing observer is kept and called again", throwing.calls.get() > 1) { "${throwing.calls.get()}" }
    check("the library logged the observer's failure, not its text",
        heard.logs.any { it.contains("observer did not complete") } && heard.logs.none { it.contains("the app's own bug") })
    check("removeObserver removes it once", fresh.removeObserver(syncId) && !fresh.removeObserver(syncId))
    fresh.close()

    // A flush cancelled while its send is in flight: the send completes on
    // the library's runtime, exactly once.
    val second = draft.copy(id = "kotlin-draft-2")
    val outboxId = phone.addOutboxObserver(throwing)
    val secondId = phone.submit(second)
    val flushJob = cancelWhileHeld(throwing.sending, throwing.releaseSend) { phone.flush() }
    check("flush coroutine cancelled", flushJob.isCancelled)
    eventually("the cancelled flush's receipt") {
        phone.outbox().any { it.clientId == secondId && it.state == OutboxState.ACCEPTED }
    }
    val after = phone.flush()
    check("cancelled flush: accepted once, nothing left to send", after.sent == 0U && after.accepted == 0U) { "$after" }
    check("two distinct tracking numbers",
        phone.outbox().mapNotNull { it.trackingNumber }.toSet().size == 2) { "${phone.outbox()}" }
    check("removeObserver of the outbox observer", phone.removeObserver(outboxId))

    check("logger received tracing events", heard.logs.isNotEmpty())
    phone.close()

    // The personal data is sealed under the data key: only its wrapped form
    // is on disk, and a wrong or missing key gives the typed error while
    // the catalog stays searchable.
    check("the data key was made once and kept wrapped",
        dataKeys.wrappedFile.length() == 12L + 32 + 16 && dataKeys.loads.get() >= 3) { "${dataKeys.loads.get()}" }
    val wrong = Client.open(store, url, root, keys, FixedDataKeyStore(ByteArray(32) { 7 }))
    val wrongErr = runCatching { wrong.wallet() }.exceptionOrNull()
    check("a wrong data key gives ZhangbanException.DataKey(WRONG_KEY)",
        wrongErr is ZhangbanException.DataKey && wrongErr.problem == DataKeyProblem.WRONG_KEY) { "$wrongErr" }
    val flushErr = runCatching { wrong.flush() }.exceptionOrNull()
    check("a flush under a wrong data key gives the same typed error",
        flushErr is ZhangbanException.DataKey && flushErr.problem == DataKeyProblem.WRONG_KEY) { "$flushErr" }
    check("under a wrong data key the catalog is still searchable", wrong.search("户口", 3U).isNotEmpty())
    wrong.close()
    val missing = Client.open(store, url, root, keys, FixedDataKeyStore(null))
    val missingErr = runCatching { missing.outbox() }.exceptionOrNull()
    check("a lost data key gives ZhangbanException.DataKey(MISSING)",
        missingErr is ZhangbanException.DataKey && missingErr.problem == DataKeyProblem.MISSING) { "$missingErr" }
    missing.close()
    val back = Client.open(store, url, root, keys, dataKeys)
    check("the right data key opens the wallet and the outbox again",
        back.wallet().isNotEmpty() && back.outbox().size == 2) { "${back.outbox()}" }
    back.close()

    // A store file that is not a database (damaged flash, a stray file):
    // the typed store error maps to the reset path, not to "try again".
    val garbage = File(args[1], "garbage.db").apply { writeBytes(ByteArray(8192) { 0x5A }) }
    val garbageErr = runCatching {
        Client.open(garbage.path, url, root, keys, JcaDataKeyStore(File(args[1], "garbage.keys")))
    }.exceptionOrNull()
    check("a store file that is not a database gives ZhangbanException.Corrupted",
        garbageErr is ZhangbanException.Corrupted) { "$garbageErr" }
    println("kotlin checks: $passed passed, 0 failed")
}
