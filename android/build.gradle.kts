// Android library module `cn.zhangban.ffi`: see android/README.md.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

android {
    namespace = "cn.zhangban.ffi"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    buildTypes {
        release {
            // The Rust library is already optimised and stripped (cargo profile `size`).
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // Written by build-android.sh (uniffi bindgen, library mode).
            // Generated bindings, and the hand-written Android Keystore implementation.
            java.srcDirs("src/main/kotlin", "keystore")
            // libzhangban_ffi.so per ABI, written by cargo-ndk.
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    packaging {
        jniLibs {
            // Keep the Rust library as built (already stripped).
            keepDebugSymbols += "**/libzhangban_ffi.so"
        }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // uniffi's Kotlin calls the Rust library through JNA; the AAR carries
    // JNA's own native libraries for every Android ABI.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    // The async functions are Kotlin suspend functions.
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}
