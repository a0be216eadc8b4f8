//! `rediss://`: redis connects with rustls, which needs a process-wide crypto provider.

/// Installs rustls' `ring` provider as the process default when none is installed yet.
/// Apps that install their own provider first keep theirs.
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: some provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
