// The Zhangban Android library module (AAR): the uniffi-generated Kotlin
// (src/main/kotlin) and the Rust library for arm64-v8a, armeabi-v7a and
// x86_64 (src/main/jniLibs), both produced by build-android.sh.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "zhangban-ffi"
