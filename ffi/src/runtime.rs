//! The tokio runtime the library owns: async calls from Kotlin or Swift are
//! spawned onto it and awaited from the foreign executor.

use std::future::Future;
use std::sync::LazyLock;

use crate::error::ZhangbanError;

static RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("zhangban")
        .enable_all()
        .build()
        .ok()
});

/// The library's runtime (built on first use).
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, ZhangbanError> {
    RUNTIME.as_ref().ok_or(ZhangbanError::Internal)
}

/// Runs `work` on the library's runtime and waits for it. Dropping the
/// returned future (a cancelled coroutine or task) does not stop `work`.
pub(crate) async fn run<T, F>(work: F) -> Result<T, ZhangbanError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ZhangbanError>> + Send + 'static,
{
    runtime()?
        .spawn(work)
        .await
        .map_err(|_| ZhangbanError::Internal)?
}
