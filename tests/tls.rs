//! TLS with a private CA: a TLS-terminating proxy (certificate signed by a CA made for the test) in
//! front of the embedded endpoint. The janitor must trust it through `ca_bundle` or `AWS_CA_BUNDLE`
//! (which aws-config does not read by itself), and refuse it otherwise.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{Settings, Target};
use mpu_janitor::store::Connector;
use mpu_janitor::sweep::{SweepOptions, connect_and_sweep};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use s3_mem::Endpoint;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

const AK: &str = "TLSTESTACCESSKEY0001";
const SK: &str = "tls-test-secret";

/// A CA (PEM) and a TLS proxy on `https://localhost:PORT` forwarding to `backend`.
async fn tls_proxy(backend: std::net::SocketAddr) -> (String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                if let Ok(mut up) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    (format!("https://localhost:{port}"), ca.pem())
}

async fn sweep_with(settings: Settings) -> mpu_janitor::TargetReport {
    let t = Target {
        bucket: "tls-bucket".into(),
        prefix: String::new(),
        exclude_prefixes: vec![],
        settings,
    };
    connect_and_sweep(
        &t,
        &Connector::with_static_credentials(AK, SK),
        &SweepOptions::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_through_ca_bundle_or_aws_ca_bundle_and_refused_without() {
    let ep = Endpoint::start(AK, SK).await.unwrap();
    ep.create_bucket("tls-bucket");
    for i in 0..5 {
        ep.seed_upload(
            "tls-bucket",
            &format!("k{i}"),
            Utc::now() - TimeDelta::days(9),
            &[(1, 10)],
        );
    }
    let (url, ca_pem) = tls_proxy(ep.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    let base = Settings {
        endpoint_url: url.parse().unwrap(),
        force_path_style: true,
        retry_max_attempts: 1,
        ..Settings::default()
    };

    // Without the CA: the certificate is refused, nothing is touched.
    let r = sweep_with(base.clone()).await;
    let e = r.error.expect("TLS refused");
    assert_eq!(r.errors[0].kind.as_str(), "network", "{e}");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert_eq!(ep.upload_count("tls-bucket"), 5);

    // With ca_bundle: trusted, swept.
    let r = sweep_with(Settings {
        ca_bundle: ca_path.clone(),
        ..base.clone()
    })
    .await;
    assert_eq!((r.error, r.aborted), (None, 5));

    // With AWS_CA_BUNDLE, through the binary (the variable is read from its environment).
    for i in 0..3 {
        ep.seed_upload(
            "tls-bucket",
            &format!("e{i}"),
            Utc::now() - TimeDelta::days(9),
            &[(1, 10)],
        );
    }
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[defaults]\nendpoint_url = \"{url}\"\nforce_path_style = true\n[[targets]]\nbucket = \"tls-bucket\"\n"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mpu-janitor"))
            .arg("--config")
            .arg(&cfg)
            .args(["once", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CA_BUNDLE", &ca_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["targets"][0]["aborted"], 3);
    assert_eq!(ep.upload_count("tls-bucket"), 0);
}
