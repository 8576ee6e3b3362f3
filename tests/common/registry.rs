//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on 127.0.0.1, with its own configuration and storage in a temporary directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// A registry process, stopped when dropped.
pub struct Registry {
    child: Child,
    pub address: String,
    pub storage: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// The `--remote-cache` location of a repository on it.
    pub fn remote_cache(&self) -> String {
        format!("oci://{}/akpkg/cache", self.address)
    }

    /// Start `docker-registry` in `directory`; with `htpasswd`, the one user it accepts.
    pub fn start(directory: &Path, htpasswd: Option<(&str, &str)>) -> Registry {
        std::fs::create_dir_all(directory).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let storage = directory.join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {address}\n",
            storage.display()
        );
        if let Some((user, password)) = htpasswd {
            let output = Process::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (Debian's apache2-utils) writes the registry's password file");
            assert!(output.status.success());
            let file = directory.join("htpasswd");
            std::fs::write(&file, &output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: akpkg-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = directory.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Process::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(directory.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian's package) runs the registry");
        let registry = Registry {
            child,
            address,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

/// A `DOCKER_CONFIG` directory whose config.json holds `user:password` for `registry`.
pub fn docker_config(directory: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    let config = directory.join(format!("docker-{user}-{password}"));
    std::fs::create_dir_all(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({ "auths": { registry: { "auth": auth } } }).to_string(),
    )
    .unwrap();
    config
}
