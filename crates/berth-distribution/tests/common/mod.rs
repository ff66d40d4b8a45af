//! Test fixtures: Debian's `docker-registry` (distribution 2.8) on a free 127.0.0.1 port, killed
//! by PID on drop; small axum servers; images built from the OCI image spec.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use berth_distribution::manifest::{DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
use berth_distribution::{ClientConfig, Descriptor, RegistryClient};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Skips (loudly) when Debian's docker-registry is not installed.
#[macro_export]
macro_rules! need_registry {
    () => {
        if !std::path::Path::new(common::REGISTRY_BIN).exists() {
            eprintln!(
                "SKIP: {} not installed (apt-get install docker-registry)",
                common::REGISTRY_BIN
            );
            return;
        }
    };
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running docker-registry; the process is killed (by PID) and its directory removed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

#[derive(Default)]
pub struct RegistryOptions {
    /// (user, password) for htpasswd auth.
    pub htpasswd: Option<(String, String)>,
    /// (cert PEM, key PEM) for TLS.
    pub tls: Option<(String, String)>,
    /// A CA PEM whose client certificates the registry requires.
    pub client_ca: Option<String>,
}

impl Registry {
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = dir.path().join("data");
        std::fs::create_dir(&root).unwrap();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
            root.display()
        );
        if let Some((cert, key)) = &opts.tls {
            let c = dir.path().join("server.crt");
            let k = dir.path().join("server.key");
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.display(),
                k.display()
            ));
            if let Some(ca) = &opts.client_ca {
                let p = dir.path().join("client-ca.crt");
                std::fs::write(&p, ca).unwrap();
                cfg.push_str(&format!("    clientcas:\n      - {}\n", p.display()));
            }
        }
        if let Some((user, pass)) = &opts.htpasswd {
            let h = dir.path().join("htpasswd");
            std::fs::write(&h, format!("{user}:{}\n", bcrypt::hash(pass, 4).unwrap())).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                h.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Registry { dir, port, child };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}: {}", self.port, self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, repo_tag: &str) -> berth_types::Reference {
        berth_types::Reference::parse(&format!("{}/{repo_tag}", self.domain())).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client configuration that reads no host certs.d.
pub fn config() -> ClientConfig {
    ClientConfig {
        certs_dir: PathBuf::from("/nonexistent/berth-test-certs.d"),
        ..Default::default()
    }
}

pub fn client() -> RegistryClient {
    RegistryClient::new(config())
}

/// A CA and a server certificate for 127.0.0.1/localhost signed by it: (CA cert PEM, CA params and
/// key for signing more, leaf cert PEM, leaf key PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub ca: rcgen::Certificate,
    pub ca_key: rcgen::KeyPair,
    pub server_pem: String,
    pub server_key_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "berth test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        TestPki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
            server_pem: leaf.pem(),
            server_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// A client certificate (clientAuth) signed by the CA: (cert PEM, key PEM).
    pub fn client_cert(&self) -> (String, String) {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "berth test client");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

pub fn client_with_certs(dir: &Path) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        certs_dir: dir.to_path_buf(),
        ..Default::default()
    })
}

/// Deterministic pseudo-random bytes (so layers differ between tests).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An image: config, layers, and its manifest (Docker schema 2 or OCI).
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
}

impl Image {
    pub fn new(oci: bool, arch: &str, layers: Vec<Vec<u8>>) -> Image {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| berth_types::Digest::sha256(l).to_string())
            .collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let (mt, cfg_mt, layer_mt) = if oci {
            (OCI_MANIFEST, OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar")
        } else {
            (
                DOCKER_MANIFEST,
                DOCKER_CONFIG,
                "application/vnd.docker.image.rootfs.diff.tar",
            )
        };
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": Descriptor::of(cfg_mt, &config),
            "layers": layers.iter().map(|l| Descriptor::of(layer_mt, l)).collect::<Vec<_>>(),
        }))
        .unwrap();
        Image {
            config,
            layers,
            manifest,
            media_type: mt,
        }
    }

    pub fn config_desc(&self) -> Descriptor {
        let mt = if self.media_type == OCI_MANIFEST {
            OCI_CONFIG
        } else {
            DOCKER_CONFIG
        };
        Descriptor::of(mt, &self.config)
    }

    pub fn layer_desc(&self, i: usize) -> Descriptor {
        let mt = if self.media_type == OCI_MANIFEST {
            "application/vnd.oci.image.layer.v1.tar"
        } else {
            "application/vnd.docker.image.rootfs.diff.tar"
        };
        Descriptor::of(mt, &self.layers[i])
    }
}

/// Serves an axum router on a free port; returns its address. The server lives as long as the
/// test's runtime.
pub async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, router).await;
    });
    addr
}

/// Reads a whole blob stream.
pub async fn collect(
    mut s: berth_distribution::BlobStream,
) -> Result<Vec<u8>, (Vec<u8>, berth_distribution::DistributionError)> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return Err((out, e)),
        }
    }
    Ok(out)
}
