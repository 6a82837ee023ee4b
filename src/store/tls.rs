//! The one trust store of the product: the system's roots plus the PEM file of `ca_bundle` (else
//! `$AWS_CA_BUNDLE`, which aws-config does not read by itself), read and checked once. Every HTTP
//! client of the product is built from it: the SDK's ([`Trust::smithy_tls`]), the lean path's and
//! the Pushgateway push's ([`Trust::rustls`], in `store::proxy`'s connector).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// The trusted certificates: system roots plus an optional CA bundle.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// The bundle's path, for messages.
    bundle: Option<PathBuf>,
    /// Its PEM content, checked to hold at least one certificate.
    pem: Option<Vec<u8>>,
}

impl Trust {
    /// `ca_bundle` if set, else `$AWS_CA_BUNDLE` if set, else none.
    pub fn bundle_path(ca_bundle: Option<&Path>) -> Option<PathBuf> {
        ca_bundle.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Reads the bundle of [`Trust::bundle_path`]; an error says which file and why.
    pub fn load(ca_bundle: Option<&Path>) -> Result<Trust, String> {
        let Some(path) = Self::bundle_path(ca_bundle) else {
            return Ok(Trust::default());
        };
        let pem = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read CA bundle {:?}: {e}",
                path.display().to_string()
            )
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "CA bundle {:?} holds no PEM certificate",
                path.display().to_string()
            ));
        }
        Ok(Trust {
            bundle: Some(path),
            pem: Some(pem),
        })
    }

    /// The TLS context of the SDK's HTTP client.
    pub fn smithy_tls(&self) -> Result<TlsContext, String> {
        let mut store = TrustStore::default();
        if let Some(pem) = &self.pem {
            store = store.with_pem_certificate(pem.clone());
        }
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))
    }

    /// A rustls client configuration trusting the same certificates.
    pub fn rustls(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(pem) = &self.pem {
            use rustls_pki_types::pem::PemObject as _;
            let name = self
                .bundle
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("cannot read CA bundle {name:?}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("cannot use a certificate of CA bundle {name:?}: {e}"))?;
            }
        }
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
    }
}
